"""DNSSEC: the zone is signed and the lab resolver validates what the web hosts publish."""

from __future__ import annotations

import pytest

from labgen.checks import check
from labgen.checks.netutil import dig
from labgen.dnszone import bogus_name


@check("dnssec.signed", "The zone is signed", standard="RFC 4033-4035; internet.nl DNSSEC",
       why="An unsigned zone lets anyone on the path forge answers, TLSA records included.",
       fix="Sign the zone and publish its DS in the parent (labgen signs with its CSK).",
       needs=("dns",))
def test_zone_is_signed(probe, lab):
    _, answers, status = dig(probe, lab.domain, "DNSKEY")
    assert status == "NOERROR", f"expected the DNSKEY set of {lab.domain}; the resolver answered {status or 'nothing'}"
    assert any(a.split()[3] == "DNSKEY" for a in answers), f"{lab.domain} has no DNSKEY record: the zone is not signed"
    assert any(a.split()[3:5] == ["RRSIG", "DNSKEY"] for a in answers), \
        f"the DNSKEY set of {lab.domain} carries no signature (RRSIG)"


@pytest.mark.parametrize("rtype", ["A", "AAAA", "TLSA"])
@check("dnssec.validated", "The resolver validates the host's records (AD flag)",
       standard="RFC 4035 section 3.2.3; internet.nl DNSSEC",
       why="Only validated answers protect a client; the AD flag says the resolver checked them.",
       fix="Give the resolver the zone's trust anchor (the DS) and keep the signatures fresh: "
           "sign the zone again well before they expire (the command heads the zone source on "
           "ns1), then unbound-control flush_bogus on the resolver.",
       needs=("dns",))
def test_records_are_validated(probe, server, rtype):
    name = f"_443._tcp.{server.fqdn}" if rtype == "TLSA" else server.fqdn
    flags, answers, status = dig(probe, name, rtype)
    assert status == "NOERROR" and answers, f"{name} {rtype}: {status}"
    assert "ad" in flags, f"{name} {rtype}: no AD flag ({' '.join(flags)})"


@check("dnssec.bogus_refused", "A name with a broken signature is refused (SERVFAIL)",
       standard="RFC 4035 section 5.5; internet.nl DNSSEC",
       why="A resolver that passes a forged answer on is not validating, whatever it claims.",
       fix="Turn validation on in the resolver (Unbound: module-config \"validator iterator\" "
           "and the zone's trust anchor).")
def test_bogus_name_is_refused(probe, lab):
    name = bogus_name(lab)
    _, _, status = dig(probe, name, "A")
    assert status == "SERVFAIL", f"{name} A: {status}, the broken signature went unnoticed"
    # With checking disabled (+cd) the same answer arrives: the refusal is validation's doing.
    _, answers, status = dig(probe, name, "A", "+cd")
    assert status == "NOERROR" and answers, f"{name} A +cd: {status}"

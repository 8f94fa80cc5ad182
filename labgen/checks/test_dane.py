"""DANE (RFC 6698, RFC 7671): each web host publishes a validated TLSA record that matches the
certificate it serves, checked by a DANE-aware client (openssl s_client -dane_tlsa_*)."""

from __future__ import annotations

import shlex

from labgen.checks import check, with_acme
from labgen.checks.netutil import dig, openssl_reason, records, s_client, served_spki



def tlsa(probe, server):
    return dig(probe, f"_443._tcp.{server.fqdn}", "TLSA")


@check("dane.tlsa", "A DNSSEC-validated TLSA record exists", standard="RFC 6698; RFC 7671; "
       "internet.nl DANE existence",
       why="DANE lets a client check the server's key against DNSSEC instead of trusting any CA.",
       fix="Publish _443._tcp.<host> TLSA 3 1 1 <SHA-256 of the key> in the signed zone.",
       needs=("dns",))
def test_tlsa_exists_and_validates(probe, server):
    flags, answers, status = tlsa(probe, server)
    assert records(answers, "TLSA"), f"no TLSA record ({status})"
    assert "ad" in flags, "the TLSA answer is not DNSSEC-validated"


@check("dane.match", "The served certificate matches the TLSA record",
       standard="RFC 6698; RFC 7671; internet.nl DANE validity",
       why="A TLSA record that does not match makes DANE clients refuse the site.",
       fix="After a key change, publish TLSA 3 1 1 <SHA-256 of the new public key> in the zone, "
           "sign it again and flush the name from the resolver's cache (unbound-control "
           "flush_zone <zone>); in production, publish the new record one TTL before the key changes.",
       needs=("dns", "tls"))
def test_certificate_matches_tlsa(probe, server, family):
    flags, answers, _ = tlsa(probe, server)
    rdata = records(answers, "TLSA")
    assert rdata and "ad" in flags, "no validated TLSA record"
    options = [f"-dane_tlsa_domain {server.fqdn}"] + [f"-dane_tlsa_rrdata {shlex.quote(r)}" for r in rdata]
    ok, out = s_client(probe, server, family, "-verify_return_error", *options)
    assert ok and "Verification: OK" in out and "matched" in out, \
        f"expected the served certificate to match a TLSA record; openssl says: {openssl_reason(out)}"


@check("dane.next_key", "The TLSA record also names the next key",
       standard="RFC 7671 section 8.1; RFC 7671 section 8.4",
       why="A key roll breaks DANE unless the new key's TLSA record was published a TTL before "
           "the new key is served: the record set names the current key and the next one.",
       fix="Keep a next key and publish its TLSA 3 1 1 beside the current one's (labgen-certs "
           "roll does: it swaps only once that record has been out for its TTL).",
       level="recommended", needs=("dns", "tls"),
       applies=with_acme("the lab CA's certificates keep their key for the lab's life (certificates: lab-ca)"))
def test_tlsa_names_a_next_key(probe, server, family):
    flags, answers, _ = tlsa(probe, server)
    digests = {r.split()[3].lower() for r in records(answers, "TLSA") if r.split()[:3] == ["3", "1", "1"]}
    served = served_spki(probe, server, family)
    assert served, "no certificate served"
    others = digests - {served}
    assert others, (f"expected a TLSA 3 1 1 record for a next key beside the served key's; the "
                    f"record set names {'only the served key' if digests else 'no 3 1 1 key'}")

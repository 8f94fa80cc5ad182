"""DNSSEC: the zone is signed and the lab resolver validates what the web hosts publish.

What the zone publishes is read through the grader's own validating resolver on the probe
(netutil.dig); the lab resolver, which the student runs, is asked only by the two checks that
judge it, and its answers count where that resolver agrees."""

from __future__ import annotations

import datetime as dt
import secrets
import time

import dns.dnssec
import dns.name
import dns.rdata
import pytest

from labgen.checks import check
from labgen.checks.netutil import LAB_RESOLVER, dig, records
from labgen import signing
from labgen.dnszone import NSEC3_ITERATIONS, bogus_name
from labgen.spec import NO_SECONDARY


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
    """The lab resolver's AD flag counts only where the grader's own resolver, from labgen's
    trust anchor, validates the same records: a resolver that claims AD for what does not
    validate (another trust anchor, a proxy that sets the flag) is judged, not believed."""
    name = f"_443._tcp.{server.fqdn}" if rtype == "TLSA" else server.fqdn
    flags, answers, status = dig(probe, name, rtype, via=LAB_RESOLVER)
    assert status == "NOERROR" and answers, f"{name} {rtype}: the lab resolver answered {status or 'nothing'}"
    assert "ad" in flags, f"{name} {rtype}: no AD flag ({' '.join(flags)})"
    truth, _, truth_status = dig(probe, name, rtype)
    assert truth_status == "NOERROR" and "ad" in truth, (
        f"{name} {rtype}: the lab resolver calls it validated, but it does not validate from "
        f"labgen's trust anchor (the grader's own resolver answered {truth_status or 'nothing'}"
        f"{'' if 'ad' in truth else ' without AD'})")


@check("dnssec.bogus_refused", "A name with a broken signature is refused (SERVFAIL)",
       standard="RFC 4035 section 5.5; internet.nl DNSSEC",
       why="A resolver that passes a forged answer on is not validating, whatever it claims.",
       fix="Turn validation on in the resolver (Unbound: module-config \"validator iterator\" "
           "and the zone's trust anchor).")
def test_bogus_name_is_refused(probe, lab):
    """The lab resolver must refuse the zone's deliberately broken name (bogus from labgen's trust
    anchor too), give it with checking disabled (the refusal is validation's doing), and deny a
    name that does not exist as labgen's own resolver does."""
    name = bogus_name(lab)
    truth = _answered(probe, lab, name, via=None)[1]
    assert truth == "SERVFAIL", (f"{name} is not bogus from labgen's trust anchor (the grader's own "
                                 f"resolver answered {truth}): the lab's zone or its DS changed")
    status = _answered(probe, lab, name)[1]
    assert status == "SERVFAIL", f"expected SERVFAIL for {name} A; the resolver answered {status}: " \
        "the broken signature went unnoticed"
    # A name under it that it has never seen (new each run, so it cannot be special-cased) is
    # answered as labgen's own resolver answers it: a denial that validates (NXDOMAIN, AD). Not
    # under a web server's name: the proof would replace that name's NSEC set in the resolver's
    # cache, and with it the cached answers an exercise may be about.
    fresh = f"labgen-{secrets.token_hex(4)}.{name}"
    flags, _, status = dig(probe, fresh, "A", via=LAB_RESOLVER)
    truth, _, truth_status = dig(probe, fresh, "A")
    assert (status, "ad" in flags) == (truth_status, "ad" in truth), (
        f"{fresh} A (a name that does not exist): the lab resolver answered {status or 'nothing'}"
        f"{' with' if 'ad' in flags else ' without'} AD; from labgen's trust anchor it is "
        f"{truth_status or 'no answer'}{' with' if 'ad' in truth else ' without'} AD")
    answers, status = _answered(probe, lab, name, "+cd")
    assert status == "NOERROR" and answers, (f"expected the record of {name} A with checking disabled "
                                             f"(+cd); the resolver answered {status}")


BOGUS_PATIENCE = 60  # seconds


def _answered(probe, lab, name: str, *options: str, via: str | None = LAB_RESOLVER) -> tuple[list[str], str]:
    """(answers, status) of an A query through the lab resolver (via=None: the grader's own),
    asked again while it, answering other names, gives this one no answer: a validator that
    finds a broken signature tries the zone's every server address before it refuses (Unbound:
    about 20 s when one of them does not answer), and drops the queries that wait meanwhile."""
    deadline = time.monotonic() + BOGUS_PATIENCE
    which = "the lab resolver" if via == LAB_RESOLVER else "the grader's own resolver"
    while True:
        _, answers, status = dig(probe, name, "A", *options, via=via)
        if status:
            return answers, status
        assert dig(probe, lab.domain, "SOA", via=via)[2], (
            f"expected an answer for {name} A; {which} answers nothing at all")
        assert time.monotonic() < deadline, (f"expected an answer for {name} A{' ' if options else ''}"
                                             f"{' '.join(options)}; {which} gave none in "
                                             f"{BOGUS_PATIENCE} s")


def _when(stamp: str) -> dt.datetime:
    return dt.datetime.strptime(stamp, "%Y%m%d%H%M%S").replace(tzinfo=dt.timezone.utc)


@check("dnssec.signatures_fresh", "Signatures are valid now and for at least the re-sign interval ahead",
       standard="RFC 4034 section 3.1.5; BIND 9 dnssec-policy signatures-refresh",
       why="Past its expiration a signature makes every validating resolver refuse the zone "
           "(SERVFAIL). A signer re-signs well before that (labgen's signing: 5 days; BIND's "
           "dnssec-policy: signatures-refresh), so signatures that run out sooner mean the "
           "signer stopped.",
       fix="Sign the zone again (labgen's signing: the command heads the zone source on ns1; "
           "BIND's: rndc sign or a running named), and keep re-signing on a schedule well before "
           "signatures expire; the resolver serves the old signatures until their TTL runs out "
           "(unbound-control flush_zone drops them).",
       needs=("dns",))
def test_signatures_are_fresh(probe, lab):
    now = dt.datetime.now(dt.timezone.utc)
    need = signing.refresh(lab)
    for rtype in ("SOA", "DNSKEY"):
        # +cd: the signatures as published, even when they no longer validate
        _, answers, status = dig(probe, lab.domain, rtype, "+cd")
        signatures = [a.split() for a in answers if a.split()[3:5] == ["RRSIG", rtype]]
        assert signatures, f"expected a signature (RRSIG) of the {rtype} of {lab.domain}; saw {status or 'no answer'} and none"
        for fields in signatures:
            expires, valid_from = _when(fields[8]), _when(fields[9])
            assert valid_from <= now, (f"the {rtype} signature of {lab.domain} is valid only from "
                                       f"{valid_from:%Y-%m-%d %H:%M} UTC")
            left = expires - now
            assert left >= need, (
                f"expected signatures valid at least {signing.describe(need)} ahead; the {rtype} "
                f"signature of {lab.domain} " + (f"expired {expires:%Y-%m-%d %H:%M} UTC" if left.total_seconds() < 0
                                                 else f"expires {expires:%Y-%m-%d %H:%M:%S} UTC, in "
                                                 f"{signing.describe(left)}"))


@check("dnssec.nsec3_parameters", "NSEC3 without extra iterations and without salt (RFC 9276)",
       standard="RFC 9276 section 3.1; RFC 5155",
       why="Extra NSEC3 iterations cost every resolver CPU and stop no zone walker; resolvers may "
           "treat high counts as insecure or refuse them (RFC 9276 section 3.2). A salt adds "
           "nothing either.",
       fix="Sign with NSEC3 iterations 0 and an empty salt (dnssec-signzone -3 - -H 0; BIND "
           "dnssec-policy: nsec3param iterations 0 optout no salt-length 0).",
       needs=("dns",),
       applies=lambda lab, server: None if lab.dnssec.denial == "nsec3" else
       "the zone denies names with NSEC (dnssec.denial), not NSEC3")
def test_nsec3_parameters(probe, lab):
    _, answers, status = dig(probe, lab.domain, "NSEC3PARAM", "+cd")
    found = records(answers, "NSEC3PARAM")
    assert found, f"expected the NSEC3PARAM record of {lab.domain}; saw {status or 'no answer'} and none"
    _, _, iterations, salt = found[0].split()
    assert int(iterations) == NSEC3_ITERATIONS, (f"expected {NSEC3_ITERATIONS} extra NSEC3 iterations; "
                                                 f"{lab.domain} uses {iterations}")
    assert salt == "-", f"expected no NSEC3 salt; {lab.domain} uses the salt {salt}"


def _online(lab, server):
    return None if signing.online(lab) else \
        "labgen signs the zone (dnssec.signer: labgen): it publishes no CDS and has no dnssec-policy"


def _ds(text: str) -> tuple:
    """A DS or CDS rdata as (key tag, algorithm, digest type, digest): dig splits long digests."""
    tag, algorithm, digest_type, *digest = text.split()
    return int(tag), int(algorithm), int(digest_type), "".join(digest).upper()


def _keys(probe, lab):
    """The zone's DNSKEY rdata (with +cd: as published), as dnspython objects."""
    _, answers, _ = dig(probe, lab.domain, "DNSKEY", "+cd")
    return [dns.rdata.from_text("IN", "DNSKEY", text) for text in records(answers, "DNSKEY")]


@check("dnssec.cds_consistent", "CDS and CDNSKEY name key-signing keys of the zone's own DNSKEY set",
       standard="RFC 7344 section 4; RFC 8078",
       why="A parent that follows CDS (RFC 7344) puts in its DS whatever the CDS says, once it "
           "validates: a CDS naming a key the zone does not publish takes the zone off the "
           "chain of trust at the next scan.",
       fix="Let the signer publish CDS and CDNSKEY (BIND's dnssec-policy does, for each KSK in "
           "use): do not add them by hand; rndc dnssec -status shows which keys have them.",
       needs=("dns",), applies=_online)
def test_cds_names_the_zones_own_keys(probe, lab):
    owner = dns.name.from_text(lab.domain)
    keys = [k for k in _keys(probe, lab) if k.flags & 1]
    assert keys, f"expected a key-signing DNSKEY (flags 257) in the DNSKEY set of {lab.domain}; saw none"
    _, answers, status = dig(probe, lab.domain, "CDS", "+cd")
    cds = records(answers, "CDS")
    assert cds, f"expected CDS records at {lab.domain} (BIND publishes them for its KSK); saw {status or 'no answer'} and none"
    made = {_ds(dns.dnssec.make_ds(owner, k, "SHA256").to_text()) for k in keys}
    for text in cds:
        assert _ds(text) in made, (f"the CDS {text} of {lab.domain} names no key-signing key of "
                                      f"its DNSKEY set (key tags {', '.join(str(dns.dnssec.key_id(k)) for k in keys)})")
    _, answers, _ = dig(probe, lab.domain, "CDNSKEY", "+cd")
    published = {k.to_text() for k in keys}
    for text in records(answers, "CDNSKEY"):
        key = dns.rdata.from_text("IN", "DNSKEY", text).to_text()
        assert key in published, f"the CDNSKEY {text[:40]}... of {lab.domain} is not in its DNSKEY set"


@check("dnssec.parent_follows_cds", "The parent's DS set is what the zone's CDS asks for",
       standard="RFC 7344 section 4.1; RFC 7583 section 3.3", level="recommended",
       why="Until the parent's DS set matches the CDS, a KSK roll cannot finish: the old key must "
           "stay until its DS is gone from the parent and from the caches.",
       fix="Wait for the parent's next scan of the CDS (labgen-cds-scan on the parent host, every "
           "parent_propagation_delay); if it refuses the CDS, its log says why.",
       needs=("dns",),
       applies=lambda lab, server: _online(lab, server) or (
           None if lab.parent else "the lab has no parent zone: its own DS is the trust anchor"))
def test_the_parent_follows_the_cds(probe, lab):
    _, answers, _ = dig(probe, lab.domain, "CDS", "+cd")
    cds = {_ds(t) for t in records(answers, "CDS")}
    _, answers, status = dig(probe, lab.domain, "DS", "+cd")
    ds = {_ds(t) for t in records(answers, "DS")}
    assert ds == cds, (f"expected the DS set of {lab.domain} at {lab.parent.domain} to be its CDS set "
                       f"({', '.join(sorted(str(t[0]) for t in cds)) or 'none'}); it names "
                       f"{', '.join(sorted(str(t[0]) for t in ds)) or 'none'}"
                       + (f" ({status})" if status != "NOERROR" else ""))


@check("dnssec.policy_timings", "The DNSKEY TTL and the signatures' validity are the lab file's",
       standard="RFC 7583 section 3; BIND 9 dnssec-policy", level="recommended",
       why="A key roll's waits are computed from the DNSKEY TTL and the signature validity: a "
           "zone that publishes other values than its policy says makes those waits wrong.",
       fix="Keep dnskey-ttl and signatures-validity in named.conf's dnssec-policy as the lab file's "
           "dnssec.pace (and dnssec.timings) give them; rndc reconfig after a change.",
       needs=("dns",), applies=_online)
def test_policy_timings(probe, lab):
    pace = lab.dnssec.pace
    _, answers, _ = dig(probe, lab.domain, "DNSKEY", "+cd", "+norec", f"@{lab.role('authdns').ipv4}")
    keys = [a.split() for a in answers if a.split()[3:4] == ["DNSKEY"]]
    assert keys, f"expected the DNSKEY set of {lab.domain} from ns1; saw none"
    assert int(keys[0][1]) == pace.dnskey_ttl, (f"expected a DNSKEY TTL of {pace.dnskey_ttl} s; "
                                                f"ns1 publishes {keys[0][1]} s")
    # BIND dates a signature's inception an hour back; the jitter only shortens it.
    for fields in (a.split() for a in answers if a.split()[3:5] == ["RRSIG", "DNSKEY"]):
        span = (_when(fields[8]) - _when(fields[9])).total_seconds() - 3600
        assert pace.signatures_validity - pace.signatures_jitter - 60 <= span <= pace.signatures_validity + 60, (
            f"expected DNSKEY signatures valid for {pace.signatures_validity} s; this one is for "
            f"{span:.0f} s")


MAX_NEGATIVE_TTL = 10800  # RFC 2308 section 5: one to three hours


@check("dnssec.negative_ttl", f"A name that does not exist is cached for at most {MAX_NEGATIVE_TTL // 3600} hours",
       standard="RFC 2308 section 5; RFC 9077",
       why="Resolvers keep a 'no such name' or 'no such record' answer for the SOA's minimum "
           "(and its TTL, the lower of the two; with DNSSEC the NSEC records' TTL): a record added "
           "after someone asked stays invisible to them that long.",
       fix="Set the SOA's last field (and its TTL) to at most 3 hours, sign the zone again, and "
           "drop what the resolver already cached (unbound-control flush_zone <zone>, or "
           "flush_type <name> AAAA).",
       needs=("dns",))
def test_negative_answers_are_cached_briefly(probe, lab):
    _, answers, status = dig(probe, lab.domain, "SOA", "+cd")
    soa = records(answers, "SOA")
    assert soa, f"expected the SOA of {lab.domain}; saw {status or 'no answer'}"
    minimum = int(soa[0].split()[-1])
    assert minimum <= MAX_NEGATIVE_TTL, (f"expected a negative TTL (SOA minimum) of at most "
                                         f"{MAX_NEGATIVE_TTL} s; {lab.domain} says {minimum} s")


def _serial(probe, lab, server) -> int | None:
    _, answers, _ = dig(probe, lab.domain, "SOA", "+norec", f"@{server}")
    soa = records(answers, "SOA")
    return int(soa[0].split()[2]) if soa else None


@check("dnssec.secondary_current", "Every copy of the zone is the primary's version (SOA serial)",
       standard="RFC 1996; RFC 1982; RFC 1034 section 4.3.5", level="recommended",
       why="A secondary that missed a change serves the old records, with their old signatures, "
           "until the zone expires there; once those signatures run out, everyone it answers gets "
           "SERVFAIL. It takes a new version only when the serial goes up (RFC 1982), and hears of "
           "it at once only by NOTIFY (RFC 1996).",
       fix="Raise the SOA serial above every copy's, sign again, and keep NOTIFY on for the "
           "secondaries (notify explicit; also-notify in named.conf); rndc notify <zone> tells "
           "them now.",
       needs=("dns",),
       applies=lambda lab, server: None if lab.secondary else NO_SECONDARY)
def test_every_copy_is_current(probe, lab):
    primary = _serial(probe, lab, lab.role("authdns").ipv4)
    assert primary is not None, f"expected the SOA of {lab.domain} from ns1; saw none"
    for _ in range(5):  # a NOTIFY and its transfer may be under way: a few seconds at most
        copy = _serial(probe, lab, lab.parent.ns_ipv4)
        if copy == primary:
            return
        time.sleep(1)
    assert copy == primary, (f"expected the copy of {lab.domain} on {lab.parent.domain}'s name server "
                             f"({lab.parent.ns_ipv4}) to have ns1's serial {primary}; it has "
                             + (f"{copy}" + (" (newer: a secondary never takes a lower serial)"
                                             if copy > primary else " (it has not taken the change)")
                                if copy is not None else "no copy"))

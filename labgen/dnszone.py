"""The lab zone (SOA, NS, A, AAAA, TLSA, CAA, HTTPS), signed with dnspython; DS and trust anchors.

Signatures are valid from the start of yesterday (UTC) for SIGNATURE_DAYS, so two renders on
the same day give the same bytes, and a lab rendered today validates for a month.
"""

from __future__ import annotations

import datetime as dt
import base64

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone
from dns.dnssectypes import Algorithm
from dns.rdtypes.ANY.NSEC3 import NSEC3
from dns.rdtypes.ANY.NSEC3PARAM import NSEC3PARAM
from dns.rdtypes.util import Bitmap

from .spec import BOGUS, Lab

TTL = 3600  # of the DS lines in trust-anchor files (the zone's own TTLs follow dnssec.pace)
SIGNATURE_DAYS = 30
# A signer re-signs when less than this remains (BIND dnssec-policy's signatures-refresh default):
# a zone whose signatures run out sooner has a signer that stopped (dnssec.signatures_fresh).
SIGNATURE_REFRESH_DAYS = 5
ALGORITHMS = {"ECDSAP256SHA256": Algorithm.ECDSAP256SHA256, "ED25519": Algorithm.ED25519}
# RFC 9276: NSEC3 with 0 extra iterations and an empty salt; more only costs resolvers CPU.
NSEC3_ITERATIONS = 0
NSEC3_SALT = b""
NSEC3_SHA1 = 1


def signing_window(now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(now.date() - dt.timedelta(days=1), dt.time(), dt.timezone.utc)
    return start, start + dt.timedelta(days=SIGNATURE_DAYS)


def serial_for(now: dt.datetime) -> int:
    """The signing day as the SOA serial: same-day renders match."""
    return int(signing_window(now)[0].strftime("%Y%m%d00"))


def build(lab: Lab, tlsa: dict[str, list[str]], bogus_ds, now: dt.datetime) -> dns.zone.Zone:
    """The unsigned zone. tlsa maps a web host's name to its TLSA rdata texts; bogus_ds is the
    DS of the broken child zone, so the break is in its signatures, not in the chain."""
    serial = serial_for(now)
    origin = dns.name.from_text(lab.domain)
    zone = dns.zone.Zone(origin)
    ns = lab.role("authdns")
    pace = lab.dnssec.pace

    def add(name: str, rdtype: str, *texts: str) -> None:
        rdataset = zone.find_rdataset(name, rdtype, create=True)
        for text in texts:
            rdataset.add(dns.rdata.from_text("IN", rdtype, text, origin=origin), pace.ttl)

    add("@", "SOA", f"{ns.name} hostmaster {serial} 7200 3600 1209600 {pace.negative_ttl}")
    add("@", "NS", ns.name)
    # CAA (RFC 8659): only the lab CA may issue, nobody may issue wildcards.
    caa = [f'0 issue "{lab.caa.issuer}"', '0 issuewild ";"']
    if lab.caa.iodef:
        caa.append(f'0 iodef "{lab.caa.iodef}"')
    add("@", "CAA", *caa)
    for host in lab.hosts:
        add(host.name, "A", str(host.ipv4))
        add(host.name, "AAAA", str(host.ipv6))
    for host in lab.web:
        add(f"_443._tcp.{host.name}", "TLSA", *tlsa[host.name])
        # HTTPS record (RFC 9460): tells clients the ALPN protocols before they connect.
        add(host.name, "HTTPS", f'1 . alpn="{",".join(alpn(lab, host.software))}"')
    add(BOGUS, "NS", f"{ns.name}.{lab.domain}.")
    add(BOGUS, "DS", bogus_ds.to_text())
    return zone


def bogus_name(lab: Lab) -> str:
    return f"{BOGUS}.{lab.domain}"


def build_bogus(lab: Lab, now: dt.datetime) -> dns.zone.Zone:
    """The deliberately broken child zone: its apex A record, signed like the parent."""
    serial = serial_for(now)
    ns = lab.role("authdns")
    zone = dns.zone.Zone(dns.name.from_text(bogus_name(lab)))
    pace = lab.dnssec.pace
    for rdtype, text in (("SOA", f"{ns.fqdn}. hostmaster.{lab.domain}. {serial} 7200 3600 1209600 "
                                 f"{pace.negative_ttl}"),
                         ("NS", f"{ns.fqdn}."), ("A", str(ns.ipv4)), ("AAAA", str(ns.ipv6))):
        zone.find_rdataset("@", rdtype, create=True).add(dns.rdata.from_text("IN", rdtype, text), pace.ttl)
    return zone


def break_signatures(zone: dns.zone.Zone, rdtype: str) -> None:
    """Flip one bit in every signature over the apex's rdtype RRset: the data stays, the proof
    no longer matches."""
    node = zone.find_node("@")
    covered = dns.rdatatype.from_text(rdtype)
    for rdataset in node.rdatasets:
        if rdataset.rdtype == dns.rdatatype.RRSIG:
            broken = [r.replace(signature=r.signature[:-1] + bytes([r.signature[-1] ^ 1]))
                      if r.type_covered == covered else r for r in rdataset]
            rdataset.clear()
            for r in broken:
                rdataset.add(r)


def alpn(lab: Lab, software: str) -> list[str]:
    """ALPN protocols a web server offers, newest first."""
    http3 = software == "nginx" and lab.http3 and lab.target.has("nginx_http3")
    return ["h3", "h2"] if http3 else ["h2"]


def dnskey_for(key, algorithm: str, flags: int = 257):
    return dns.dnssec.make_dnskey(key.public_key(), ALGORITHMS[algorithm], flags=flags)


def ds_for(name: str, dnskey) -> dns.rdata.Rdata:
    return dns.dnssec.make_ds(dns.name.from_text(name), dnskey, "SHA256")


def sign(zone: dns.zone.Zone, keys: list, denial: str, now: dt.datetime) -> None:
    """Sign in place with (private key, DNSKEY) pairs: one combined key, or a KSK (SEP flag,
    signs the DNSKEY set) and a ZSK (everything else); NSEC via sign_zone, or an NSEC3 chain."""
    inception, expiration = signing_window(now)
    ksks = [k for k in keys if k[1].flags & 1] or keys
    zsks = [k for k in keys if not k[1].flags & 1] or keys
    if denial == "nsec":
        dns.dnssec.sign_zone(zone, keys=keys, inception=inception, expiration=expiration,
                             deterministic=True)
        return
    # dnspython's sign_zone does not implement NSEC3 yet: build the chain, then sign each RRset.
    with zone.writer() as txn:
        for _, dnskey in keys:
            txn.add(zone.origin, txn.get(zone.origin, dns.rdatatype.SOA).ttl, dnskey)
        txn.add(zone.origin, 0, NSEC3PARAM(dns.rdataclass.IN, dns.rdatatype.NSEC3PARAM,
                                           NSEC3_SHA1, 0, NSEC3_ITERATIONS, NSEC3_SALT))
        _add_nsec3_chain(txn, zone.origin)
        for name in sorted(txn.iterate_names()):
            delegation = name.derelativize(zone.origin) != zone.origin and txn.get(name, dns.rdatatype.NS)
            for rdataset in list(txn.get_node(name).rdatasets):
                # At a delegation only the DS is the parent's to sign (RFC 4035 section 2.2).
                if rdataset.rdtype != dns.rdatatype.RRSIG and \
                        (not delegation or rdataset.rdtype == dns.rdatatype.DS):
                    rrset = dns.rrset.RRset(name, rdataset.rdclass, rdataset.rdtype)
                    rrset.update(rdataset)
                    dns.dnssec.default_rrset_signer(
                        txn, rrset, zone.origin, ksks, zsks, inception=inception,
                        expiration=expiration, origin=zone.origin, deterministic=True)


def _add_nsec3_chain(txn, origin: dns.name.Name) -> None:
    """RFC 5155 section 7.1: one NSEC3 per owner name and per empty non-terminal."""
    owners = set()
    for name in txn.iterate_names():
        name = name.derelativize(origin)
        while name != origin and name.is_subdomain(origin):
            owners.add(name)
            name = name.parent()
    owners.add(origin)
    hashed = sorted((dns.dnssec.nsec3_hash(n, NSEC3_SALT, NSEC3_ITERATIONS, NSEC3_SHA1), n)
                    for n in owners)
    ttl = txn.get(origin, dns.rdatatype.SOA)[0].minimum
    for i, (digest, name) in enumerate(hashed):
        node = txn.get_node(name)
        types = {r.rdtype for r in node.rdatasets} if node else set()
        if types:
            types.add(dns.rdatatype.RRSIG)
        nxt = base64.b32hexdecode(hashed[(i + 1) % len(hashed)][0])
        rdata = NSEC3(dns.rdataclass.IN, dns.rdatatype.NSEC3, NSEC3_SHA1, 0, NSEC3_ITERATIONS,
                      NSEC3_SALT, nxt, Bitmap.from_rdtypes(sorted(types)).windows)
        txn.add(dns.name.from_text(digest.lower(), origin), ttl, rdata)


def zone_text(zone: dns.zone.Zone) -> str:
    return f"; labgen zone {zone.origin.to_text()} (signed)\n" + zone.to_text(sorted=True, want_origin=True)


# Where ns1 keeps what a sysadmin needs to sign the zone again: the unsigned source and the
# signing key in BIND's format (dnssec-signzone -K).
KEY_DIR = "/etc/bind/labgen/keys"
BIND_ALGORITHMS = {"ECDSAP256SHA256": 13, "ED25519": 15}


def source_path(zone_path: str) -> str:
    return f"{zone_path}.unsigned"


def resign_command(lab: Lab, zone_path: str, extra: str = "", key_dir: str = KEY_DIR) -> str:
    """The command that signs the zone source again on ns1, as labgen signed it: one combined
    key (-z), NSEC or NSEC3 without salt or extra iterations, the serial one higher. extra's
    options come after labgen's, so they win (dnssec-signzone reads the last -3 and -H)."""
    nsec3 = " -3 -" if lab.dnssec.denial == "nsec3" else ""
    extra = f" {extra}" if extra else ""
    return (f"dnssec-signzone -q -z -S -K {key_dir} -o {lab.domain}{nsec3}{extra} -N increment "
            f"-f {zone_path} {source_path(zone_path)} && systemctl restart named")


def new_key_command(lab: Lab, zone_path: str, key_dir: str, same_algorithm: bool) -> str:
    """A key swapped in one step: a new key-signing key made in key_dir (of the zone's algorithm,
    or of the other: an algorithm flag day) and the zone signed with it alone, while the DS at
    the parent still names the old key."""
    algorithm = lab.dnssec.algorithm if same_algorithm else \
        next(a for a in BIND_ALGORITHMS if a != lab.dnssec.algorithm)
    return (f"rm -rf {key_dir} && mkdir -p {key_dir} && dnssec-keygen -q -K {key_dir} -a {algorithm} "
            f"-f KSK {lab.domain} >/dev/null && " + resign_command(lab, zone_path, key_dir=key_dir))


def source_text(lab: Lab, zone: dns.zone.Zone, zone_path: str) -> str:
    """The unsigned zone as a sysadmin edits it, headed by how to sign it again."""
    return (f"; labgen zone {zone.origin.to_text()}, unsigned. named serves the signed copy "
            f"{zone_path}.\n; After a change, sign it again on this host (as root):\n"
            f";   {resign_command(lab, zone_path)}\n" + zone.to_text(sorted=True, want_origin=True))


def bind_key_files(domain: str, algorithm: str, key, now: dt.datetime, flags: int = 257,
                   state=None) -> dict[str, tuple[str, bool]]:
    """A signing key as dnssec-signzone and named read it: K<zone>.+<alg>+<tag>.key (public)
    and .private (secret: True), active since the signing window opened; with state (a
    function of the key tag, the flags and that time), also BIND's .state file."""
    dnskey = dnskey_for(key, algorithm, flags)
    number = BIND_ALGORITHMS[algorithm]
    base = f"K{domain}.+{number:03d}+{dns.dnssec.key_id(dnskey):05d}"
    if algorithm == "ED25519":
        from cryptography.hazmat.primitives import serialization
        raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                serialization.NoEncryption())
    else:
        raw = key.private_numbers().private_value.to_bytes(32, "big")
    since = signing_window(now)[0]
    active = since.strftime("%Y%m%d%H%M%S")
    private = (f"Private-key-format: v1.3\nAlgorithm: {number} ({algorithm})\n"
               f"PrivateKey: {base64.b64encode(raw).decode()}\n"
               f"Created: {active}\nPublish: {active}\nActivate: {active}\n")
    files = {f"{base}.key": (f"{domain}. IN DNSKEY {dnskey.to_text()}\n", False),
             f"{base}.private": (private, True)}
    if state:
        files[f"{base}.state"] = (state(dns.dnssec.key_id(dnskey), flags, since), False)
    return files


def ds_line(domain: str, ds) -> str:
    """The DS in zone-file form: a trust anchor file for Unbound and ldns-verify-zone -k."""
    return f"{domain}. {TTL} IN DS {ds.to_text()}\n"


def delv_anchors(domain: str, ds) -> str:
    """The same DS as a BIND trust-anchors clause, for delv -a."""
    return (f'trust-anchors {{\n    {domain}. static-ds {ds.key_tag} {ds.algorithm.value} '
            f'{ds.digest_type.value} "{ds.digest.hex().upper()}";\n}};\n')


def anchor(lab: Lab, own_ds, parent_ds=None) -> tuple[str, str]:
    """What the lab's resolver and client trust (zone-file line, delv clause): the lab's own
    DS, its own parent zone's (parent_ds), or in a class the lab root's."""
    ds = parent_ds or (dns.rdata.from_text("IN", "DS", lab.parent.ds) if lab.parent else own_ds)
    return ds_line(lab.anchor_domain, ds), delv_anchors(lab.anchor_domain, ds)

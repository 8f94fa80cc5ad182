"""HTTPS, the certificate: it chains to the lab CA, names the host, and uses the profile's key
types and signature hashes."""

from __future__ import annotations

import re

from labgen.checks import check
from labgen.checks.netutil import handshake, openssl_reason, s_client, served_certificate
from labgen.render import ca_trust_path


def hashes(lab) -> set[str]:
    """The hashes (sha256, ...) the profile's signature algorithms use."""
    return {m.group(1) for a in lab.profile.signature_algorithms if (m := re.search(r"sha(\d+)", a))}


@check("https.chain", "The certificate chain validates to the lab CA",
       standard="RFC 5280 section 6; internet.nl certificate trust chain",
       why="A chain that does not end at a trusted CA gives the visitor no proof of who answers.",
       fix="Serve the certificate the lab CA issued (labgen renders it), with its chain.",
       needs=("tls",))
def test_chain_to_lab_ca(client, server, family, lab):
    ok, out = s_client(client, server, family, "-brief", "-CAfile", ca_trust_path(lab),
                       "-verify_return_error")
    assert ok and "Verification: OK" in out, \
        f"expected a chain that validates to the lab CA; openssl says: {openssl_reason(out)}"


@check("https.name", "The certificate names the host",
       standard="RFC 9525; internet.nl certificate domain name",
       why="A certificate for another name would let that name's owner impersonate the site.",
       fix="Issue the certificate with the host's name in subjectAltName.",
       needs=("tls",))
def test_name_matches(client, server, family):
    text = served_certificate(client, server, family)
    names = re.findall(r"DNS:([^,\s]+)", text)
    assert server.fqdn in names, f"subjectAltName: {', '.join(names) or 'none'}"


@check("https.key", "Key type, size and signature hash as the profile says",
       standard="Mozilla server-side TLS; internet.nl certificate public key and signature",
       why="A short key or a SHA-1 signature can be broken or forged.",
       fix="Use an ECDSA P-256/P-384 key (or RSA of the profile's size) and SHA-256 or better.",
       needs=("tls",))
def test_key_and_signature(client, server, family, lab):
    text = served_certificate(client, server, family)
    assert text, "no certificate served"
    sig = re.search(r"Signature Algorithm: (\S+)", text).group(1).lower()
    assert any(f"sha{h}" in sig for h in hashes(lab)), f"certificate signed with {sig}"
    if "id-ecPublicKey" in text:
        curve = re.search(r"ASN1 OID: (\S+)", text).group(1)
        assert "ecdsa" in lab.profile.certificate_types and curve in lab.profile.certificate_curves, \
            f"ECDSA key on {curve}"
    else:
        bits = int(re.search(r"Public-Key: \((\d+) bit\)", text).group(1))
        assert "rsa" in lab.profile.certificate_types and bits >= lab.profile.rsa_key_size, \
            f"RSA key of {bits} bits, the profile wants ECDSA or RSA of {lab.profile.rsa_key_size}"
    out = handshake(client, server, family)
    scheme = re.search(r"^Signature type: (\S+)", out, re.M)
    assert scheme and scheme.group(1) in lab.profile.signature_algorithms, \
        f"handshake signed with {scheme.group(1) if scheme else 'nothing'}"

"""HTTPS, the certificate: it chains to the lab CA, names the host, and uses the profile's key
types and signature hashes."""

from __future__ import annotations

import datetime as dt
import re

from labgen.checks import check, with_acme
from labgen.checks.netutil import (accepted, certificate_text, endpoint, openssl_reason, s_client,
                                   served_certificate)
from labgen.acme import LIFETIMES
from labgen.hostpaths import server_ca_path

# What a certificate's lifetime may exceed its profile by (clocks, a CA that rounds).
LIFETIME_SLACK = 60


def hashes(lab) -> set[str]:
    """The hashes (sha256, ...) the profile's signature algorithms use."""
    return {m.group(1) for a in lab.profile.signature_algorithms if (m := re.search(r"sha(\d+)", a))}


@check("https.chain", "The certificate chain validates to the lab CA",
       standard="RFC 5280 section 6; internet.nl certificate trust chain",
       why="A chain that does not end at a trusted CA gives the visitor no proof of who answers.",
       fix="Serve the certificate the lab CA issued (labgen renders it), with its chain.",
       needs=("tls",))
def test_chain_to_lab_ca(probe, server, family, lab):
    # That CA alone, not the probe's whole store (which trusts the lab CA in an ACME lab too).
    ok, out = s_client(probe, server, family, "-brief", "-CAfile", server_ca_path(lab), "-no-CApath",
                       "-no-CAstore", "-verify_return_error")
    issuer = "the lab's ACME CA" if lab.certificates.acme else "the lab CA"
    assert ok and "Verification: OK" in out, \
        f"expected a chain that validates to {issuer}; openssl says: {openssl_reason(out)}"


@check("https.name", "The certificate names the host",
       standard="RFC 9525; internet.nl certificate domain name",
       why="A certificate for another name would let that name's owner impersonate the site.",
       fix="Issue the certificate with the host's name in subjectAltName.",
       needs=("tls",))
def test_name_matches(probe, server, family):
    text = served_certificate(probe, server, family)
    names = re.findall(r"DNS:([^,\s]+)", text)
    assert server.fqdn in names, f"subjectAltName: {', '.join(names) or 'none'}"


@check("https.key", "Key type and curve as the profile says; RSA of at least 2048 bits",
       standard="Mozilla server-side TLS; NCSC TLS guidelines 2025; internet.nl certificate public key",
       why="A key of a type or curve outside the profile, or an RSA key under 2048 bits, can be "
           "broken or is not accepted by every client.",
       fix="Use an ECDSA P-256/P-384 key (or, where the profile allows RSA, RSA of the profile's "
           "size).", needs=("tls",))
def test_key_type(probe, server, family, lab):
    text = served_certificate(probe, server, family)
    assert text, "no certificate served"
    if "id-ecPublicKey" in text:
        curve = re.search(r"ASN1 OID: (\S+)", text).group(1)
        assert "ecdsa" in lab.profile.certificate_types and curve in lab.profile.certificate_curves, \
            f"the certificate has an ECDSA key on {curve}; expected one of the profile's curves: " \
            f"{', '.join(lab.profile.certificate_curves)}"
    else:
        bits = int(re.search(r"Public-Key: \((\d+) bit\)", text).group(1))
        assert "rsa" in lab.profile.certificate_types, \
            f"the certificate has an RSA key of {bits} bits; the {lab.profile.name} profile " \
            "wants ECDSA only"
        assert bits >= 2048, f"the certificate has an RSA key of {bits} bits; expected at least " \
            "2048 (internet.nl: insufficient)"


# s_client options that make the server send its certificate of one key type.
KEY_TYPE_SIGALGS = {"ecdsa": "ecdsa_secp256r1_sha256:ecdsa_secp384r1_sha384",
                    "rsa": "rsa_pss_rsae_sha256:rsa_pss_rsae_sha384:rsa_pkcs1_sha256"}


def certificates(probe, server, family, lab) -> dict[str, str]:
    """The text of each certificate the server sends: the one it picks by itself, and the one
    for each of the profile's key types that it has."""
    found = {"default": served_certificate(probe, server, family)}
    for kind in lab.profile.certificate_types:
        found[kind] = certificate_text(probe, server, family, "-sigalgs", KEY_TYPE_SIGALGS[kind])
    return {kind: text for kind, text in found.items() if text}


@check("https.rsa_size", "RSA keys of at least the profile's size (3072 bits); or no RSA at all",
       standard="NCSC TLS guidelines 2025 (2048 phase out); internet.nl certificate public key",
       why="NCSC phases RSA-2048 out: it will not hold as long as the data it protects.",
       fix="Issue the RSA certificate with a key of rsa_key_size bits (labgen renders 3072).",
       level="recommended", needs=("tls",))
def test_rsa_key_size(probe, server, family, lab):
    if "rsa" not in lab.profile.certificate_types:
        # Asked for RSA only, the server refuses with an alert or sends what it has; silence
        # (a server that stopped answering) is no proof of "no RSA key" (accepted() fails it).
        if accepted(probe, server, family, "-sigalgs", KEY_TYPE_SIGALGS["rsa"]):
            text = certificate_text(probe, server, family, "-sigalgs", KEY_TYPE_SIGALGS["rsa"])
            assert "rsaEncryption" not in text, f"the server sent an RSA certificate; the " \
                f"{lab.profile.name} profile wants ECDSA only, so no RSA key at all"
        return
    text = certificate_text(probe, server, family, "-sigalgs", KEY_TYPE_SIGALGS["rsa"])
    bits = re.search(r"Public-Key: \((\d+) bit\)", text)
    assert bits and "rsaEncryption" in text, "the server sent no RSA certificate when asked for " \
        f"one; the {lab.profile.name} profile wants one"
    assert int(bits.group(1)) >= lab.profile.rsa_key_size, (
        f"the RSA certificate has a {bits.group(1)}-bit key; expected at least "
        f"{lab.profile.rsa_key_size} bits (2048 is phase out for internet.nl)")


@check("https.cert_sig", "The certificate is signed with SHA-256 or better",
       standard="RFC 5280; NCSC TLS guidelines 2025; internet.nl signature of certificate",
       why="A certificate signed over SHA-1 can be forged: a collision gives an attacker a "
           "certificate the CA never issued.",
       fix="Have the CA sign with SHA-256 or better (labgen's lab CA does).", needs=("tls",))
def test_certificate_signature(probe, server, family, lab):
    # Which key types the profile wants is https.key's to judge; this check judges the
    # signature of every certificate the server sends.
    served = certificates(probe, server, family, lab)
    assert served, "the server sent no certificate; expected one to read its signature"
    for text in served.values():
        sig = re.search(r"Signature Algorithm: (\S+)", text).group(1)
        key = "ECDSA" if "id-ecPublicKey" in text else "RSA"
        assert any(f"sha{h}" in sig.lower() for h in hashes(lab)), (
            f"the {key} certificate is signed with {sig}; expected SHA-256 or better "
            f"(sha{', sha'.join(sorted(hashes(lab)))})")


@check("https.ocsp", "OCSP stapling: not in the certificate (the lab CA runs no OCSP responder)",
       standard="RFC 6066 section 8; RFC 6960; internet.nl OCSP stapling (not in certificate)",
       why="internet.nl only judges stapling when the certificate names an OCSP responder; the "
           "lab CA names none, so there is nothing to staple, and stapling stays off.",
       fix="Keep the certificate without an OCSP address and stapling off; with a public CA "
           "that names a responder, turn stapling on (nginx ssl_stapling / Apache SSLUseStapling).",
       level="informational", needs=("tls",))
def test_ocsp_stapling(probe, server, family):
    text = served_certificate(probe, server, family)
    assert text, "no certificate served"
    _, out = s_client(probe, server, family, "-status")
    responder = re.search(r"OCSP - URI:(\S+)", text)
    if responder:
        assert "OCSP Response Status: successful" in out, (
            f"the certificate names the OCSP responder {responder.group(1)}, but the server "
            "stapled no valid OCSP response; expected it to staple one")
    else:
        assert "OCSP response: no response sent" in out, (
            "the certificate names no OCSP responder, yet the server sent an OCSP response; "
            "expected none (internet.nl: not in certificate)")


@check("https.lifetime", "The certificate's lifetime is within the lab's lifetime profile",
       standard="CA/Browser Forum ballot SC-081; Let's Encrypt short-lived certificates",
       why="Short-lived certificates limit how long a stolen key or a wrong certificate stays "
           "usable, without revocation: they work only when renewal runs by itself.",
       fix="Get the certificate from the lab's ACME CA (labgen-certs renew), which issues for "
           "the lab file's certificates.lifetime.",
       needs=("tls",),
       applies=with_acme("the lab CA issues at render time for the profile's maximum_certificate_lifespan"))
def test_lifetime_within_profile(probe, server, family, lab):
    text = probe.run(f"openssl s_client -connect {endpoint(server, family)} -servername {server.fqdn} "
                     "</dev/null 2>/dev/null | openssl x509 -noout -startdate -enddate -dateopt iso_8601").stdout
    dates = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    assert "notBefore" in dates and "notAfter" in dates, "no certificate served"
    start, end = (dt.datetime.fromisoformat(dates[k].strip().replace("Z", "+00:00")) for k in ("notBefore", "notAfter"))
    allowed = LIFETIMES[lab.certificates.lifetime]
    life = (end - start).total_seconds()
    assert life <= allowed + LIFETIME_SLACK, (
        f"expected a certificate for at most {allowed} s ({lab.certificates.lifetime}); the served one "
        f"is valid for {life:.0f} s, {dates['notBefore'].strip()} to {dates['notAfter'].strip()}")


@check("https.acme_challenge", "The ACME challenge path is open over HTTP",
       standard="RFC 8555 section 8.3",
       why="The ACME CA proves the name by fetching a token from "
           "http://<host>/.well-known/acme-challenge/ (following redirects); a rule that blocks "
           "that path stops every renewal, and a short-lived certificate expires days later.",
       fix="Let /.well-known/acme-challenge/ through (a missing token answers 404, not 403): "
           "remove the deny rule, then test with labgen-certs renew --force.",
       needs=("https",),
       applies=with_acme("the lab CA issues without a challenge (certificates: lab-ca)"))
def test_acme_challenge_open(probe, server):
    url = f"http://{server.fqdn}/.well-known/acme-challenge/labgen-probe-no-such-token"
    status = probe.run(f"curl -s -o /dev/null -L --max-redirs 3 --max-time 10 -w '%{{http_code}}' {url}").stdout.strip()
    assert status == "404", (f"expected 404 for a token that does not exist at {url} (what the ACME "
                             f"CA's check reaches); the server answered {status or 'nothing'}")

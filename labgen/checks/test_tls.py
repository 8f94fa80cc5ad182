"""HTTPS, the TLS side: protocol versions, cipher suites, key exchange groups, 0-RTT,
compression and renegotiation, each judged against the lab's profile."""

from __future__ import annotations

import dataclasses
import re

from labgen.checks import check
from labgen.checks.netutil import (RENEGOTIATIONS, accepted, endpoint, handshake,
                                   renegotiation_probe, renegotiations, require_refusal, s_client)

# Groups a client can offer that no labgen profile should accept (probe values, not policy).
PROBE_GROUPS = ("X25519MLKEM768", "X25519", "prime256v1", "secp384r1", "secp521r1", "X448",
                "ffdhe2048", "ffdhe3072")
# TLS 1.3 suites that exist but that no profile offers.
PROBE_SUITES = ("TLS_AES_128_CCM_SHA256", "TLS_AES_128_CCM_8_SHA256")
SECLEVEL0 = "'ALL:COMPLEMENTOFALL:@SECLEVEL=0'"  # let the client offer even broken suites


@check("https.tls13", "TLS 1.3 is offered", standard="RFC 8446; internet.nl TLS version",
       why="TLS 1.3 removes the weak parts of older versions and makes every handshake forward-secret.",
       fix="Enable TLSv1.3 (nginx ssl_protocols, Apache SSLProtocol).",
       needs=("tls",))
def test_tls13_offered(probe, server, family):
    out = handshake(probe, server, family, "-tls1_3")
    assert "Protocol version: TLSv1.3" in out, "expected a TLS 1.3 handshake; the server refused it"


@check("https.no_tls10_11", "TLS 1.0 and 1.1 are refused",
       standard="RFC 8996; internet.nl TLS version (insufficient)",
       why="TLS 1.0 and 1.1 are deprecated: their hashes and modes are broken.",
       fix="Offer only TLSv1.2 and TLSv1.3 (intermediate) or only TLSv1.3 (modern).",
       needs=("tls",))
def test_old_tls_refused(probe, server, family):
    for version in ("-tls1", "-tls1_1"):
        seen = accepted(probe, server, family, version, "-cipher", SECLEVEL0)
        assert not seen, f"the server accepted {seen}; expected TLS 1.0 and 1.1 to be refused"


@check("https.tls12", "TLS 1.2 as the profile says: refused (modern) or offered (intermediate)",
       standard="Mozilla server-side TLS; internet.nl TLS version",
       why="The profile fixes the oldest version the lab accepts; anything else is a drift.",
       fix="Set the server's protocols to the profile's tls_versions.",
       needs=("tls",))
def test_tls12_per_profile(probe, server, family, lab):
    if lab.profile.tls12:
        out = handshake(probe, server, family, "-tls1_2")
        assert "Protocol version: TLSv1.2" in out, \
            f"expected TLS 1.2 under the {lab.profile.name} profile; the server refused it"
    else:
        seen = accepted(probe, server, family, "-tls1_2")
        assert not seen, f"the server accepted {seen}; the {lab.profile.name} profile refuses TLS 1.2"


@check("https.suites", "Only the profile's cipher suites are accepted",
       standard="Mozilla server-side TLS; internet.nl TLS ciphers",
       why="A suite outside the profile (CBC, RSA key exchange, CCM) weakens every visitor's "
           "connection that picks it.",
       fix="Set the TLS 1.2 ciphers and TLS 1.3 Ciphersuites to the profile's lists.",
       needs=("tls",))
def test_only_profile_suites(probe, server, family, lab):
    others = "".join(f":!{c}" for c in lab.profile.ciphers["openssl"])
    seen = accepted(probe, server, family, "-tls1_2", "-cipher",
                    f"'ALL:COMPLEMENTOFALL{others}:@SECLEVEL=0'")
    assert not seen, f"the server accepted {seen}, a suite outside the profile"
    suites = [s for s in PROBE_SUITES if s not in lab.profile.ciphersuites]
    seen = accepted(probe, server, family, "-tls1_3", "-ciphersuites", ":".join(suites))
    assert not seen, f"the server accepted {seen}, a suite outside the profile"


def server_groups(lab, hosts, server) -> list[str]:
    """The profile's groups that the server's own OpenSSL has, in the profile's order."""
    version = hosts[server.name].run("openssl version").stdout.split()[1].split("-")[0]
    return dataclasses.replace(lab.target, openssl=version).groups(lab.profile.tls_curves)


@check("https.groups", "Key exchange uses the profile's groups, hybrid post-quantum first",
       standard="RFC 8446 section 4.2.7; draft-ietf-tls-ecdhe-mlkem; internet.nl key exchange",
       why="The group protects the session keys; X25519MLKEM768 also resists a future quantum "
           "computer recording today's traffic.",
       fix="nginx ssl_ecdh_curve / Apache SSLOpenSSLConfCmd Groups with the profile's groups.",
       needs=("tls", "tools"))
def test_key_exchange_groups(probe, server, family, lab, hosts):
    wanted = server_groups(lab, hosts, server)
    out = handshake(probe, server, family, "-groups", ":".join(PROBE_GROUPS))
    got = re.search(r"(?:Negotiated TLS1.3 group|Server Temp Key): ([\w-]+)", out)
    assert got and got.group(1) == wanted[0], \
        f"expected key exchange with {wanted[0]}; the server chose {got.group(1) if got else 'nothing'}"
    others = [g for g in PROBE_GROUPS if g not in lab.profile.tls_curves]
    seen = accepted(probe, server, family, "-groups", ":".join(others))
    assert not seen, f"the server accepted {seen} with a group outside the profile ({', '.join(others)})"


@check("https.no_0rtt", "No 0-RTT early data", standard="RFC 8446 section 8; internet.nl 0-RTT",
       why="Early data can be replayed by an attacker, repeating a request the user sent once.",
       fix="nginx: ssl_early_data off; Apache does not offer it.",
       needs=("tls",))
def test_no_early_data(probe, server, family):
    session = f"/tmp/labgen-{server.name}-{family}.session"
    # A session ticket arrives after the handshake: keep the connection open for a moment.
    target = endpoint(server, family)
    probe.run(f"(sleep 0.3; printf 'HEAD / HTTP/1.0\\r\\n\\r\\n') | timeout 2 openssl s_client "
               f"-connect {target} -servername {server.fqdn} -sess_out {session} -ign_eof")
    ticket = probe.run(f"openssl sess_id -in {session} -noout -text")
    assert ticket.rc == 0, "no TLS session to resume (the server did not answer)"
    probe.run(f"echo 'HEAD / HTTP/1.0' > {session}.early")
    _, out = s_client(probe, server, family, "-sess_in", session, "-early_data", f"{session}.early")
    probe.run(f"rm -f {session} {session}.early")
    assert "Early data was accepted" not in out, "the server accepted 0-RTT data"
    assert not re.search(r"Max Early Data: [1-9]", ticket.stdout), "the server's tickets allow 0-RTT"


@check("https.no_compression", "No TLS compression", standard="RFC 7457 section 2.6 (CRIME); "
       "internet.nl TLS compression",
       why="Compressing secrets with attacker-chosen data leaks them (CRIME).",
       fix="Apache: SSLCompression off; nginx never compresses.",
       needs=("tls",))
def test_no_tls_compression(probe, server, family):
    handshakes = 0
    for version in ("-tls1_3", "-tls1_2"):
        ok, out = s_client(probe, server, family, version, "-comp", "-cipher", SECLEVEL0)
        if ok:
            handshakes += 1
            found = re.search(r"Compression: (.*)", out)
            assert "Compression: NONE" in out, \
                f"the server compresses TLS records ({found.group(1) if found else 'unknown'})"
    assert handshakes, "no handshake succeeded with TLS 1.3 or 1.2"


def tls12_only(lab, server) -> str | None:
    """`applies` of the properties that exist only in TLS 1.2 (renegotiation, EMS, cipher
    order): N/A under a TLS 1.3-only profile, whose refusal of TLS 1.2 https.tls12 proves."""
    return None if lab.profile.tls12 else (
        f"the {lab.profile.name} profile offers TLS 1.3 only, and this exists only in TLS 1.2")


@check("https.renegotiation", "Only secure renegotiation (RFC 5746)",
       standard="RFC 5746; internet.nl secure renegotiation",
       why="Insecure renegotiation lets an attacker splice their own request in front of the "
           "user's (CVE-2009-3555).",
       fix="Keep SSLInsecureRenegotiation off (Apache); nginx refuses renegotiation itself.",
       applies=tls12_only,
       needs=("tls",))
def test_secure_renegotiation(probe, server, family, lab):
    out = tls12_session(probe, server, family, lab, "secure renegotiation", "-cipher", SECLEVEL0)
    assert "Secure Renegotiation IS supported" in out, \
        "the server does not offer secure renegotiation (no RFC 5746 renegotiation_info)"


# internet.nl 1.11 (NCSC TLS guidelines 2025). Properties that exist only in TLS 1.2 (Extended
# Master Secret, renegotiation, cipher order) are judged on whatever TLS 1.2 the server offers;
# a server that refuses TLS 1.2 under a TLS 1.3-only profile cannot have them wrong (internet.nl:
# "not applicable, no TLS 1.2", rated good), and the message says why. Under a profile that
# offers TLS 1.2, a refused TLS 1.2 handshake fails the check: its subject is missing.

# TLS 1.2 suites NCSC 2025 rates "phase out" (probe values, not policy): finite-field DHE, RSA
# key exchange, 3DES.
PHASE_OUT_SUITES = ("DHE-RSA-AES256-GCM-SHA384", "DHE-RSA-AES128-GCM-SHA256",
                    "DHE-RSA-CHACHA20-POLY1305", "DHE-RSA-AES256-SHA256", "DHE-RSA-AES128-SHA256",
                    "AES256-GCM-SHA384", "AES128-GCM-SHA256", "AES256-SHA256", "AES128-SHA256",
                    "AES256-SHA", "AES128-SHA", "ECDHE-ECDSA-DES-CBC3-SHA", "ECDHE-RSA-DES-CBC3-SHA",
                    "DES-CBC3-SHA")
# Handshake signature schemes with SHA-1 or SHA-224 (RFC 9155 deprecates them in TLS 1.2).
WEAK_HASH_SIGALGS = ("ecdsa_sha1", "rsa_pkcs1_sha1", "ecdsa_sha224", "rsa_pkcs1_sha224")
# The finite-field groups of RFC 7919, which TLS 1.3 can also negotiate.
FFDHE_GROUPS = ("ffdhe2048", "ffdhe3072", "ffdhe4096", "ffdhe6144", "ffdhe8192")


def tls12_session(probe, server, family, lab, subject: str, *options: str) -> str:
    """s_client's output of a TLS 1.2 handshake to judge a TLS 1.2-only property."""
    ok, out = s_client(probe, server, family, "-tls1_2", *options)
    assert ok, (f"the server refused TLS 1.2, which the {lab.profile.name} profile offers, so "
                f"{subject} could not be judged; expected a TLS 1.2 handshake to succeed")
    return out


@check("https.ems", "Extended Master Secret with TLS 1.2 (TLS 1.3 always binds it)",
       standard="RFC 7627; RFC 8446 section 7.1; internet.nl Extended Master Secret",
       why="Without it, an attacker in the middle can make two TLS 1.2 sessions share one master "
           "secret and resume the victim's session as their own (triple handshake attack).",
       fix="Keep the Extended Master Secret on (OpenSSL's default): remove any "
           "'Options -ExtendedMasterSecret' (nginx ssl_conf_command, Apache SSLOpenSSLConfCmd).",
       needs=("tls",), applies=tls12_only)
def test_extended_master_secret(probe, server, family, lab):
    out = tls12_session(probe, server, family, lab, "the Extended Master Secret")
    assert "Extended master secret: yes" in out, (
        "the TLS 1.2 handshake went without the Extended Master Secret (RFC 7627); expected "
        "the server to accept the client's extended_master_secret extension")


@check("https.kex_hash", "Handshake signatures use SHA-256 or better, never SHA-1 or SHA-224",
       standard="RFC 9155; RFC 8446 section 4.2.3; internet.nl hash function for key exchange",
       why="The server signs the key exchange; a signature over SHA-1 or SHA-224 can be forged, "
           "and with it the server's identity in the handshake.",
       fix="List only the profile's signature algorithms (nginx ssl_conf_command / Apache "
           "SSLOpenSSLConfCmd SignatureAlgorithms).", needs=("tls",))
def test_key_exchange_hash(probe, server, family, lab):
    out = handshake(probe, server, family)
    scheme = re.search(r"^Signature type: (\S+)", out, re.M)
    assert out, "no TLS handshake with the server succeeded; expected one to read its signature"
    assert scheme and scheme.group(1) in lab.profile.signature_algorithms, (
        f"the server signed the handshake with {scheme.group(1) if scheme else 'an unknown scheme'}; "
        f"expected one of the profile's: {', '.join(lab.profile.signature_algorithms)}")
    # TLS 1.3 has no SHA-1 or SHA-224 signature schemes at all (RFC 8446 section 4.2.3), so only
    # TLS 1.2 can be talked into them: offer nothing else and expect a refusal.
    ok, out = s_client(probe, server, family, "-brief", "-tls1_2", "-sigalgs",
                       ":".join(WEAK_HASH_SIGALGS), "-cipher", SECLEVEL0)
    if not ok:  # a refusal counts only as a TLS alert: silence (a server gone quiet) fails
        require_refusal(out, server, family)
        return
    weak = re.search(r"^(?:Peer )?[Ss]ignature type: (\S+)", out, re.M)
    raise AssertionError(f"the server accepted a TLS 1.2 handshake signed with "
                         f"{weak.group(1) if weak else 'SHA-1 or SHA-224'}; expected it to be refused")


@check("https.client_reneg", "Client-initiated renegotiation is refused (or stopped early)",
       standard="NCSC TLS guidelines 2025; RFC 5746; internet.nl client-initiated renegotiation",
       why="Each renegotiation costs the server far more than the client: a few clients asking "
           "again and again can exhaust it (denial of service).",
       fix="Use nginx or Apache on OpenSSL 3 as they are: both refuse it; never set "
           "'Options ClientRenegotiation'. TLS 1.3 has no renegotiation at all.",
       needs=("tls",), applies=tls12_only)
def test_client_renegotiation_refused(probe, server, family, lab):
    tls12_session(probe, server, family, lab, "client-initiated renegotiation")
    out = renegotiation_probe(probe, server, family)
    assert_renegotiation_refused(*renegotiations(out))


def assert_renegotiation_refused(established: bool, completed: int, refused: bool) -> None:
    assert established, "the TLS 1.2 connection for the renegotiation test failed; expected it " \
        "to succeed so that a renegotiation could be asked for"
    assert refused or not completed, (
        f"the server completed {completed} client-initiated renegotiation"
        f"{'s' if completed != 1 else ''} and refused none (asked up to {RENEGOTIATIONS} "
        f"times); expected it to refuse them, or to stop before {RENEGOTIATIONS}")


@check("https.cipher_order", "TLS 1.2: the server never picks a phase-out suite over a good one",
       standard="NCSC TLS guidelines 2025; RFC 9325 section 4.2; internet.nl cipher order",
       why="A client that lists a weak suite first (old or misconfigured) gets it, although "
           "both sides could do better.",
       fix="Offer only the profile's suites, or put them first and let the server choose "
           "(nginx ssl_prefer_server_ciphers on / Apache SSLHonorCipherOrder on).",
       needs=("tls",), applies=tls12_only)
def test_cipher_order(probe, server, family, lab):
    good = lab.profile.ciphers["openssl"] or ["ECDHE-ECDSA-AES128-GCM-SHA256",
                                              "ECDHE-RSA-AES128-GCM-SHA256"]
    # The client lists the phase-out suites first: a server that follows the client's order
    # while it offers any of them picks one.
    out = tls12_session(probe, server, family, lab, "the cipher order", "-brief", "-cipher",
                        f"'{':'.join(PHASE_OUT_SUITES + tuple(good))}:@SECLEVEL=0'")
    suite = re.search(r"^Ciphersuite: (\S+)", out, re.M)
    assert suite and suite.group(1) not in PHASE_OUT_SUITES, (
        f"offered phase-out suites first, the server chose {suite.group(1) if suite else 'none'} "
        f"over the good suites it also has; expected it to prefer a good one")


@check("https.no_dhe", "No finite-field Diffie-Hellman key exchange (DHE, ffdhe groups)",
       standard="NCSC TLS guidelines 2025 (phase out); RFC 7919; internet.nl key exchange parameters",
       why="Finite-field DHE is slower than elliptic curves for the same strength, and short or "
           "shared parameters weaken it (Logjam); NCSC 2025 phases it out.",
       fix="Offer only ECDHE suites and elliptic-curve/hybrid groups (the profile's ciphers and "
           "tls_curves); no ssl_dhparam / no ffdhe groups.",
       level="recommended", needs=("tls",))
def test_no_finite_field_dhe(probe, server, family):
    # accepted(): a refusal counts only as a TLS alert; a server that stopped answering fails.
    seen = accepted(probe, server, family, "-tls1_2", "-cipher", "'kDHE:@SECLEVEL=0'")
    assert not seen, f"the server accepted {seen} (a finite-field DHE suite); expected every " \
        "finite-field DHE suite to be refused"
    seen = accepted(probe, server, family, "-tls1_3", "-groups", ":".join(FFDHE_GROUPS))
    assert not seen, f"the server accepted {seen} with a finite-field group " \
        f"({', '.join(FFDHE_GROUPS)}); expected the ffdhe groups to be refused"

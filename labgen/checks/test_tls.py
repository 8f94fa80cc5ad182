"""HTTPS, the TLS side: protocol versions, cipher suites, key exchange groups, 0-RTT,
compression and renegotiation, each judged against the lab's profile."""

from __future__ import annotations

import dataclasses
import re

from labgen.checks import check
from labgen.checks.netutil import accepted, endpoint, handshake, s_client

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
def test_tls13_offered(client, server, family):
    out = handshake(client, server, family, "-tls1_3")
    assert "Protocol version: TLSv1.3" in out, "expected a TLS 1.3 handshake; the server refused it"


@check("https.no_tls10_11", "TLS 1.0 and 1.1 are refused",
       standard="RFC 8996; internet.nl TLS version (insufficient)",
       why="TLS 1.0 and 1.1 are deprecated: their hashes and modes are broken.",
       fix="Offer only TLSv1.2 and TLSv1.3 (intermediate) or only TLSv1.3 (modern).",
       needs=("tls",))
def test_old_tls_refused(client, server, family):
    for version in ("-tls1", "-tls1_1"):
        seen = accepted(client, server, family, version, "-cipher", SECLEVEL0)
        assert not seen, f"the server accepted {seen}; expected TLS 1.0 and 1.1 to be refused"


@check("https.tls12", "TLS 1.2 as the profile says: refused (modern) or offered (intermediate)",
       standard="Mozilla server-side TLS; internet.nl TLS version",
       why="The profile fixes the oldest version the lab accepts; anything else is a drift.",
       fix="Set the server's protocols to the profile's tls_versions.",
       needs=("tls",))
def test_tls12_per_profile(client, server, family, lab):
    if lab.profile.tls12:
        out = handshake(client, server, family, "-tls1_2")
        assert "Protocol version: TLSv1.2" in out, \
            f"expected TLS 1.2 under the {lab.profile.name} profile; the server refused it"
    else:
        seen = accepted(client, server, family, "-tls1_2")
        assert not seen, f"the server accepted {seen}; the {lab.profile.name} profile refuses TLS 1.2"


@check("https.suites", "Only the profile's cipher suites are accepted",
       standard="Mozilla server-side TLS; internet.nl TLS ciphers",
       why="A suite outside the profile (CBC, RSA key exchange, CCM) weakens every visitor's "
           "connection that picks it.",
       fix="Set the TLS 1.2 ciphers and TLS 1.3 Ciphersuites to the profile's lists.",
       needs=("tls",))
def test_only_profile_suites(client, server, family, lab):
    others = "".join(f":!{c}" for c in lab.profile.ciphers["openssl"])
    seen = accepted(client, server, family, "-tls1_2", "-cipher",
                    f"'ALL:COMPLEMENTOFALL{others}:@SECLEVEL=0'")
    assert not seen, f"the server accepted {seen}, a suite outside the profile"
    suites = [s for s in PROBE_SUITES if s not in lab.profile.ciphersuites]
    seen = accepted(client, server, family, "-tls1_3", "-ciphersuites", ":".join(suites))
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
       needs=("tls",))
def test_key_exchange_groups(client, server, family, lab, hosts):
    wanted = server_groups(lab, hosts, server)
    out = handshake(client, server, family, "-groups", ":".join(PROBE_GROUPS))
    got = re.search(r"(?:Negotiated TLS1.3 group|Server Temp Key): ([\w-]+)", out)
    assert got and got.group(1) == wanted[0], \
        f"expected key exchange with {wanted[0]}; the server chose {got.group(1) if got else 'nothing'}"
    others = [g for g in PROBE_GROUPS if g not in lab.profile.tls_curves]
    seen = accepted(client, server, family, "-groups", ":".join(others))
    assert not seen, f"the server accepted {seen} with a group outside the profile ({', '.join(others)})"


@check("https.no_0rtt", "No 0-RTT early data", standard="RFC 8446 section 8; internet.nl 0-RTT",
       why="Early data can be replayed by an attacker, repeating a request the user sent once.",
       fix="nginx: ssl_early_data off; Apache does not offer it.",
       needs=("tls",))
def test_no_early_data(client, server, family):
    session = f"/tmp/labgen-{server.name}-{family}.session"
    # A session ticket arrives after the handshake: keep the connection open for a moment.
    target = endpoint(server, family)
    client.run(f"(sleep 0.3; printf 'HEAD / HTTP/1.0\\r\\n\\r\\n') | timeout 2 openssl s_client "
               f"-connect {target} -servername {server.fqdn} -sess_out {session} -ign_eof")
    ticket = client.run(f"openssl sess_id -in {session} -noout -text")
    assert ticket.rc == 0, "no TLS session to resume (the server did not answer)"
    client.run(f"echo 'HEAD / HTTP/1.0' > {session}.early")
    _, out = s_client(client, server, family, "-sess_in", session, "-early_data", f"{session}.early")
    client.run(f"rm -f {session} {session}.early")
    assert "Early data was accepted" not in out, "the server accepted 0-RTT data"
    assert not re.search(r"Max Early Data: [1-9]", ticket.stdout), "the server's tickets allow 0-RTT"


@check("https.no_compression", "No TLS compression", standard="RFC 7457 section 2.6 (CRIME); "
       "internet.nl TLS compression",
       why="Compressing secrets with attacker-chosen data leaks them (CRIME).",
       fix="Apache: SSLCompression off; nginx never compresses.",
       needs=("tls",))
def test_no_tls_compression(client, server, family):
    handshakes = 0
    for version in ("-tls1_3", "-tls1_2"):
        ok, out = s_client(client, server, family, version, "-comp", "-cipher", SECLEVEL0)
        if ok:
            handshakes += 1
            found = re.search(r"Compression: (.*)", out)
            assert "Compression: NONE" in out, \
                f"the server compresses TLS records ({found.group(1) if found else 'unknown'})"
    assert handshakes, "no handshake succeeded with TLS 1.3 or 1.2"


@check("https.renegotiation", "Only secure renegotiation (RFC 5746)",
       standard="RFC 5746; internet.nl secure renegotiation",
       why="Insecure renegotiation lets an attacker splice their own request in front of the "
           "user's (CVE-2009-3555).",
       fix="Keep SSLInsecureRenegotiation off (Apache); nginx refuses renegotiation itself.",
       applies=lambda lab, server: None if lab.profile.tls12 else (
           f"the {lab.profile.name} profile offers TLS 1.3 only, which has no renegotiation (RFC 8446)"),
       needs=("tls",))
def test_secure_renegotiation(client, server, family, lab):
    ok, out = s_client(client, server, family, "-tls1_2", "-cipher", SECLEVEL0)
    assert ok, f"expected a TLS 1.2 handshake under the {lab.profile.name} profile; the server refused it"
    assert "Secure Renegotiation IS supported" in out, \
        "the server does not offer secure renegotiation (no RFC 5746 renegotiation_info)"

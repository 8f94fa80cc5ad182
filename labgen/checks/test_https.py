"""HTTPS: redirect, HSTS and the TLS protocol versions, judged from the client over each
address family, with the values the lab file and its profile demand."""

from __future__ import annotations

import re

from labgen.checks import check
from labgen.checks.netutil import address, curl_flag, headers

MIN_HSTS = 31536000  # internet.nl: at least one year


def handshake(client, server, family: str, *options: str) -> str:
    """openssl s_client's summary of one handshake ('' when it failed)."""
    addr = address(server, family)
    target = f"[{addr}]:443" if family == "ipv6" else f"{addr}:443"
    result = client.run(f"openssl s_client -brief -connect {target} -servername {server.fqdn} "
                        f"{' '.join(options)} </dev/null 2>&1")
    return result.stdout if result.rc == 0 else ""


@check("https.redirect", "HTTP redirects to HTTPS on the same host",
       standard="RFC 6797 section 7.2; internet.nl HTTPS",
       why="Visitors who type the bare name must end up on the encrypted site, not stay on HTTP.",
       fix="Answer every http:// request with 301 to https://<same host>/<same path>.")
def test_http_redirects_to_https(client, server, family):
    out = client.run(f"curl {curl_flag(family)} -s -o /dev/null -w '%{{http_code}} %{{redirect_url}}' "
                     f"http://{server.fqdn}/x").stdout.split()
    assert out[:1] in (["301"], ["308"]) and out[1:] == [f"https://{server.fqdn}/x"], out


@check("https.hsts", "HSTS is set for at least a year, as the lab file says",
       standard="RFC 6797; internet.nl HTTPS (max-age >= 31536000)",
       why="HSTS makes browsers refuse plain HTTP for the site, so a downgrade attack cannot start.",
       fix="Send Strict-Transport-Security: max-age=31536000 or more on every HTTPS response.")
def test_hsts(client, server, family, lab):
    value = headers(client, f"https://{server.fqdn}/", family).get("strict-transport-security", "")
    age = re.search(r"max-age=(\d+)", value)
    assert age and int(age.group(1)) >= MIN_HSTS, value or "no HSTS header"
    assert value == lab.hsts.header


@check("https.tls13", "TLS 1.3 is offered", standard="RFC 8446; internet.nl TLS version",
       why="TLS 1.3 removes the weak parts of older versions and makes every handshake forward-secret.",
       fix="Enable TLSv1.3 (nginx ssl_protocols, Apache SSLProtocol).")
def test_tls13_offered(client, server, family):
    out = handshake(client, server, family, "-tls1_3")
    assert "Protocol version: TLSv1.3" in out, out or "handshake failed"


@check("https.no_tls10_11", "TLS 1.0 and 1.1 are refused",
       standard="RFC 8996; internet.nl TLS version (insufficient)",
       why="TLS 1.0 and 1.1 are deprecated: their hashes and modes are broken.",
       fix="Offer only TLSv1.2 and TLSv1.3 (intermediate) or only TLSv1.3 (modern).")
def test_old_tls_refused(client, server, family):
    for version in ("-tls1", "-tls1_1"):
        out = handshake(client, server, family, version, "-cipher", "'DEFAULT:@SECLEVEL=0'")
        assert out == "", f"{version} accepted:\n{out}"


@check("https.tls12", "TLS 1.2 as the profile says: refused (modern) or offered (intermediate)",
       standard="Mozilla server-side TLS; internet.nl TLS version",
       why="The profile fixes the oldest version the lab accepts; anything else is a drift.",
       fix="Set the server's protocols to the profile's tls_versions.")
def test_tls12_per_profile(client, server, family, lab):
    out = handshake(client, server, family, "-tls1_2")
    if lab.profile.tls12:
        assert "Protocol version: TLSv1.2" in out, out or "TLS 1.2 refused"
    else:
        assert out == "", f"TLS 1.2 accepted under {lab.profile.name}:\n{out}"

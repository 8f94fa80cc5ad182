"""HTTPS, the HTTP side: redirect, HSTS, HTTP/2 and HTTP/3, judged from the client over each
address family with the values the lab file and its profile demand."""

from __future__ import annotations

import re

from labgen.checks import check
from labgen.checks.netutil import curl_flag, headers, s_client
from labgen.dnszone import alpn


@check("https.redirect", "HTTP redirects to HTTPS on the same host",
       standard="RFC 6797 section 7.2; internet.nl HTTPS",
       why="Visitors who type the bare name must end up on the encrypted site, not stay on HTTP.",
       fix="Answer every http:// request with 301 to https://<same host>/<same path>.",
       needs=("dns", "http"))
def test_http_redirects_to_https(probe, server, family):
    out = probe.run(f"curl {curl_flag(family)} -s -o /dev/null -w '%{{http_code}} %{{redirect_url}}' "
                     f"http://{server.fqdn}/x").stdout.split()
    assert out[:1] in (["301"], ["308"]) and out[1:] == [f"https://{server.fqdn}/x"], \
        f"expected a 301 redirect to https://{server.fqdn}/x; saw {' '.join(out).strip('0') or 'no answer'}"


@check("https.hsts", "HSTS is set for at least a year",
       standard="RFC 6797; internet.nl HTTPS (max-age >= 31536000)",
       why="HSTS makes browsers refuse plain HTTP for the site, so a downgrade attack cannot start.",
       fix="Send Strict-Transport-Security: max-age=31536000 or more on every HTTPS response.",
       needs=("https",))
def test_hsts(probe, server, family, lab):
    # Judged as internet.nl judges it: the max-age of the first policy, at least a year. A
    # longer one, or added includeSubDomains or preload, passes; https.hsts_lab_value compares.
    value = headers(probe, f"https://{server.fqdn}/", family).get("strict-transport-security", "")
    age = hsts_max_age(value)
    need = lab.profile.hsts_required_age
    assert age is not None and age >= need, (
        f"expected an HSTS max-age of at least {need} seconds"
        + (" (one year)" if need == 31536000 else "") + "; saw "
        + (f"max-age={age}" if age is not None else f"a policy without a max-age: {value}" if value
           else "no Strict-Transport-Security header"))


@check("https.hsts_lab_value", "HSTS is the policy the lab file asks for",
       standard="RFC 6797; the lab file's hsts section",
       why="labgen's own policy (its max-age, includeSubDomains, preload) is what the lab was "
           "designed with; another valid policy passes https.hsts, and this says it differs.",
       fix="Send the Strict-Transport-Security value of the lab file's hsts section (the check "
           "shows it), or change the lab file to the policy you chose.",
       level="recommended", needs=("https",))
def test_hsts_as_the_lab_file_says(probe, server, lab):
    value = headers(probe, f"https://{server.fqdn}/", "ipv4").get("strict-transport-security", "")
    assert value == lab.hsts.header, (f"expected Strict-Transport-Security: {lab.hsts.header} (the lab "
                                      f"file); saw {value or 'no such header'}")


def hsts_max_age(value: str) -> int | None:
    """The max-age of the first HSTS policy, read as internet.nl reads it; None when there is
    none to read."""
    first = value.split(",")[0].lower()
    if "max-age=" not in first:
        return None
    try:
        return int(first.split("max-age=")[1].split(";")[0])
    except ValueError:
        return None


@check("https.h2", "HTTP/2 is offered through ALPN", standard="RFC 9113; RFC 7301",
       why="HTTP/2 multiplexes requests over one TLS connection: faster pages, fewer handshakes.",
       fix="nginx: http2 on; Apache: Protocols h2 http/1.1 (mod_http2).", level="recommended",
       needs=("tls",))
def test_http2_through_alpn(probe, server, family):
    _, out = s_client(probe, server, family, "-alpn", "h2,http/1.1")
    alpn_line = re.search(r"ALPN protocol: (\S+)|No ALPN negotiated", out)
    assert alpn_line and alpn_line.group(1) == "h2", \
        f"expected ALPN h2; saw {alpn_line.group(0) if alpn_line else 'no TLS handshake'}"


@check("https.h3", "HTTP/3 answers where the lab enables it", standard="RFC 9114; RFC 7838",
       why="HTTP/3 over QUIC avoids head-of-line blocking; the lab file turns it on for nginx.",
       fix="nginx: listen 443 quic reuseport and an Alt-Svc header; open UDP 443.",
       fetches=True,
       applies=lambda lab, server: None if "h3" in alpn(lab, server.software) else (
           f"the lab does not enable HTTP/3 on {server.software} (http3 in the lab file; nginx only)"),
       level="recommended",
       needs=("dns",))
def test_http3_where_enabled(probe, server, family, lab):
    version = probe.run(f"curl {curl_flag(family)} --http3-only -s -o /dev/null "
                         f"-w '%{{http_version}}' https://{server.fqdn}/").stdout
    assert version == "3", f"expected an HTTP/3 answer; saw {'HTTP/' + version if version.strip('0') else 'no answer'}"

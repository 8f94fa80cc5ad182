"""Security headers and security.txt, judged by internet.nl's rules and the lab file's values."""

from __future__ import annotations

import datetime as dt
import re

import sectxt

from labgen.checks import check
from labgen.checks.netutil import curl_flag, headers

# internet.nl's CSP rules: these directives must be set to 'self' or 'none' ...
CSP_LOCKED = ("default-src", "frame-ancestors", "base-uri", "form-action")
# ... and no directive may allow inline or eval'd script, any host, or plain http.
CSP_UNSAFE = ("'unsafe-inline'", "'unsafe-eval'", "'unsafe-hashes'", "*", "http:", "data:")
# internet.nl 1.11: a scheme alone allows every host; "https:" bare counts as unsafe too, and a
# host source must name its scheme explicitly (https://host), never plain http or none.
CSP_BARE_SCHEMES = ("https:", "wss:", "ws:", "blob:", "filesystem:")
# Directives whose values are not sources (tokens, report addresses).
CSP_NOT_SOURCES = ("sandbox", "report-uri", "report-to", "upgrade-insecure-requests",
                   "block-all-mixed-content", "require-trusted-types-for", "trusted-types")
# Referrer-Policy values internet.nl rates good (no referrer leaves the site).
REFERRER_GOOD = ("no-referrer", "same-origin")
XFO_GOOD = ("DENY", "SAMEORIGIN")


def header(client, server, name: str) -> str:
    return headers(client, f"https://{server.fqdn}/", "ipv4").get(name.lower(), "")


def lab_value(lab, name: str) -> str | None:
    return dict((n.lower(), v) for n, v in lab.headers).get(name.lower())


@check("headers.csp", "Content-Security-Policy meets internet.nl's rules",
       standard="W3C CSP Level 3; internet.nl security options (CSP)",
       why="CSP stops injected scripts and framing (XSS, clickjacking) in the browser.",
       fix="default-src, frame-ancestors, base-uri and form-action 'self' or 'none'; no "
           "'unsafe-inline', 'unsafe-eval', *, http: or a bare https:; hosts as https://host.",
       needs=("https",))
def test_csp(client, server, lab):
    value = header(client, server, "Content-Security-Policy")
    assert value, "no Content-Security-Policy header"
    directives = {d.split()[0]: d.split()[1:] for d in value.split(";") if d.strip()}
    for name in CSP_LOCKED:
        assert directives.get(name) and set(directives[name]) <= {"'self'", "'none'"}, \
            f"{name}: {' '.join(directives.get(name, ['missing']))}"
    unsafe = [f"{d} {s}" for d, sources in directives.items() for s in sources if s in CSP_UNSAFE]
    assert not unsafe, f"unsafe sources: {', '.join(unsafe)}"
    bare = [f"{d} {s}" for d, sources in directives.items() for s in sources
            if s.lower() in CSP_BARE_SCHEMES]
    assert not bare, (f"the policy allows a whole scheme ({', '.join(bare)}), i.e. any host; "
                      "expected explicit https:// host sources (internet.nl 1.11)")
    implicit = [f"{d} {s}" for d, sources in directives.items() if d not in CSP_NOT_SOURCES
                for s in sources if not s.startswith("'") and s.lower() not in CSP_UNSAFE
                + CSP_BARE_SCHEMES and not s.lower().startswith("https://")]
    assert not implicit, (f"host sources without an explicit https:// ({', '.join(implicit)}); "
                          "expected every host source to start with https://")
    assert value == lab_value(lab, "Content-Security-Policy"), \
        "the Content-Security-Policy differs from the lab file's"


@check("headers.nosniff", "X-Content-Type-Options: nosniff",
       standard="WHATWG Fetch; internet.nl security options",
       why="Without it a browser may run an uploaded text file as script.",
       fix="Send X-Content-Type-Options: nosniff on every response.",
       needs=("https",))
def test_nosniff(client, server):
    value = header(client, server, "X-Content-Type-Options")
    assert value == "nosniff", f"expected X-Content-Type-Options: nosniff; saw {value or 'no such header'}"


@check("headers.referrer", "A Referrer-Policy internet.nl rates good",
       standard="W3C Referrer Policy; internet.nl security options",
       why="The Referer header leaks the page a visitor came from to every other site.",
       fix="Send Referrer-Policy: no-referrer (or same-origin).",
       needs=("https",))
def test_referrer_policy(client, server, lab):
    value = header(client, server, "Referrer-Policy")
    assert value in REFERRER_GOOD, f"Referrer-Policy: {value or 'missing'}"
    assert value == lab_value(lab, "Referrer-Policy"), "the Referrer-Policy differs from the lab file's"


@check("headers.xfo", "X-Frame-Options: DENY or SAMEORIGIN",
       standard="RFC 7034; internet.nl security options",
       why="Stops other sites from framing this one to trick clicks (clickjacking) in old browsers.",
       fix="Send X-Frame-Options: DENY.", level="recommended",
       needs=("https",))
def test_x_frame_options(client, server):
    value = header(client, server, "X-Frame-Options")
    assert value.upper() in XFO_GOOD, f"X-Frame-Options: {value or 'missing'}"


@check("headers.security_txt", "A valid security.txt: Contact, Canonical, Expires within a year",
       standard="RFC 9116; internet.nl security.txt (validated with sectxt, internet.nl's own "
                "validator)",
       why="security.txt tells a finder of a vulnerability whom to tell, and until when; "
           "Canonical tells them the file is meant for this site.",
       fix="Serve /.well-known/security.txt over HTTPS as text/plain; charset=utf-8 with Contact:, "
           "Canonical: https://<host>/.well-known/security.txt and an Expires: less than a year "
           "ahead (labgen up renews it).", needs=("https",))
def test_security_txt(client, server, lab):
    url = f"https://{server.fqdn}/.well-known/security.txt"
    got = client.run(f"curl -s -w '\\n%{{http_code}} %{{content_type}}' {url}").stdout
    body, _, meta = got.rpartition("\n")
    assert meta.split(" ", 1) == ["200", "text/plain; charset=utf-8"], (
        f"{url} answered {meta or 'nothing'}; expected 200 with text/plain; charset=utf-8")
    # sectxt's Parser judges the text it is given and fetches nothing.
    parsed = sectxt.Parser(body.encode("utf-8"), urls=url)
    errors = [e["message"] for e in parsed.errors]
    assert not errors, f"security.txt is not valid (RFC 9116): {' '.join(errors)}"
    fields = [(k.strip().lower(), v.strip()) for k, _, v in
              (line.partition(":") for line in body.splitlines() if not line.startswith("#")) if v]
    contacts = tuple(v for k, v in fields if k == "contact")
    assert contacts == lab.security_txt.contact, (
        f"Contact: {', '.join(contacts) or 'none'}; the lab file says "
        f"{', '.join(lab.security_txt.contact)}")
    canonical = [v for k, v in fields if k == "canonical"]
    assert url in canonical, (f"Canonical: {', '.join(canonical) or 'missing'}; expected {url}, "
                              "the address the file is served from")
    expires = [v for k, v in fields if k == "expires"]
    when = dt.datetime.strptime(expires[0], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    assert when <= dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=365), (
        f"Expires: {expires[0]} is more than a year ahead; expected less than a year")


@check("headers.http_compression", "No HTTP compression on HTTPS responses",
       standard="BREACH (CVE-2013-3587); internet.nl HTTP compression (informational)",
       why="Compressing a page that carries a secret next to text an attacker chooses leaks the "
           "secret through the response sizes (BREACH).",
       fix="Turn compression off for HTTPS (nginx gzip off; Apache SetEnv no-gzip 1), or only "
           "for pages without secrets.", level="informational", needs=("https",))
def test_no_http_compression(client, server, family):
    url = f"https://{server.fqdn}/"
    answer = client.run(f"curl {curl_flag(family)} -s -D - -o /dev/null -H "
                        f"'Accept-Encoding: gzip, deflate, br, zstd' {url}").stdout
    status = answer.split()[1] if answer.split() else ""
    assert status == "200", f"{url} answered {status or 'nothing'}; expected 200"
    encoding = re.search(r"^content-encoding:\s*(\S+)", answer, re.M | re.I)
    assert not encoding, (f"the page came {encoding.group(1)}-compressed over HTTPS; expected no "
                          "Content-Encoding (BREACH)")

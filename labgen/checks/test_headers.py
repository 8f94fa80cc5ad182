"""Security headers and security.txt, judged by internet.nl's rules and the lab file's values."""

from __future__ import annotations

import datetime as dt
import re

from labgen.checks import check
from labgen.checks.netutil import headers

# internet.nl's CSP rules: these directives must be set to 'self' or 'none' ...
CSP_LOCKED = ("default-src", "frame-ancestors", "base-uri", "form-action")
# ... and no directive may allow inline or eval'd script, any host, or plain http.
CSP_UNSAFE = ("'unsafe-inline'", "'unsafe-eval'", "'unsafe-hashes'", "*", "http:", "data:")
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
           "'unsafe-inline', 'unsafe-eval', * or http:.",
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


@check("headers.security_txt", "A valid security.txt (Contact, Expires within a year)",
       standard="RFC 9116; internet.nl security.txt",
       why="security.txt tells a finder of a vulnerability whom to tell, and until when.",
       fix="Serve /.well-known/security.txt as text/plain with Contact: and an Expires: "
           "less than a year ahead (labgen up renews it).",
       needs=("https",))
def test_security_txt(client, server, lab):
    url = f"https://{server.fqdn}/.well-known/security.txt"
    got = client.run(f"curl -s -w '\\n%{{http_code}} %{{content_type}}' {url}").stdout
    body, _, meta = got.rpartition("\n")
    assert meta.split(" ", 1) == ["200", "text/plain; charset=utf-8"], \
        f"expected status 200 and type text/plain; charset=utf-8; saw {meta or 'no answer'}"
    fields = [(k.strip().lower(), v.strip()) for k, _, v in
              (line.partition(":") for line in body.splitlines() if not line.startswith("#")) if v]
    contacts = tuple(v for k, v in fields if k == "contact")
    assert contacts == lab.security_txt.contact, f"Contact: {contacts}"
    expires = [v for k, v in fields if k == "expires"]
    assert len(expires) == 1, f"{len(expires)} Expires fields"
    when = dt.datetime.fromisoformat(expires[0].replace("Z", "+00:00"))
    now = dt.datetime.now(dt.timezone.utc)
    assert now < when < now + dt.timedelta(days=365), f"Expires: {expires[0]}"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", expires[0]), expires[0]

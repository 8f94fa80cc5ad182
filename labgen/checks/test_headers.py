"""Security headers and security.txt, judged by internet.nl's rules and the lab file's values."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import sectxt

from labgen.checks import check
from labgen.checks.netutil import curl_flag, headers

# internet.nl 1.11's CSP test (checks/tasks/http_headers.py in internetstandards/Internet.nl),
# rule for rule. A directive is kept only under its exact name and only with the kinds of source
# internet.nl reads in it; a token it does not recognise is ignored, as there.
_ALL = ("host", "scheme", "keyword", "strict-dynamic", "report-sample")
_BASIC = ("host", "scheme", "keyword")
CSP_DIRECTIVES = {
    **dict.fromkeys(("child-src", "img-src", "script-src", "script-src-elem", "script-src-attr",
                     "base-uri", "form-action", "navigate-to"), _ALL),
    **dict.fromkeys(("connect-src", "default-src", "font-src", "frame-src", "manifest-src",
                     "media-src", "object-src", "prefetch-src", "style-src", "worker-src"), _BASIC),
    **dict.fromkeys(("style-src-elem", "style-src-attr"), (*_BASIC, "report-sample")),
    "frame-ancestors": ("host", "scheme", "self-none"),
}
CSP_HOST = re.compile(r"^(?:(?P<scheme>.+)://)?(?P<host>[^:/']+|\[.+\])(?::(?:\d+|\*))?(?:/.*)?$")
CSP_SCHEME = re.compile(r"^(https?|data|mediastream|blob|filesystem):$")
CSP_KEYWORD = re.compile(r"'(self|none|unsafe-inline|unsafe-eval|unsafe-hashes)'|'nonce-[+a-zA-Z0-9/]+=*'"
                         r"|'(?:sha256|sha384|sha512)-[+a-zA-Z0-9/]+=*'")
CSP_SELF_NONE = re.compile(r"^'(self|none)'$")
CSP_OTHER = {"strict-dynamic": re.compile(r"'strict-dynamic'"),
             "report-sample": re.compile(r"'report-sample'")}


@dataclass(frozen=True)
class Source:
    """One source of a CSP directive as internet.nl reads it."""

    kind: str  # host | scheme | keyword | other
    text: str
    scheme: str = ""  # host: the scheme before ://, "" when none; scheme: the scheme
    host: str = ""
    keyword: str = ""  # self, none, unsafe-inline, ..., strict-dynamic, report-sample; "" for a nonce or hash


def csp_sources(value: str) -> dict[str, list[Source]]:
    """The directives internet.nl keeps, with the sources it recognises in each."""
    found: dict[str, list[Source]] = {}
    for policy in value.split(","):
        for directive in policy.split(";"):
            name, *tokens = directive.split() or [""]
            for token in tokens if name in CSP_DIRECTIVES else ():
                source = _csp_source(token, CSP_DIRECTIVES[name])
                if source:
                    found.setdefault(name, []).append(source)
    return found


def _csp_source(token: str, kinds: tuple[str, ...]) -> Source | None:
    if (m := CSP_HOST.match(token)) and "host" in kinds:
        return Source("host", token, scheme=m.group("scheme") or "", host=m.group("host"))
    if (m := CSP_SCHEME.match(token)) and "scheme" in kinds:
        return Source("scheme", token, scheme=m.group(1))
    if (m := CSP_KEYWORD.match(token)) and "keyword" in kinds:
        return Source("keyword", token, keyword=m.group(1) or "")
    if (m := CSP_SELF_NONE.match(token)) and "self-none" in kinds:
        return Source("keyword", token, keyword=m.group(1))
    for name in (k for k in kinds if k in CSP_OTHER):
        if CSP_OTHER[name].match(token):
            return Source("other", token, keyword=name)
    return None


def csp_problems(value: str, domain: str) -> list[str]:
    """Why internet.nl would rate this Content-Security-Policy insufficient for a site at
    domain: one sentence per rule it breaks; [] when it passes."""
    if not value.strip():
        return ["no Content-Security-Policy header"]
    found = csp_sources(value)
    every = [(d, s) for d, sources in found.items() for s in sources]
    problems = [f"{d} allows '{s.keyword}'" for d, s in every
                if s.keyword in ("unsafe-inline", "unsafe-eval", "unsafe-hashes")]
    problems += [f"{d} allows plain http ({s.text})" for d, s in every
                 if s.kind in ("host", "scheme") and s.scheme in ("http", "*")]
    problems += [f"{d} allows any https: address (a bare https: scheme)" for d, s in every
                 if s.kind == "scheme" and s.scheme == "https"]
    problems += [f"{d} names a host without its scheme ({s.text}); write https://{s.host}" for d, s in every
                 if s.kind == "host" and not s.scheme and s.host not in ("*", "127.0.0.1")]
    problems += [f"{d} allows {'any host' if s.host == '*' else 'the host 127.0.0.1'} ({s.text}), which "
                 "internet.nl never accepts" for d, s in every if s.kind == "host" and s.host in ("*", "127.0.0.1")]
    # Scripts and objects: their own directive, or default-src when they have none.
    for used in dict.fromkeys(n if n in found else "default-src" for n in ("script-src", "object-src")):
        if any(s.kind == "scheme" and s.scheme == "data" for s in found.get(used, ())):
            problems.append(f"{used} allows data: URLs for scripts or objects")
    for name in ("default-src", "base-uri"):
        if not _self_or_none(found.get(name, []), domain):
            problems.append(f"{name} must be 'none', or 'self' with at most hosts under {domain}; saw "
                            + (" ".join(s.text for s in found[name]) if name in found else "no such directive"))
    if not any(s.keyword in ("self", "none") for s in found.get("frame-ancestors", ())):
        problems.append("frame-ancestors must include 'self' or 'none'")
    if not any(s.keyword in ("self", "none") or s.kind == "host" for s in found.get("form-action", ())):
        problems.append("form-action must include 'self', 'none' or a host")
    return problems


def _self_or_none(sources: list[Source], domain: str) -> bool:
    """internet.nl's rule for default-src and base-uri: 'none' alone, or 'self' with at most
    'report-sample' and hosts at or under the site's own name (all under the shortest one)."""
    domain = domain.rstrip(".")
    hosts = [s.host.rstrip(".") for s in sources if s.kind == "host"]
    for host in hosts:
        if host.startswith("*."):
            if not host[2:] or not domain.endswith(host[2:]):
                return False
        elif not host.endswith(domain):
            return False
    counted = [s for s in sources if s.kind == "host" or s.keyword in ("self", "report-sample")]
    if not counted and any(s.keyword == "none" for s in sources):
        return True
    if not any(s.keyword == "self" for s in sources):
        return False
    if hosts and not all(h.endswith(min(hosts, key=len)) for h in hosts):
        return False
    return len(counted) == len(sources)


# Referrer-Policy values internet.nl rates good (no referrer leaves the site).
REFERRER_GOOD = ("no-referrer", "same-origin")
XFO_GOOD = ("DENY", "SAMEORIGIN")


def header(probe, server, name: str) -> str:
    return headers(probe, f"https://{server.fqdn}/", "ipv4").get(name.lower(), "")


def lab_value(lab, name: str) -> str | None:
    return dict((n.lower(), v) for n, v in lab.headers).get(name.lower())


@check("headers.csp", "Content-Security-Policy meets internet.nl's rules",
       standard="W3C CSP Level 3; internet.nl security options (CSP)",
       why="CSP stops injected scripts and framing (XSS, clickjacking) in the browser.",
       fix="default-src and base-uri 'self' or 'none' (hosts under the site's own name at most), "
           "frame-ancestors 'self' or 'none', a form-action; no 'unsafe-inline', 'unsafe-eval' or "
           "'unsafe-hashes', no http:, no bare https:, no data: for scripts or objects, no *; "
           "every host as https://host.",
       needs=("https",))
def test_csp(probe, server):
    # Judged as internet.nl judges it: a stricter valid policy passes; headers.csp_lab_value
    # says whether it is the lab file's.
    problems = csp_problems(header(probe, server, "Content-Security-Policy"), server.fqdn)
    assert not problems, "; ".join(problems)


@check("headers.csp_lab_value", "Content-Security-Policy is the one the lab file asks for",
       standard="W3C CSP Level 3; the lab file's headers",
       why="The lab's policy is what its pages were written for; another policy that meets "
           "internet.nl's rules passes headers.csp, and this says it differs.",
       fix="Send the Content-Security-Policy of the lab file's headers (the check shows it), or "
           "change the lab file to the policy you chose.",
       level="recommended", needs=("https",))
def test_csp_as_the_lab_file_says(probe, server, lab):
    value, want = header(probe, server, "Content-Security-Policy"), lab_value(lab, "Content-Security-Policy")
    assert value == want, f"expected Content-Security-Policy: {want} (the lab file); saw {value or 'no such header'}"


@check("headers.nosniff", "X-Content-Type-Options: nosniff",
       standard="WHATWG Fetch; internet.nl security options",
       why="Without it a browser may run an uploaded text file as script.",
       fix="Send X-Content-Type-Options: nosniff on every response.",
       needs=("https",))
def test_nosniff(probe, server):
    value = header(probe, server, "X-Content-Type-Options")
    assert value == "nosniff", f"expected X-Content-Type-Options: nosniff; saw {value or 'no such header'}"


@check("headers.referrer", "A Referrer-Policy internet.nl rates good",
       standard="W3C Referrer Policy; internet.nl security options",
       why="The Referer header leaks the page a visitor came from to every other site.",
       fix="Send Referrer-Policy: no-referrer (or same-origin).",
       needs=("https",))
def test_referrer_policy(probe, server, lab):
    value = header(probe, server, "Referrer-Policy")
    assert value in REFERRER_GOOD, f"Referrer-Policy: {value or 'missing'}"
    assert value == lab_value(lab, "Referrer-Policy"), "the Referrer-Policy differs from the lab file's"


@check("headers.xfo", "X-Frame-Options: DENY or SAMEORIGIN",
       standard="RFC 7034; internet.nl security options",
       why="Stops other sites from framing this one to trick clicks (clickjacking) in old browsers.",
       fix="Send X-Frame-Options: DENY.", level="recommended",
       needs=("https",))
def test_x_frame_options(probe, server):
    value = header(probe, server, "X-Frame-Options")
    assert value.upper() in XFO_GOOD, f"X-Frame-Options: {value or 'missing'}"


@check("headers.security_txt", "A valid security.txt: Contact, Canonical, Expires within a year",
       standard="RFC 9116; internet.nl security.txt (validated with sectxt, internet.nl's own "
                "validator)",
       why="security.txt tells a finder of a vulnerability whom to tell, and until when; "
           "Canonical tells them the file is meant for this site.",
       fix="Serve /.well-known/security.txt over HTTPS as text/plain; charset=utf-8 with Contact:, "
           "Canonical: https://<host>/.well-known/security.txt and an Expires: in the future and "
           "less than a year ahead; renew it before that date.", needs=("https",))
def test_security_txt(probe, server, lab):
    url = f"https://{server.fqdn}/.well-known/security.txt"
    got = probe.run(f"curl -s -w '\\n%{{http_code}} %{{content_type}}' {url}").stdout
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
def test_no_http_compression(probe, server, family):
    url = f"https://{server.fqdn}/"
    answer = probe.run(f"curl {curl_flag(family)} -s -D - -o /dev/null -H "
                        f"'Accept-Encoding: gzip, deflate, br, zstd' {url}").stdout
    status = answer.split()[1] if answer.split() else ""
    assert status == "200", f"{url} answered {status or 'nothing'}; expected 200"
    encoding = re.search(r"^content-encoding:\s*(\S+)", answer, re.M | re.I)
    assert not encoding, (f"the page came {encoding.group(1)}-compressed over HTTPS; expected no "
                          "Content-Encoding (BREACH)")

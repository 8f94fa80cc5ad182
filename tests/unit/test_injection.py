"""Property: no free-text field of the lab file can inject anything into a rendered file.

Hypothesis feeds arbitrary strings (and a list of known-dangerous ones) into every free-text
field. Each value is either refused with a SpecError (exit status 2 at the CLI) or the render
has exactly the same structure as the default lab's: the same directives in nginx, Apache,
BIND and Unbound configs, the same record types in the zone, the same security.txt fields and
HTML tags, with the value inside one token.
"""

from __future__ import annotations

import html.parser
from pathlib import Path

import dns.zone
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labgen import render, spec
from labgen.errors import SpecError

DANGEROUS = [
    "x\nssl_protocols TLSv1", "x;", "x }", "x{", 'x"', "x'", "x#", "x y", "x\tz", "x\x00",
    "x\r\nInjected: 1", "$host", "%{HTTP_HOST}e", "\\", "`id`", "x\u2028y", "a.b", "-x", "x-",
    "xn--zz", "default-src 'self'\"; add_header X 1", "mailto:a@b.example\nContact: x",
    "https://h.example/\" always; return 200", "1.26\n", "ns1", "", " ", "ä", "a" * 64,
]
# Arbitrary text, ASCII text, and near-valid values so that many examples reach the render.
text = st.one_of(st.sampled_from(DANGEROUS), st.text(max_size=40),
                 st.text(alphabet=st.characters(codec="ascii"), max_size=40),
                 st.from_regex(r"(mailto:|https://)?[a-z0-9.'; =@/\n-]{1,20}(@lab\.example)?",
                               fullmatch=True))

def near(valid: str):
    """A valid value with one character inserted, or a few affixed: the validator's edges."""
    insert = st.tuples(st.integers(0, len(valid)), st.characters()).map(
        lambda ic: valid[:ic[0]] + ic[1] + valid[ic[0]:])
    affix = st.tuples(st.text(max_size=3), st.text(max_size=3)).map(lambda ab: ab[0] + valid + ab[1])
    return st.one_of(insert, affix)


# field -> (how to put a value into a lab dict, a valid value for the baseline render)
FIELDS = {
    "name": (lambda v: {"name": v}, "demo"),
    "domain": (lambda v: {"domain": v}, "lab.example"),
    "servers[0].name": (lambda v: {"servers": [{"name": v, "software": "nginx"},
                                               {"name": "apache", "software": "apache"}]}, "web"),
    "headers (value)": (lambda v: {"headers": {"X-Lab-Test": v}}, "1"),
    "headers (name)": (lambda v: {"headers": {v: "1"}}, "X-Lab-Test"),
    "caa.issuer": (lambda v: {"caa": {"issuer": v}}, "ca.lab.example"),
    "caa.iodef": (lambda v: {"caa": {"iodef": v}}, "mailto:a@lab.example"),
    "security_txt.contact": (lambda v: {"security_txt": {"contact": [v]}}, "mailto:a@lab.example"),
    "security_txt.preferred_languages": (lambda v: {"security_txt": {"preferred_languages": [v]}}, "nl"),
    "target.nginx": (lambda v: {"target": {"nginx": v}}, "1.26"),
}


def nginx_shape(text: str, line_comment: str = "#") -> list[tuple[int, str]]:
    """(depth, directive) for every statement of an nginx or named.conf file."""
    shape, depth, words, i = [], 0, [], 0
    while i < len(text):
        c = text[i]
        if text.startswith(line_comment, i):
            i = text.find("\n", i) if "\n" in text[i:] else len(text)
            continue
        if c in "\"'":
            end = i + 1
            while text[end] != c:
                end += 2 if text[end] == "\\" else 1
            words.append(text[i:end + 1])
            i = end + 1
            continue
        if c in ";{}":
            if words:
                shape.append((depth, words[0]))
            words = []
            depth += {"{": 1, "}": -1, ";": 0}[c]
            if c == "}":
                shape.append((depth, "}"))
        elif not c.isspace():
            end = i
            while end < len(text) and not text[end].isspace() and text[end] not in ";{}\"'":
                end += 1
            words.append(text[i:end])
            i = end
            continue
        i += 1
    assert not words and depth == 0, "unterminated statement"
    return shape


def line_shape(text: str) -> list[str]:
    """First word of every non-comment line: Apache, Unbound, security.txt."""
    return [line.split()[0] for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


class _Tags(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(f"<{tag} {sorted(a for a, _ in attrs)}")

    def handle_endtag(self, tag):
        self.tags.append(f"</{tag}")


def html_shape(text: str) -> list[str]:
    parser = _Tags()
    parser.feed(text)
    return parser.tags


def zone_shape(path: Path, origin: str) -> list[tuple[str, int]]:
    zone = dns.zone.from_file(str(path), origin=origin, relativize=True)
    return sorted((dns.rdatatype.to_text(rds.rdtype), len(rds))
                  for _, node in zone.nodes.items() for rds in node.rdatasets)


def shape(build: Path, lab: spec.Lab) -> dict[str, object]:
    """The structure of everything a value can reach, independent of the value itself."""
    out: dict[str, object] = {}
    for host in lab.hosts:
        root = build / "hosts" / host.name
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            rel = str(path.relative_to(root))
            key = f"{host.role}/{host.software or ''}/" + rel.replace(host.fqdn, "FQDN").replace(
                lab.domain, "DOMAIN")
            body = path.read_text(encoding="utf-8")
            if rel.startswith("etc/nginx"):
                out[key] = nginx_shape(body)
            elif rel == "etc/bind/named.conf":
                out[key] = nginx_shape(body, line_comment="//")
            elif rel.startswith(("etc/apache2", "etc/unbound/unbound.conf")) or rel.endswith("security.txt"):
                out[key] = line_shape(body)
            elif rel.endswith(".html"):
                out[key] = html_shape(body)
            elif rel.startswith("etc/bind/labgen/"):
                out[key] = zone_shape(path, path.name.removeprefix("db."))
    return out


@pytest.mark.parametrize("field", FIELDS)
def test_free_text_is_refused_or_one_harmless_token(field, tmp_path_factory):
    put, valid = FIELDS[field]
    base_lab = spec.parse(put(valid), "lab.yml")
    baseline = shape(render.render(base_lab, tmp_path_factory.mktemp("base")), base_lab)

    @settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(value=st.one_of(text, near(valid)))
    def check(value):
        try:
            lab = spec.parse(put(value), "lab.yml")
        except SpecError as exc:
            assert "lab.yml: " in str(exc)
            return
        build = render.render(lab, tmp_path_factory.mktemp("fuzz"))
        assert shape(build, lab) == baseline, f"{field}={value!r} changed the rendered structure"

    check()


def test_the_shapes_see_an_injection():
    """The property above can fail: a newline smuggled past validation changes the shape."""
    assert nginx_shape('add_header X "a" always;\nssl_protocols TLSv1;') != nginx_shape(
        'add_header X "a; b" always;')
    assert line_shape('Header set X "a"\nSSLProtocol all') != line_shape('Header set X "a b"')
    assert html_shape("<p>x</p>") != html_shape("<p>x<script>y</script></p>")

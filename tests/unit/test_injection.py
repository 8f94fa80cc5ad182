"""Property: no field of the lab file can inject anything into a rendered file.

Hypothesis feeds arbitrary strings (and a list of known-dangerous ones) into every field of the
lab file, networks included; the list of fields is derived from what the parser reads. Each value is either refused with a SpecError (exit status 2 at the CLI) or the render
has exactly the same structure as the default lab's: the same directives in nginx, Apache,
BIND and Unbound configs, the same record types in the zone, the same security.txt fields and
HTML tags, with the value inside one token.
"""

from __future__ import annotations

import copy
import html.parser
import re
from pathlib import Path

import dns.zone
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labgen import render, spec
from labgen.errors import SpecError

DANGEROUS = [
    "x\nssl_protocols TLSv1", "x;", "x }", "x{", 'x"', "x'", "x#", "x y", "x\tz", "x\x00",
    "x\r\nInjected: 1", "$host", "%{HTTP_HOST}e", "\\", "`id`", "x\u2028y", "a.b", "-x", "x-",
    "xn--zz", "default-src 'self'\"; add_header X 1", "mailto:a@b.example\nContact: x",
    "https://h.example/\" always; return 200", "1.26\n", "ns1", "", " ", "ä", "a" * 64,
    # issue 10: an IPv6 zone ID, escapes, bidi and invisible characters, huge values
    '2001:db8:10::%0 allow\n    domain-insecure: "lab.example"\n#x/64', "2001:db8:10::%eth0/64",
    "198.51.100.0%x/24", "\x1b[2J", "\x1b]0;t\x07", "x\u202ey", "x\u200bx", "x\x85y", "x\u2029y",
    "lab.example\u200bx", "mailto:a@.", "https://..:99999/", "a" * 5000,
]
# Arbitrary text, ASCII text, and near-valid values so that many examples reach the render.
text = st.one_of(st.sampled_from(DANGEROUS), st.text(max_size=40),
                 st.text(alphabet=st.characters(codec="ascii"), max_size=40),
                 st.from_regex(r"(mailto:|https://)?[a-z0-9.'; =@/\n%:-]{1,20}(@lab\.example|/64)?",
                               fullmatch=True))

def near(valid: str):
    """A valid value with one character inserted, or a few affixed: the validator's edges."""
    insert = st.tuples(st.integers(0, len(valid)), st.characters()).map(
        lambda ic: valid[:ic[0]] + ic[1] + valid[ic[0]:])
    affix = st.tuples(st.text(max_size=3), st.text(max_size=3)).map(lambda ab: ab[0] + valid + ab[1])
    return st.one_of(insert, affix)


# ---------------------------------------------------------------- the fields, from the spec


STARTER = yaml.safe_load((render.data_dir("templates") / "lab.yml").read_text(encoding="utf-8"))
FREE_KEY = "X-Lab-Test"  # the key put into a mapping whose keys are free (headers)


def reads(data: dict) -> dict[str, object]:
    """Every key path the parser reads for this lab dict, with the value it got."""
    seen: dict[str, object] = {}
    original = spec._Section.get

    def get(self, name, default):
        value = original(self, name, default)
        seen[self.key(name)] = value
        return value

    def section(self, name):
        seen[self.key(name)] = self.data.get(name)
        return original_section(self, name)

    original_section = spec._Section.section
    spec._Section.get, spec._Section.section = get, section
    try:
        spec.parse(copy.deepcopy(data), "lab.yml")
    finally:
        spec._Section.get, spec._Section.section = original, original_section
    return seen


def put(data: dict, path: str, value) -> dict:
    """A copy of data with value at path (a.b, a[0].b)."""
    data = copy.deepcopy(data)
    parts = re.findall(r"[^.\[\]]+|\[\d+\]", path)
    node = data
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part.startswith("["):
            index = int(part[1:-1])
            if last:
                node[index] = value
            node = node[index]
        else:
            if last:
                node[part] = value
            elif not isinstance(node.get(part), (dict, list)):
                node[part] = {} if not parts[i + 1].startswith("[") else [None]
            node = node[part]
    return data


def discover() -> dict[str, tuple[object, object]]:
    """field -> (lab dict, valid value): every key the parser reads in the starter lab file, the
    items of its lists, both forms of a key that also takes a mapping (target), and key and value
    of a mapping with free keys (headers). A field added to spec.py is found without a change here."""
    fields: dict[str, tuple[object, object]] = {}
    todo = [STARTER]
    while todo:
        data = todo.pop()
        for path, value in reads(data).items():
            if path in fields or any(f.startswith(path + ".") or f.startswith(path + "[")
                                     for f in fields):
                continue
            if isinstance(value, list) and value and not isinstance(value[0], dict):
                fields[f"{path}[0]"] = (data, value[0])  # the items of a list of texts
            elif isinstance(value, dict) and not value:  # a mapping with free keys
                fields[f"{path}.(key)"] = (data, FREE_KEY)
                fields[f"{path}.{FREE_KEY}"] = (put(data, f"{path}.{FREE_KEY}", "1"), "1")
            elif not isinstance(value, (list, dict)):
                fields[path] = (data, value)
                try:  # a key that also takes a mapping: explore that form too
                    spec.parse(put(data, path, {}), "lab.yml")
                    todo.append(put(data, path, {}))
                except SpecError:
                    pass
    return fields


FIELDS = discover()


def put_field(field: str, value) -> dict:
    data, _ = FIELDS[field]
    if field.endswith(".(key)"):
        return put(data, field.removesuffix(".(key)"), {value: "1"})
    return put(data, field, value)


def test_every_field_of_the_lab_file_is_fuzzed():
    """The field list is derived, not typed: it holds every key of the starter lab file, the
    target's mapping form, the free-keyed headers and the network fields of issue 10."""
    for field in ("name", "domain", "network.ipv4", "network.ipv6", "servers[0].name",
                  "servers[0].software", "target", "target.nginx", "target.preset",
                  "headers.(key)", f"headers.{FREE_KEY}", "caa.iodef", "security_txt.contact[0]",
                  "security_txt.preferred_languages[0]", "hsts.max_age", "engine", "dane.ca"):
        assert field in FIELDS, sorted(FIELDS)


# ---------------------------------------------------------------- keys that are not texts

# What YAML makes of a key written as a number, a boolean, null or a date; a list or a mapping
# as a key is refused by the YAML loader itself (test_a_list_or_mapping_key_is_refused...).
NON_TEXT_KEYS = [1, 0, -7, 1.5, True, False, None, __import__("datetime").date(2026, 11, 30),
                 __import__("datetime").datetime(2026, 11, 30, 12, 0)]


def mappings() -> dict[str, dict]:
    """Every mapping the parser reads (each _Section it makes: the top level, every section and
    list item, the free-keyed headers, target's mapping form), each with a lab dict that reaches
    it. Derived like FIELDS: a mapping added to spec.py is found without a change here."""
    found: dict[str, dict] = {}
    original, current = spec._Section.__init__, [None]

    def init(self, data, path, source):
        found.setdefault(path, current[0])
        original(self, data, path, source)

    spec._Section.__init__ = init
    try:
        for data, _ in FIELDS.values():
            current[0] = data
            spec.parse(copy.deepcopy(data), "lab.yml")
    finally:
        spec._Section.__init__ = original
    return found


def with_key(data: dict, path: str, key) -> dict:
    data = copy.deepcopy(data)
    parts = re.findall(r"[^.\[\]]+|\[\d+\]", path)
    node = data
    for part in parts:
        if part.startswith("["):
            node = node[int(part[1:-1])]
        else:
            if not isinstance(node.get(part), (dict, list)):  # a key that also takes a text (certificates)
                node[part] = {}
            node = node[part]
    node[key] = "x"
    return data


MAPPINGS = mappings()


def test_every_mapping_of_the_lab_file_is_found():
    for path in ("", "network", "servers[0]", "target", "headers", "hsts", "caa", "security_txt", "dane"):
        assert path in MAPPINGS, sorted(MAPPINGS)


@pytest.mark.parametrize("path", MAPPINGS)
def test_a_key_that_is_not_a_text_is_refused_naming_its_path_in_every_mapping(path):
    def check(key):
        with pytest.raises(SpecError) as caught:
            spec.parse(with_key(MAPPINGS[path], path, key), "lab.yml")
        message = str(caught.value)
        shown = spec._show_key(key)
        assert message.startswith(f"lab.yml: {path + '.' if path else ''}{shown}: a key must be a text, got "), \
            message
        assert message.isprintable() and "\n" not in message, message

    for key in NON_TEXT_KEYS:
        check(key)
    settings(max_examples=25, deadline=None)(given(key=st.one_of(
        st.integers(), st.floats(allow_nan=False), st.booleans(), st.none(), st.dates(),
        st.datetimes()))(check))()


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
    out: dict[str, object] = {"SUMMARY.txt": [len(line.split()) for line in
                                              (build / "SUMMARY.txt").read_text().splitlines()]}
    for host in lab.hosts:
        root = build / "hosts" / host.name
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            rel = str(path.relative_to(root))
            key = f"{host.role}/{host.software or ''}/" + re.sub(r"\+\d{5}\.", "+TAG.", rel.replace(
                host.fqdn, "FQDN").replace(lab.domain, "DOMAIN"))
            body = path.read_text(encoding="utf-8")
            if rel.startswith("etc/nginx"):
                out[key] = nginx_shape(body)
            elif rel == "etc/bind/named.conf":
                out[key] = nginx_shape(body, line_comment="//")
            elif rel.startswith(("etc/apache2", "etc/unbound/unbound.conf")) or rel.endswith("security.txt"):
                out[key] = line_shape(body)
            elif rel.endswith(".html"):
                out[key] = html_shape(body)
            elif rel.startswith("etc/bind/labgen/keys/"):
                out[key] = [len(line.split()) for line in body.splitlines()]
            elif rel.startswith("etc/bind/labgen/"):
                out[key] = zone_shape(path, path.name.removeprefix("db.").removesuffix(".unsigned"))
    return out


@pytest.mark.parametrize("field", FIELDS)
def test_any_text_in_any_field_is_refused_or_one_harmless_token(field, tmp_path_factory):
    _, valid = FIELDS[field]
    base_lab = spec.parse(put_field(field, valid), "lab.yml")
    baseline = shape(render.render(base_lab, tmp_path_factory.mktemp("base")), base_lab)

    def check(value):
        try:
            lab = spec.parse(put_field(field, value), "lab.yml")
        except SpecError as exc:
            message = str(exc)
            assert message.startswith("lab.yml: ") and message.isprintable(), message
            assert len(message) < 600, message
            return
        if field.startswith("target.") and lab.target != base_lab.target:
            # Another server version: the capability gates legitimately change the directives
            # (no `http2 on` before nginx 1.25.1); what reaches a file is digits and dots only.
            assert re.fullmatch(r"[0-9.]+", str(value).strip()), f"{field}={value!r} was accepted"
            return
        build = render.render(lab, tmp_path_factory.mktemp("fuzz"))
        assert shape(build, lab) == baseline, f"{field}={value!r} changed the rendered structure"

    for value in DANGEROUS:  # every known payload in every field, not left to chance
        check(value)
    settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])(
        given(value=st.one_of(text, near(str(valid))))(check))()


def test_the_shapes_see_an_injection():
    """The property above can fail: a newline smuggled past validation changes the shape."""
    assert nginx_shape('add_header X "a" always;\nssl_protocols TLSv1;') != nginx_shape(
        'add_header X "a; b" always;')
    assert line_shape('Header set X "a"\nSSLProtocol all') != line_shape('Header set X "a b"')
    assert html_shape("<p>x</p>") != html_shape("<p>x<script>y</script></p>")

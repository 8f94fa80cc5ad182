"""Unit tests of the lab-file validator (labgen.spec): fast, no containers.

Every bad input must be refused with one exact message "<file>: <key path>: <problem>", so a
person can find the key and fix it; every good input must give the Lab the docs promise.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from pathlib import Path

import pytest

from labgen import cli
from labgen.errors import SpecError
from labgen.spec import load, parse


class Yaml(str):
    """Raw lab-file text: written to tmp_path/lab.yml and read with load()."""


# In the expected message of a Yaml case, PATH stands for the lab file's path.
PATH = "{path}"

LABEL_RULE = "use letters, digits and '-', not starting or ending with '-' (RFC 1123)"
LAB_NAME_RULE = ("1-32 lowercase letters, digits and '-', starting with a letter "
                 "(it names containers and networks)")
HEADER_VALUE_RULE = ("is not an allowed header value: printable ASCII without quotes, backslash, "
                     "$, %, #, braces or leading/trailing spaces")
CONTACT_RULE = "is not a contact URI: use mailto:user@domain or https://host/path (RFC 9116)"
TOP_KEYS = ("caa, certificates, dane, dnssec, domain, engine, headers, hsts, http3, name, network, profile, "
            "security_txt, servers, target")


def web(*servers: tuple[str, str]) -> dict:
    return {"servers": [{"name": n, "software": s} for n, s in servers]}


BAD = [
    # ---- unknown keys, with and without a suggestion
    pytest.param({"profil": "modern"},
                 f"lab.yml: profil: unknown key (did you mean 'profile'?); known keys: {TOP_KEYS}",
                 id="unknown-top-key"),
    pytest.param({"engine": "lxc"},
                 "lab.yml: engine: 'lxc' is not one of podman, docker", id="unknown-engine"),
    pytest.param({"hsts": {"maxage": 31536000}},
                 "lab.yml: hsts.maxage: unknown key (did you mean 'max_age'?); "
                 "known keys: include_subdomains, max_age, preload",
                 id="unknown-nested-key"),
    pytest.param({"target": {"ngnix": "1.26"}},
                 "lab.yml: target.ngnix: unknown key (did you mean 'nginx'?); "
                 "known keys: apache, nginx, openssl, preset",
                 id="unknown-target-key"),
    pytest.param({"servers": [{"name": "web", "software": "nginx", "port": 8443}]},
                 "lab.yml: servers[0].port: unknown key; known keys: name, software",
                 id="unknown-server-key"),
    # ---- wrong types
    pytest.param({"hsts": {"max_age": "63072000"}},
                 "lab.yml: hsts.max_age: must be a whole number, got the text '63072000'",
                 id="str-for-int"),
    pytest.param({"security_txt": {"expires_days": 30.5}},
                 "lab.yml: security_txt.expires_days: must be a whole number, got the number 30.5",
                 id="float-for-int"),
    pytest.param({"hsts": {"max_age": True}},
                 "lab.yml: hsts.max_age: must be a whole number, got a boolean (true)",
                 id="bool-for-int"),
    pytest.param({"http3": 1},
                 "lab.yml: http3: must be true or false, got the number 1",
                 id="int-for-bool"),
    pytest.param({"dane": {"ca": "yes"}},
                 "lab.yml: dane.ca: must be true or false, got the text 'yes'",
                 id="str-for-bool"),
    pytest.param({"name": 5},
                 "lab.yml: name: must be a text, got the number 5",
                 id="int-for-str"),
    pytest.param({"domain": 7},
                 "lab.yml: domain: must be a domain name (text), got the number 7",
                 id="int-for-domain"),
    pytest.param({"network": ["198.51.100.0/24"]},
                 "lab.yml: network: must be a mapping of keys to values, got a list",
                 id="list-for-mapping"),
    pytest.param({"headers": ["X-Frame-Options"]},
                 "lab.yml: headers: must be a mapping of keys to values, got a list",
                 id="list-for-headers"),
    pytest.param({"servers": {"name": "web", "software": "nginx"}},
                 "lab.yml: servers: must be a non-empty list of web servers, got a mapping",
                 id="mapping-for-list"),
    pytest.param({"servers": []},
                 "lab.yml: servers: must be a non-empty list of web servers, got an empty list",
                 id="empty-server-list"),
    pytest.param({"servers": ["web"]},
                 "lab.yml: servers[0]: must be a mapping of keys to values, got the text 'web'",
                 id="str-for-server"),
    pytest.param({"network": {"ipv4": 10}},
                 "lab.yml: network.ipv4: must be a subnet in CIDR notation (text), got the number 10",
                 id="int-for-subnet"),
    pytest.param([{"name": "demo"}],
                 "lab.yml: (top level): must be a mapping of keys to values, got a list",
                 id="top-level-list-parsed"),
    # ---- lab name
    pytest.param({"name": "Demo"},
                 f"lab.yml: name: 'Demo' is not a valid lab name: {LAB_NAME_RULE}", id="name-upper"),
    pytest.param({"name": "my_lab"},
                 f"lab.yml: name: 'my_lab' is not a valid lab name: {LAB_NAME_RULE}",
                 id="name-underscore"),
    pytest.param({"name": "1lab"},
                 f"lab.yml: name: '1lab' is not a valid lab name: {LAB_NAME_RULE}", id="name-digit"),
    pytest.param({"name": "lab-"},
                 f"lab.yml: name: 'lab-' is not a valid lab name: {LAB_NAME_RULE}",
                 id="name-trailing-hyphen"),
    pytest.param({"name": "a" * 33},
                 f"lab.yml: name: '{'a' * 33}' is not a valid lab name: {LAB_NAME_RULE}",
                 id="name-too-long"),
    pytest.param({"name": "demo\n"},
                 "lab.yml: name: 'demo\\n' contains a line break (U+000A); a value is one line of printable text",
                 id="name-trailing-newline"),
    # ---- domain labels
    pytest.param({"domain": "-lab.example"},
                 f"lab.yml: domain: '-lab' is not a valid DNS label: {LABEL_RULE}",
                 id="domain-leading-hyphen"),
    pytest.param({"domain": "my_lab.example"},
                 f"lab.yml: domain: 'my_lab' is not a valid DNS label: {LABEL_RULE}",
                 id="domain-underscore"),
    pytest.param({"domain": "a" * 64 + ".example"},
                 f"lab.yml: domain: '{'a' * 64}' is longer than 63 characters (RFC 1035)",
                 id="domain-label-64"),
    pytest.param({"domain": "example"},
                 "lab.yml: domain: 'example' needs at least two labels, such as lab.example",
                 id="domain-single-label"),
    pytest.param({"domain": "lab..example"},
                 "lab.yml: domain: 'lab..example' has an empty label (a leading dot or two dots in a row)",
                 id="domain-empty-label"),
    pytest.param({"domain": "xn--zz.example"},
                 "lab.yml: domain: 'xn--zz' is not a valid internationalized label "
                 "(IDNA 2008: Invalid A-label)",
                 id="domain-bad-a-label"),
    pytest.param({"domain": "ab--c.example"},
                 "lab.yml: domain: 'ab--c': '--' in the 3rd and 4th characters is reserved for IDNA "
                 "(RFC 5891)",
                 id="domain-reserved-hyphens"),
    pytest.param({"domain": "lab example"},
                 f"lab.yml: domain: 'lab example' is not a valid DNS label: {LABEL_RULE}",
                 id="domain-space"),
    pytest.param({"domain": "lab.example\nevil"},
                 "lab.yml: domain: 'lab.example\\nevil' contains a line break (U+000A); a value is one line of printable text",
                 id="domain-newline"),
    pytest.param({"domain": "lab.example\n"},
                 "lab.yml: domain: 'lab.example\\n' contains a line break (U+000A); a value is one line of printable text",
                 id="domain-trailing-newline"),
    pytest.param({"domain": "lab;.example"},
                 f"lab.yml: domain: 'lab;' is not a valid DNS label: {LABEL_RULE}",
                 id="domain-semicolon"),
    pytest.param({"domain": "lab{.example"},
                 f"lab.yml: domain: 'lab{{' is not a valid DNS label: {LABEL_RULE}",
                 id="domain-brace"),
    # ---- servers
    pytest.param(web(("web_1", "nginx")),
                 f"lab.yml: servers[0].name: 'web_1' is not a valid DNS label: {LABEL_RULE}",
                 id="server-name-underscore"),
    pytest.param(web(("", "nginx")),
                 "lab.yml: servers[0].name: must not be empty",
                 id="server-name-empty"),
    pytest.param(web(("web", "nginx"), ("web", "apache")),
                 "lab.yml: servers[1].name: 'web' is already the name of servers[0]; "
                 "names must be unique",
                 id="server-duplicate"),
    pytest.param(web(("Web", "nginx"), ("web", "apache")),
                 "lab.yml: servers[1].name: 'web' is already the name of servers[0]; "
                 "names must be unique",
                 id="server-duplicate-case"),
    pytest.param(web(("ns1", "nginx")),
                 "lab.yml: servers[0].name: 'ns1' is taken by the lab's own ns1 host; "
                 "choose another name",
                 id="server-reserved-ns1"),
    pytest.param(web(("Resolver", "apache")),
                 "lab.yml: servers[0].name: 'resolver' is taken by the lab's own resolver host; "
                 "choose another name",
                 id="server-reserved-resolver"),
    pytest.param(web(("bogus", "nginx")),
                 "lab.yml: servers[0].name: 'bogus' is taken by the lab's deliberately broken "
                 "DNSSEC zone; choose another name",
                 id="server-reserved-bogus"),
    pytest.param(web(("web", "nginxx")),
                 "lab.yml: servers[0].software: 'nginxx' is not one of nginx, apache "
                 "(did you mean 'nginx'?)",
                 id="software-unknown"),
    pytest.param({"servers": [{"name": "web"}]},
                 "lab.yml: servers[0]: missing key 'software' (nginx or apache)",
                 id="software-missing"),
    pytest.param({"servers": [{"name": "web", "software": None}]},
                 "lab.yml: servers[0]: missing key 'software' (nginx or apache)",
                 id="software-null"),
    # ---- profile and target
    pytest.param({"profile": "modren"},
                 "lab.yml: profile: 'modren' is not one of modern, intermediate (did you mean 'modern'?)",
                 id="profile-unknown"),
    pytest.param({"target": "debian11"},
                 "lab.yml: target: 'debian11' is not a known target (debian13, debian12) "
                 "(did you mean 'debian13'?); or give a mapping of nginx, apache and openssl versions",
                 id="target-unknown"),
    pytest.param({"target": {"preset": "ubuntu"}},
                 "lab.yml: target.preset: 'ubuntu' is not one of debian13, debian12",
                 id="target-preset-unknown"),
    pytest.param({"target": {"nginx": "1.x"}},
                 "lab.yml: target.nginx: '1.x' is not a version such as 1.26 or 2.4.66",
                 id="target-version-bad"),
    pytest.param({"target": {"openssl": "3.0.0.1"}},
                 "lab.yml: target.openssl: '3.0.0.1' is not a version such as 1.26 or 2.4.66",
                 id="target-version-four-parts"),
    # ---- network
    pytest.param({"network": {"ipv4": "198.51.100.1/24"}},
                 "lab.yml: network.ipv4: '198.51.100.1/24' has host bits set "
                 "(did you mean '198.51.100.0/24'?)",
                 id="ipv4-host-bits"),
    pytest.param({"network": {"ipv4": "2001:db8:10::/64"}},
                 "lab.yml: network.ipv4: '2001:db8:10::/64' is an IPv6 subnet; this key takes IPv4",
                 id="ipv6-for-ipv4"),
    pytest.param({"network": {"ipv6": "10.1.0.0/24"}},
                 "lab.yml: network.ipv6: '10.1.0.0/24' is an IPv4 subnet; this key takes IPv6",
                 id="ipv4-for-ipv6"),
    pytest.param({"network": {"ipv4": "not-a-subnet"}},
                 "lab.yml: network.ipv4: 'not-a-subnet' is not a subnet in CIDR notation",
                 id="subnet-garbage"),
    pytest.param({"network": {"ipv4": "8.8.8.0/24"}},
                 "lab.yml: network.ipv4: 8.8.8.0/24 is not inside private or documentation space "
                 "(10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 198.51.100.0/24, 203.0.113.0/24)",
                 id="ipv4-public"),
    pytest.param({"network": {"ipv6": "2001:4860::/64"}},
                 "lab.yml: network.ipv6: 2001:4860::/64 is not inside private or documentation space "
                 "(2001:db8::/32, fc00::/7)",
                 id="ipv6-public"),
    pytest.param({"network": {"ipv4": "10.88.5.0/24"}},
                 "lab.yml: network.ipv4: 10.88.5.0/24 overlaps 10.88.0.0/16, "
                 "a container engine's default network",
                 id="ipv4-inside-podman-default"),
    pytest.param({"network": {"ipv4": "10.0.0.0/8"}},
                 "lab.yml: network.ipv4: 10.0.0.0/8 overlaps 10.88.0.0/16, "
                 "a container engine's default network",
                 id="ipv4-around-podman-default"),
    pytest.param({"target": {"nginx": 1.20}},
                 'lab.yml: target.nginx: 1.2 is a number; write the version in quotes, such as "1.26"',
                 id="target-version-unquoted"),
    pytest.param({"network": {"ipv4": "10.1.0.0/28"}},
                 "lab.yml: network.ipv4: 10.1.0.0/28 is too small for 6 hosts "
                 "(labgen uses the addresses 10.1.0.10 to 10.1.0.21); use a larger subnet",
                 id="ipv4-too-small"),
    pytest.param({"network": {"ipv6": "2001:db8:10::/124"}},
                 "lab.yml: network.ipv6: 2001:db8:10::/124 is too small for 6 hosts "
                 "(labgen uses the addresses 2001:db8:10::a to 2001:db8:10::15); use a larger subnet",
                 id="ipv6-too-small"),
    # ---- HSTS
    pytest.param({"hsts": {"max_age": -1}},
                 "lab.yml: hsts.max_age: -1 is out of range: the modern profile allows 63072000 "
                 "(its hsts_min_age) to 2147483647 seconds",
                 id="hsts-negative"),
    pytest.param({"hsts": {"max_age": 2**31}},
                 "lab.yml: hsts.max_age: 2147483648 is out of range: the modern profile allows 63072000 "
                 "(its hsts_min_age) to 2147483647 seconds",
                 id="hsts-too-large"),
    pytest.param({"hsts": {"preload": True, "include_subdomains": False}},
                 "lab.yml: hsts.preload: preload needs include_subdomains: true and max_age of at "
                 "least 31536000 (hstspreload.org submission requirements)",
                 id="hsts-preload-no-subdomains"),
    pytest.param({"hsts": {"max_age": 0}},
                 "lab.yml: hsts.max_age: 0 is out of range: the modern profile allows 63072000 "
                 "(its hsts_min_age) to 2147483647 seconds",
                 id="hsts-zero"),
    pytest.param({"profile": "intermediate", "hsts": {"max_age": 31536000}},
                 "lab.yml: hsts.max_age: 31536000 is out of range: the intermediate profile allows "
                 "63072000 (its hsts_min_age) to 2147483647 seconds",
                 id="hsts-below-profile-minimum"),
    # ---- DNSSEC
    pytest.param({"dnssec": {"algorithm": "RSASHA1"}},
                 "lab.yml: dnssec.algorithm: 'RSASHA1' is not one of ECDSAP256SHA256, ED25519",
                 id="dnssec-rsasha1"),
    pytest.param({"dnssec": {"denial": "nsec5"}},
                 "lab.yml: dnssec.denial: 'nsec5' is not one of nsec, nsec3 (did you mean 'nsec'?)",
                 id="dnssec-denial"),
    # ---- headers
    pytest.param({"headers": {"X Frame": "DENY"}},
                 "lab.yml: headers.'X Frame': 'X Frame' is not a header name: letters, digits and '-'",
                 id="header-name-space"),
    pytest.param({"headers": {"X-Test": 'a"b'}},
                 f"lab.yml: headers.X-Test: 'a\"b' {HEADER_VALUE_RULE}", id="header-value-quote"),
    pytest.param({"headers": {"X-Test": "$host"}},
                 f"lab.yml: headers.X-Test: '$host' {HEADER_VALUE_RULE}", id="header-value-dollar"),
    pytest.param({"headers": {"X-Test": "%{HTTP_HOST}e"}},
                 f"lab.yml: headers.X-Test: '%{{HTTP_HOST}}e' {HEADER_VALUE_RULE}",
                 id="header-value-percent"),
    pytest.param({"headers": {"X-Test": "a\nInjected: 1"}},
                 "lab.yml: headers.X-Test: 'a\\nInjected: 1' contains a line break (U+000A); a value is one line of printable text",
                 id="header-value-newline"),
    pytest.param({"headers": {"X-Test": "a{b"}},
                 f"lab.yml: headers.X-Test: 'a{{b' {HEADER_VALUE_RULE}", id="header-value-brace"),
    pytest.param({"headers": {"X-Test": "a#b"}},
                 f"lab.yml: headers.X-Test: 'a#b' {HEADER_VALUE_RULE}", id="header-value-hash"),
    pytest.param({"headers": {"X-Test": "a\\b"}},
                 f"lab.yml: headers.X-Test: 'a\\\\b' {HEADER_VALUE_RULE}",
                 id="header-value-backslash"),
    pytest.param({"headers": {"X-Test": " DENY"}},
                 f"lab.yml: headers.X-Test: ' DENY' {HEADER_VALUE_RULE}",
                 id="header-value-leading-space"),
    pytest.param({"headers": {"Strict-Transport-Security": "max-age=0"}},
                 "lab.yml: headers.Strict-Transport-Security: Strict-Transport-Security is set by "
                 "labgen from the 'hsts' key",
                 id="header-hsts-override"),
    pytest.param({"headers": {"strict-transport-security": None}},
                 "lab.yml: headers.strict-transport-security: strict-transport-security is set by "
                 "labgen from the 'hsts' key",
                 id="header-hsts-removed"),
    pytest.param({"headers": {"Alt-Svc": 'h3=":443"'}},
                 "lab.yml: headers.Alt-Svc: Alt-Svc is set by labgen from the 'http3' key",
                 id="header-alt-svc"),
    # ---- security.txt
    pytest.param({"security_txt": {"contact": "http://lab.example/security"}},
                 f"lab.yml: security_txt.contact: 'http://lab.example/security' {CONTACT_RULE}",
                 id="contact-http"),
    pytest.param({"security_txt": {"contact": ["mailto:a b@c.example"]}},
                 f"lab.yml: security_txt.contact: 'mailto:a b@c.example' {CONTACT_RULE}",
                 id="contact-mailto-space"),
    pytest.param({"security_txt": {"contact": []}},
                 "lab.yml: security_txt.contact: needs at least one contact (RFC 9116 section 2.5.3)",
                 id="contact-empty"),
    pytest.param({"security_txt": {"expires_days": 365}},
                 "lab.yml: security_txt.expires_days: 365 is out of range: Expires must lie less "
                 "than a year ahead (1 to 364 days; RFC 9116 section 2.5.5)",
                 id="expires-365"),
    pytest.param({"security_txt": {"expires_days": 0}},
                 "lab.yml: security_txt.expires_days: 0 is out of range: Expires must lie less "
                 "than a year ahead (1 to 364 days; RFC 9116 section 2.5.5)",
                 id="expires-0"),
    pytest.param({"security_txt": {"preferred_languages": ["english"]}},
                 "lab.yml: security_txt.preferred_languages: 'english' is not a language tag "
                 "such as en or nl (RFC 5646)",
                 id="language-bad"),
    pytest.param({"security_txt": {"preferred_languages": []}},
                 "lab.yml: security_txt.preferred_languages: needs at least one language tag, "
                 "such as en (RFC 9116 section 2.5.8)",
                 id="language-empty"),
    # ---- CAA
    pytest.param({"caa": {"issuer": "letsencrypt"}},
                 "lab.yml: caa.issuer: 'letsencrypt' needs at least two labels, such as lab.example",
                 id="caa-issuer-single-label"),
    pytest.param({"caa": {"issuer": "ca;.example"}},
                 f"lab.yml: caa.issuer: 'ca;' is not a valid DNS label: {LABEL_RULE}",
                 id="caa-issuer-semicolon"),
    pytest.param({"caa": {"iodef": "http://lab.example/report"}},
                 f"lab.yml: caa.iodef: 'http://lab.example/report' {CONTACT_RULE}",
                 id="caa-iodef-http"),
    # ---- raw YAML text, read with load()
    pytest.param(Yaml("name: demo\nname: other\n"),
                 f"{PATH}: line 2, column 1: not valid YAML: key 'name' is given twice",
                 id="yaml-duplicate-key"),
    pytest.param(Yaml("hsts:\n  max_age: 1\n  max_age: 2\n"),
                 f"{PATH}: line 3, column 3: not valid YAML: key 'max_age' is given twice",
                 id="yaml-duplicate-nested-key"),
    pytest.param(Yaml("name: [demo\n"),
                 f"{PATH}: line 2, column 1: not valid YAML: while parsing a flow sequence: "
                 "expected ',' or ']', but got '<stream end>'",
                 id="yaml-invalid"),
    pytest.param(Yaml("\tname: demo\n"),
                 f"{PATH}: line 1, column 1: not valid YAML: while scanning for the next token: "
                 "found character '\\t' that cannot start any token",
                 id="yaml-tab"),
    pytest.param(Yaml("- name: demo\n- domain: lab.example\n"),
                 f"{PATH}: (top level): must be a mapping of keys to values, got a list",
                 id="yaml-top-level-list"),
    pytest.param(Yaml("demo\n"),
                 f"{PATH}: (top level): must be a mapping of keys to values, got a text",
                 id="yaml-top-level-text"),
]


def refuse(data, tmp_path: Path) -> tuple[SpecError, str]:
    """Feed one bad input to the validator; return the error and the source it should name."""
    if isinstance(data, Yaml):
        path = tmp_path / "lab.yml"
        path.write_text(data, encoding="utf-8")
        with pytest.raises(SpecError) as excinfo:
            load(path)
        return excinfo.value, str(path)
    with pytest.raises(SpecError) as excinfo:
        parse(data, "lab.yml")
    return excinfo.value, "lab.yml"


def test_enough_bad_inputs():
    assert len({p.id for p in BAD}) == len(BAD) >= 30


@pytest.mark.parametrize(("data", "message"), BAD)
def test_bad_input_is_refused_with_exact_message(data, message, tmp_path):
    error, source = refuse(data, tmp_path)
    assert str(error) == message.replace(PATH, source)


def test_cli_render_refuses_bad_file(tmp_path, capsys):
    bad = tmp_path / "lab.yml"
    bad.write_text("name: demo\nprofil: modern\n", encoding="utf-8")
    out = tmp_path / "build"
    assert cli.main(["render", "-c", str(bad), "-o", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.err == (f"labgen: error: {bad}: profil: unknown key (did you mean 'profile'?); "
                            f"known keys: {TOP_KEYS}\n")
    assert captured.out == ""
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("text,where", [
    ('headers:\n  1: "x"\n', "headers.1: a key must be a text, got the number 1"),
    ("hsts:\n  true: 1\n", "hsts.true: a key must be a text, got a boolean (true)"),
    ("target:\n  2026-11-30: x\n", "target.2026-11-30: a key must be a text, got a YAML date"),
    ("servers:\n  - name: www\n    ~: x\n", "servers[0].null: a key must be a text, got nothing (null)"),
])
def test_cli_render_refuses_a_key_that_is_not_a_text(tmp_path, capsys, text, where):
    """Issue 23: a number as a header name crashed render; every mapping now says which key."""
    bad = tmp_path / "lab.yml"
    bad.write_text(text, encoding="utf-8")
    out = tmp_path / "build"
    assert cli.main(["render", "-c", str(bad), "-o", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"labgen: error: {bad}: {where}\n" and captured.out == ""
    assert not out.exists()


def test_cli_render_missing_file(tmp_path, capsys):
    missing = tmp_path / "nope.yml"
    out = tmp_path / "build"
    assert cli.main(["render", "-c", str(missing), "-o", str(out)]) == 2
    assert capsys.readouterr().err == (
        f"labgen: error: {missing}: no such lab file (create one with 'labgen init')\n")
    assert not out.exists()


def test_empty_lab_file_is_the_default(tmp_path):
    path = tmp_path / "lab.yml"
    path.write_text("# nothing here\n", encoding="utf-8")
    assert load(path) == parse({})


def test_default_lab():
    lab = parse({})
    assert lab.name == "demo"
    assert lab.domain == "lab.example"
    assert lab.profile.name == "modern"
    assert lab.target.name == "debian13"
    assert [(h.name, h.software, h.fqdn) for h in lab.web] == [
        ("nginx", "nginx", "nginx.lab.example"), ("apache", "apache", "apache.lab.example")]
    assert [h.name for h in lab.hosts] == ["ns1", "resolver", "client", "probe", "nginx", "apache"]
    assert lab.ipv4_network == ipaddress.ip_network("198.51.100.0/24")
    assert lab.ipv6_network == ipaddress.ip_network("2001:db8:10::/64")
    assert lab.role("authdns").ipv4 == ipaddress.ip_address("198.51.100.10")
    assert lab.web[0].ipv6 == ipaddress.ip_address("2001:db8:10::14")
    assert (lab.hsts.max_age, lab.hsts.include_subdomains, lab.hsts.preload) == (63072000, True, False)
    assert lab.hsts.header == "max-age=63072000; includeSubDomains"
    assert (lab.dnssec.algorithm, lab.dnssec.denial) == ("ECDSAP256SHA256", "nsec")
    assert lab.http3 is True
    assert lab.dane_ca is False
    assert (lab.caa.issuer, lab.caa.iodef) == ("ca.lab.example", "mailto:security@lab.example")
    assert lab.security_txt.contact == ("mailto:security@lab.example",)
    assert lab.security_txt.expires_days == 180
    assert lab.security_txt.preferred_languages == ("en",)
    assert lab.container(lab.web[0]) == "labgen-demo-nginx"


def test_starter_file_is_the_default_lab(tmp_path, capsys):
    assert cli.main(["init", str(tmp_path)]) == 0
    starter = tmp_path / "lab.yml"
    assert starter.is_file()
    lab = load(starter)
    assert lab.source == str(starter)
    assert lab == parse({})
    assert dataclasses.replace(lab, source="lab.yml") == parse({})
    capsys.readouterr()

    assert cli.main(["init", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"labgen: error: {starter}: already exists; use --force to overwrite it\n")
    starter.write_text("name: changed\n", encoding="utf-8")
    assert cli.main(["init", "--force", str(tmp_path)]) == 0
    assert load(starter) == parse({})


def test_server_override_keeps_order_and_addresses():
    lab = parse(web(("www", "apache"), ("Static", "nginx"), ("api", "nginx")))
    assert [(h.name, h.software, str(h.ipv4)) for h in lab.web] == [
        ("www", "apache", "198.51.100.20"), ("static", "nginx", "198.51.100.21"),
        ("api", "nginx", "198.51.100.22")]


def test_smallest_subnet_that_fits():
    # 4 infrastructure hosts at .10-.13 and 11 web hosts at .20-.30 fit a /27 (broadcast .31).
    servers = web(*((f"web{i}", "nginx") for i in range(11)))
    lab = parse({**servers, "network": {"ipv4": "10.1.0.0/27"}})
    assert str(lab.web[-1].ipv4) == "10.1.0.30"
    servers = web(*((f"web{i}", "nginx") for i in range(12)))
    with pytest.raises(SpecError, match=r"is too small for 16 hosts \(labgen uses the addresses 10.1.0.10 to 10.1.0.31\)"):
        parse({**servers, "network": {"ipv4": "10.1.0.0/27"}})


def test_server_name_defaults_to_software():
    lab = parse({"servers": [{"software": "apache"}]})
    assert [(h.name, h.fqdn) for h in lab.web] == [("apache", "apache.lab.example")]


@pytest.mark.parametrize(("domain", "a_label"), [
    ("bücher.example", "xn--bcher-kva.example"),
    ("BÜCHER.Example", "xn--bcher-kva.example"),
    ("xn--bcher-kva.example", "xn--bcher-kva.example"),
    ("Lab.Example.", "lab.example"),
])
def test_domain_normalised_to_a_labels(domain, a_label):
    lab = parse({"domain": domain})
    assert lab.domain == a_label
    assert lab.web[0].fqdn == f"nginx.{a_label}"
    assert lab.caa.issuer == f"ca.{a_label}"


def test_idna_server_name():
    lab = parse(web(("bücher", "nginx")))
    assert lab.web[0].name == "xn--bcher-kva"
    assert lab.web[0].fqdn == "xn--bcher-kva.lab.example"


def test_valid_overrides():
    lab = parse({
        "name": "tls-lab2", "profile": "intermediate", "target": {"preset": "debian12", "nginx": "1.24"},
        "network": {"ipv4": "10.20.0.0/24", "ipv6": "fd00:20::/64"}, "http3": False,
        "hsts": {"max_age": 63072000, "preload": True},
        "dnssec": {"algorithm": "ED25519", "denial": "nsec3"}, "dane": {"ca": True},
        "caa": {"issuer": "ca.xn--bcher-kva.example", "iodef": "https://lab.example/caa"},
        "headers": {"X-Frame-Options": None, "Content-Security-Policy": "default-src 'self'"},
        "security_txt": {"contact": "https://lab.example/contact", "expires_days": 364,
                         "preferred_languages": "nl"},
    })
    assert (lab.target.name, lab.target.nginx, lab.target.apache) == ("custom", "1.24", "2.4.62")
    assert lab.hsts.header == "max-age=63072000; includeSubDomains; preload"
    assert (lab.caa.issuer, lab.caa.iodef) == ("ca.xn--bcher-kva.example", "https://lab.example/caa")
    names = [name.lower() for name, _ in lab.headers]
    assert "x-frame-options" not in names
    assert ("Content-Security-Policy", "default-src 'self'") in lab.headers
    assert lab.security_txt.contact == ("https://lab.example/contact",)
    assert lab.security_txt.preferred_languages == ("nl",)


def test_caa_iodef_null_turns_reports_off():
    assert parse({"caa": {"iodef": None}}, "lab.yml").caa.iodef is None
    assert parse({}, "lab.yml").caa.iodef == "mailto:security@lab.example"

"""Lab file -> frozen Lab model. Every validation of user input lives here.

Each value that later reaches nginx, Apache, BIND, Unbound or a zone file is checked against
a whitelist first, so a lab file cannot inject a directive or a record.
"""

from __future__ import annotations

import difflib
import io
import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import idna
import yaml

from .capabilities import DEFAULT_TARGET, TARGETS, Target
from .errors import SpecError
from .profiles import PROFILES, Profile, load_profile

SOFTWARE = ("nginx", "apache")
ENGINES = ("podman", "docker")
DNSSEC_ALGORITHMS = ("ECDSAP256SHA256", "ED25519")
DENIAL = ("nsec", "nsec3")
# Infrastructure hosts: (name, role, address offset in the lab subnets). Web hosts follow.
# The child zone served with a broken signature (dnszone): its name is taken too.
BOGUS = "bogus"  # a child zone served with a broken signature: resolvers must refuse it
INFRA_HOSTS = (("ns1", "authdns", 10), ("resolver", "resolver", 11), ("client", "client", 12))
WEB_OFFSET = 20
# Ranges a lab may use: private and documentation space, never someone's real addresses.
ALLOWED_V4 = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "198.51.100.0/24", "203.0.113.0/24"))
ALLOWED_V6 = tuple(ipaddress.ip_network(n) for n in ("2001:db8::/32", "fc00::/7"))
# Networks the container engines create by default: a lab there would collide with them.
ENGINE_DEFAULTS = tuple(ipaddress.ip_network(n) for n in ("10.88.0.0/16", "172.17.0.0/16"))

LAB_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$|^[a-z]$")
LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
HEADER_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,63}$")
# Header values are quoted in nginx and Apache: no quote, backslash, $ (nginx variables),
# % (Apache format specifiers), braces, # or control characters can get through.
HEADER_VALUE_RE = re.compile(r"^[A-Za-z0-9'()*+,./:;=?@!&~_\[\]|^-]([A-Za-z0-9 '()*+,./:;=?@!&~_\[\]|^-]{0,1022}[A-Za-z0-9'()*+,./:;=?@!&~_\[\]|^-])?$")
MAILTO_RE = re.compile(r"^mailto:[A-Za-z0-9._+-]{1,64}@[a-z0-9.-]{1,253}$")
HTTPS_URL_RE = re.compile(r"^https://[a-z0-9.-]{1,253}(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]{0,200})?$")
LANG_RE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{1,8}){0,3}$")
VERSION_RE = re.compile(r"^[0-9]{1,3}(\.[0-9]{1,3}){1,2}$")
# Headers labgen sets itself from other keys of the lab file.
MANAGED_HEADERS = {"strict-transport-security": "hsts", "alt-svc": "http3"}


@dataclass(frozen=True)
class Host:
    name: str
    role: str  # authdns | resolver | client | web
    fqdn: str
    ipv4: ipaddress.IPv4Address
    ipv6: ipaddress.IPv6Address
    software: str | None = None  # nginx | apache for web hosts


@dataclass(frozen=True)
class Hsts:
    max_age: int
    include_subdomains: bool
    preload: bool

    @property
    def header(self) -> str:
        value = f"max-age={self.max_age}"
        if self.include_subdomains:
            value += "; includeSubDomains"
        if self.preload:
            value += "; preload"
        return value


@dataclass(frozen=True)
class Dnssec:
    algorithm: str
    denial: str


@dataclass(frozen=True)
class Caa:
    issuer: str
    iodef: str | None


@dataclass(frozen=True)
class SecurityTxt:
    contact: tuple[str, ...]
    expires_days: int
    preferred_languages: tuple[str, ...]


@dataclass(frozen=True)
class Lab:
    name: str
    domain: str
    profile: Profile
    target: Target
    ipv4_network: ipaddress.IPv4Network
    ipv6_network: ipaddress.IPv6Network
    hosts: tuple[Host, ...]
    http3: bool
    hsts: Hsts
    dnssec: Dnssec
    dane_ca: bool
    caa: Caa
    headers: tuple[tuple[str, str], ...]
    security_txt: SecurityTxt
    engine: str = "podman"
    source: str = field(default="lab.yml", compare=False)

    @property
    def web(self) -> tuple[Host, ...]:
        return tuple(h for h in self.hosts if h.role == "web")

    def role(self, role: str) -> Host:
        return next(h for h in self.hosts if h.role == role)

    def container(self, host: Host) -> str:
        return f"labgen-{self.name}-{host.name}"


# ---------------------------------------------------------------- reading with a path


class _Section:
    """One mapping of the lab file; remembers its path so every error names the key."""

    def __init__(self, data: Any, path: str, source: str):
        self.path, self.source = path, source
        if data is None:
            data = {}
        if not isinstance(data, dict):
            self.fail(f"must be a mapping of keys to values, got {_kind(data)}", path or "(top level)")
        self.data = data
        self.used: set[str] = set()

    def fail(self, problem: str, where: str | None = None) -> None:
        raise SpecError(f"{self.source}: {where or self.path}: {problem}")

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def get(self, name: str, default: Any) -> Any:
        self.used.add(name)
        value = self.data.get(name, default)
        return default if value is None and default is not None else value

    def typed(self, name: str, kind: type, default: Any) -> Any:
        value = self.get(name, default)
        if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            self.fail(f"must be a whole number, got {_kind(value)}", self.key(name))
        if kind is bool and not isinstance(value, bool):
            self.fail(f"must be true or false, got {_kind(value)}", self.key(name))
        if kind is str and not isinstance(value, str):
            self.fail(f"must be a text, got {_kind(value)}", self.key(name))
        return value

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = self.typed(name, str, default)
        if value not in choices:
            self.fail(f"{value!r} is not one of {', '.join(choices)}{_did_you_mean(value, choices)}",
                      self.key(name))
        return value

    def section(self, name: str) -> "_Section":
        return _Section(self.get(name, {}), self.key(name), self.source)

    def done(self) -> None:
        for name in self.data:
            if name not in self.used:
                known = sorted(self.used)
                self.fail(f"unknown key{_did_you_mean(str(name), known)}; known keys: {', '.join(known)}",
                          self.key(str(name)))


def _kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    return {dict: "a mapping", list: "a list", str: f"the text {value!r}", int: f"the number {value}",
            float: f"the number {value}"}.get(type(value), type(value).__name__)


def _did_you_mean(value: str, choices: Any) -> str:
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


# ---------------------------------------------------------------- value checks


def dns_label(value: Any, where: str, fail: Callable[[str, str], None]) -> str:
    """One DNS label (RFC 1035/1123 LDH rule; IDNA 2008 for non-ASCII), returned as an A-label."""
    if not isinstance(value, str):
        fail(f"must be a DNS label (text), got {_kind(value)}", where)
    if not value:
        fail("must not be empty", where)
    text = value.lower()
    if not text.isascii() or text.startswith("xn--"):
        try:
            text = idna.encode(value, uts46=True).decode("ascii")
            idna.decode(text)
        except (idna.IDNAError, UnicodeError) as exc:
            fail(f"{value!r} is not a valid internationalized label (IDNA 2008: {exc})", where)
    if len(text) > 63:
        fail(f"{value!r} is longer than 63 characters (RFC 1035)", where)
    if not LABEL_RE.fullmatch(text):
        fail(f"{value!r} is not a valid DNS label: use letters, digits and '-', "
             "not starting or ending with '-' (RFC 1123)", where)
    if text[2:4] == "--" and not text.startswith("xn--"):
        fail(f"{value!r}: '--' in the 3rd and 4th characters is reserved for IDNA (RFC 5891)", where)
    return text


def domain_name(value: Any, where: str, fail: Callable[[str, str], None]) -> str:
    if not isinstance(value, str):
        fail(f"must be a domain name (text), got {_kind(value)}", where)
    text = value[:-1] if value.endswith(".") else value
    if text and "" in text.split("."):
        fail(f"{value!r} has an empty label (a leading dot or two dots in a row)", where)
    labels = [dns_label(label, where, fail) for label in text.split(".")] if text else []
    if len(labels) < 2:
        fail(f"{value!r} needs at least two labels, such as lab.example", where)
    name = ".".join(labels)
    if len(name) > 253:
        fail(f"{value!r} is longer than 253 characters (RFC 1035)", where)
    return name


def contact_uri(value: Any, where: str, fail: Callable[[str, str], None]) -> str:
    if not isinstance(value, str) or not (MAILTO_RE.fullmatch(value) or HTTPS_URL_RE.fullmatch(value)):
        fail(f"{value!r} is not a contact URI: use mailto:user@domain or https://host/path "
             "(RFC 9116)", where)
    return value


def _network(value: Any, where: str, version: int, fail: Callable[[str, str], None]):
    if not isinstance(value, str):
        fail(f"must be a subnet in CIDR notation (text), got {_kind(value)}", where)
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError:
        try:
            loose = ipaddress.ip_network(value, strict=False)
        except ValueError:
            fail(f"{value!r} is not a subnet in CIDR notation", where)
        fail(f"{value!r} has host bits set (did you mean {str(loose)!r}?)", where)
    if net.version != version:
        fail(f"{value!r} is an IPv{net.version} subnet; this key takes IPv{version}", where)
    allowed = ALLOWED_V4 if version == 4 else ALLOWED_V6
    if not any(net.subnet_of(a) for a in allowed):
        fail(f"{value} is not inside private or documentation space "
             f"({', '.join(map(str, allowed))})", where)
    for reserved in ENGINE_DEFAULTS:
        if net.version == reserved.version and net.overlaps(reserved):
            fail(f"{value} overlaps {reserved}, a container engine's default network", where)
    return net


# ---------------------------------------------------------------- the lab file


def load(path: str | Path) -> Lab:
    """Read and validate a lab file; raises SpecError naming the file, key and problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{path}: no such lab file (create one with 'labgen init')") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot read the lab file: {exc}") from None
    stream = io.StringIO(text)
    stream.name = str(path)  # YAML errors then say in "<path>", not in "<unicode string>"
    try:
        data = yaml.load(stream, Loader=_UniqueKeyLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}") from None
    return parse(data, str(path))


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice instead of silently keeping the last."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def parse(data: Any, source: str = "lab.yml") -> Lab:
    top = _Section(data, "", source)
    fail = top.fail

    name = top.typed("name", str, "demo")
    if not LAB_NAME_RE.fullmatch(name):
        fail(f"{name!r} is not a valid lab name: 1-32 lowercase letters, digits and '-', "
             "starting with a letter (it names containers and networks)", "name")
    domain = domain_name(top.get("domain", "lab.example"), "domain", fail)
    profile = load_profile(top.choice("profile", tuple(PROFILES), "modern"))
    target = _target(top)
    net = top.section("network")
    ipv4 = _network(net.get("ipv4", "198.51.100.0/24"), net.key("ipv4"), 4, fail)
    ipv6 = _network(net.get("ipv6", "2001:db8:10::/64"), net.key("ipv6"), 6, fail)
    net.done()
    http3 = top.typed("http3", bool, True)
    servers = _servers(top, domain)
    hsts = _hsts(top)
    dnssec = _dnssec(top)
    dane = top.section("dane")
    dane_ca = dane.typed("ca", bool, False)
    dane.done()
    caa = _caa(top, domain)
    headers = _headers(top, profile)
    security_txt = _security_txt(top, domain)
    engine = top.choice("engine", ENGINES, "podman")
    top.done()

    hosts = [(n, role, off, None) for n, role, off in INFRA_HOSTS]
    hosts += [(n, "web", WEB_OFFSET + i, sw) for i, (n, sw) in enumerate(servers)]
    last = WEB_OFFSET + len(servers) - 1  # offset of the last web host
    for netw, key in ((ipv4, "network.ipv4"), (ipv6, "network.ipv6")):
        if last >= netw.num_addresses - 1:
            fail(f"{netw} is too small for {len(hosts)} hosts (labgen uses the addresses "
                 f"{netw.network_address + INFRA_HOSTS[0][2]} to {netw.network_address + last}); "
                 "use a larger subnet", key)
    built = tuple(Host(name=n, role=role, fqdn=f"{n}.{domain}", ipv4=ipv4[off], ipv6=ipv6[off],
                       software=sw) for n, role, off, sw in hosts)
    return Lab(name=name, domain=domain, profile=profile, target=target, ipv4_network=ipv4,
               ipv6_network=ipv6, hosts=built, http3=http3, hsts=hsts, dnssec=dnssec,
               dane_ca=dane_ca, caa=caa, headers=headers, security_txt=security_txt, engine=engine,
               source=source)


def _target(top: _Section) -> Target:
    value = top.get("target", DEFAULT_TARGET)
    if isinstance(value, str):
        if value not in TARGETS:
            top.fail(f"{value!r} is not a known target ({', '.join(TARGETS)}){_did_you_mean(value, TARGETS)}; "
                     "or give a mapping of nginx, apache and openssl versions", "target")
        return Target(name=value, **TARGETS[value])
    sec = _Section(value, "target", top.source)
    base = TARGETS[sec.choice("preset", tuple(TARGETS), DEFAULT_TARGET)]
    versions = {}
    for software in ("nginx", "apache", "openssl"):
        version = sec.get(software, base[software])
        if isinstance(version, (int, float)) and not isinstance(version, bool):
            # YAML reads 1.20 as the number 1.2: refuse rather than guess.
            sec.fail(f"{version!r} is a number; write the version in quotes, such as \"1.26\"",
                     sec.key(software))
        if not isinstance(version, str) or not VERSION_RE.fullmatch(version):
            sec.fail(f"{version!r} is not a version such as 1.26 or 2.4.66", sec.key(software))
        versions[software] = version
    sec.done()
    return Target(name="custom", **versions)


def _servers(top: _Section, domain: str) -> list[tuple[str, str]]:
    value = top.get("servers", [{"name": "nginx", "software": "nginx"},
                                {"name": "apache", "software": "apache"}])
    if not isinstance(value, list) or not value:
        got = "an empty list" if value == [] else _kind(value)
        top.fail(f"must be a non-empty list of web servers, got {got}", "servers")
    reserved = {n: f"the lab's own {n} host" for n, _, _ in INFRA_HOSTS}
    reserved[BOGUS] = "the lab's deliberately broken DNSSEC zone"
    seen: dict[str, int] = {}
    servers = []
    for i, item in enumerate(value):
        sec = _Section(item, f"servers[{i}]", top.source)
        software = sec.choice("software", SOFTWARE, "") if sec.data.get("software") is not None else None
        if software is None:
            sec.fail("missing key 'software' (nginx or apache)")
        name = dns_label(sec.get("name", software), sec.key("name"), sec.fail)
        if name in reserved:
            sec.fail(f"{name!r} is taken by {reserved[name]}; choose another name",
                     sec.key("name"))
        if name in seen:
            sec.fail(f"{name!r} is already the name of servers[{seen[name]}]; names must be unique",
                     sec.key("name"))
        if len(f"{name}.{domain}") > 253:
            sec.fail(f"{name}.{domain} is longer than 253 characters", sec.key("name"))
        seen[name] = i
        sec.done()
        servers.append((name, software))
    return servers


def _hsts(top: _Section) -> Hsts:
    sec = top.section("hsts")
    max_age = sec.typed("max_age", int, 63072000)
    if not 0 <= max_age <= 2**31 - 1:
        sec.fail(f"{max_age} is out of range (0 to {2**31 - 1} seconds)", sec.key("max_age"))
    include = sec.typed("include_subdomains", bool, True)
    preload = sec.typed("preload", bool, False)
    if preload and (not include or max_age < 31536000):
        sec.fail("preload needs include_subdomains: true and max_age of at least 31536000 "
                 "(hstspreload.org submission requirements)", sec.key("preload"))
    sec.done()
    return Hsts(max_age, include, preload)


def _dnssec(top: _Section) -> Dnssec:
    sec = top.section("dnssec")
    dnssec = Dnssec(sec.choice("algorithm", DNSSEC_ALGORITHMS, "ECDSAP256SHA256"),
                    sec.choice("denial", DENIAL, "nsec"))
    sec.done()
    return dnssec


def _caa(top: _Section, domain: str) -> Caa:
    sec = top.section("caa")
    issuer = domain_name(sec.get("issuer", f"ca.{domain}"), sec.key("issuer"), sec.fail)
    sec.used.add("iodef")  # null turns iodef reports off
    iodef = sec.data.get("iodef", f"mailto:security@{domain}")
    if iodef is not None:
        iodef = contact_uri(iodef, sec.key("iodef"), sec.fail)
    sec.done()
    return Caa(issuer, iodef)


def _headers(top: _Section, profile: Profile) -> tuple[tuple[str, str], ...]:
    sec = top.section("headers")
    merged = {k.lower(): (k, v) for k, v in profile.headers.items()}
    for name, value in sec.data.items():
        sec.used.add(name)
        where = sec.key(str(name))
        if not isinstance(name, str) or not HEADER_NAME_RE.fullmatch(name):
            sec.fail(f"{name!r} is not a header name: letters, digits and '-'", where)
        if name.lower() in MANAGED_HEADERS:
            sec.fail(f"{name} is set by labgen from the '{MANAGED_HEADERS[name.lower()]}' key", where)
        if value is None:  # null removes a default header
            merged.pop(name.lower(), None)
            continue
        if not isinstance(value, str) or not HEADER_VALUE_RE.fullmatch(value):
            sec.fail(f"{value!r} is not an allowed header value: printable ASCII without "
                     "quotes, backslash, $, %, #, braces or leading/trailing spaces", where)
        merged[name.lower()] = (name, value)
    return tuple(merged.values())


def _security_txt(top: _Section, domain: str) -> SecurityTxt:
    sec = top.section("security_txt")
    contact = sec.get("contact", [f"mailto:security@{domain}"])
    contacts = contact if isinstance(contact, list) else [contact]
    if not contacts:
        sec.fail("needs at least one contact (RFC 9116 section 2.5.3)", sec.key("contact"))
    contacts = [contact_uri(c, sec.key("contact"), sec.fail) for c in contacts]
    days = sec.typed("expires_days", int, 180)
    if not 1 <= days <= 364:
        sec.fail(f"{days} is out of range: Expires must lie less than a year ahead "
                 "(1 to 364 days; RFC 9116 section 2.5.5)", sec.key("expires_days"))
    langs = sec.get("preferred_languages", ["en"])
    langs = langs if isinstance(langs, list) else [langs]
    if not langs:
        sec.fail("needs at least one language tag, such as en (RFC 9116 section 2.5.8)",
                 sec.key("preferred_languages"))
    for lang in langs:
        if not isinstance(lang, str) or not LANG_RE.fullmatch(lang):
            sec.fail(f"{lang!r} is not a language tag such as en or nl (RFC 5646)",
                     sec.key("preferred_languages"))
    sec.done()
    return SecurityTxt(tuple(contacts), days, tuple(langs))


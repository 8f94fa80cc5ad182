"""Lab file -> frozen Lab model. Every validation of user input lives here.

Each value that later reaches nginx, Apache, BIND, Unbound or a zone file is checked against
a whitelist first, so a lab file cannot inject a directive or a record.
"""

from __future__ import annotations

import datetime as dt
import difflib
import io
import ipaddress
import os
import re
import stat
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import idna
import yaml

from .capabilities import DEFAULT_TARGET, TARGETS, Target
from .errors import SpecError
from .pace import DEFAULT_LIFETIME, DEFAULT_PACE, LIFETIMES, MAX_SECONDS, PACES, TIMINGS, Pace, with_timings
from .profiles import PROFILES, Profile, load_profile
from .text import printable

ENGINES = ("podman", "docker")
DNSSEC_ALGORITHMS = ("ECDSAP256SHA256", "ED25519")
DENIAL = ("nsec", "nsec3")
# Who signs the zone: labgen at render time (the zone arrives signed), or BIND on ns1 with
# dnssec-policy (inline signing, keys rolled by BIND); and BIND's key layout.
SIGNERS = ("labgen", "bind")
KEY_LAYOUTS = ("ksk-zsk", "csk")
# Infrastructure hosts: (name, role, address offset in the lab subnets). Web hosts follow.
# The child zone served with a broken signature (dnszone): its name is taken too.
BOGUS = "bogus"  # a child zone served with a broken signature: resolvers must refuse it
# The probe is labgen's own vantage point for the checks (labgen.vantage): no student gets it.
SOFTWARE = ("nginx", "apache")  # the web servers a lab file may name; each is a kind (labgen.kinds)
INFRA_HOSTS = (("ns1", "authdns", 10), ("resolver", "resolver", 11), ("client", "client", 12),
               ("probe", "probe", 13))
WEB_OFFSET = 20
# A lab whose zone BIND signs has a parent zone of its own (the lab's domain without its first
# label), served by this host, which publishes the lab's DS and follows its CDS. It sits where a
# class's lab root sits on a student's network (classroom/spec.py ROOT_ON_STUDENT_NET).
PARENT_HOST = ("parent", "parent", 5)
PARENT_NS = "ns"  # the parent zone's name server: ns.<parent zone>
# Who issues the web servers' certificates: labgen's own CA at render time, or the lab's ACME CA
# (labgen.acme), a host of its own, from which each web server gets and renews them.
ISSUERS = ("lab-ca", "acme")
ACME_HOST = ("acme", "acme", 14)
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
# Contact URIs (RFC 9116, RFC 8659): the host part is then checked as a domain name.
MAILTO_RE = re.compile(r"^mailto:(?!\.)(?!.*\.\.)[A-Za-z0-9._+-]{1,64}(?<!\.)@([a-z0-9.-]{1,253})$")
HTTPS_URL_RE = re.compile(r"^https://([a-z0-9.-]{1,253})(?::([0-9]{1,5}))?(/[A-Za-z0-9._~/-]{0,200})?$")
# A subnet is written with digits, hex, '.', ':' and one prefix length: no IPv6 zone ID
# (addr%zone), which ipaddress would accept and print back into the configs.
NETWORK_RE = re.compile(r"^[0-9A-Fa-f.:]{2,39}/[0-9]{1,3}$")
LANG_RE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{1,8}){0,3}$")
VERSION_RE = re.compile(r"^[0-9]{1,3}(\.[0-9]{1,3}){1,2}$")
# Headers labgen sets itself from other keys of the lab file.
MANAGED_HEADERS = {"strict-transport-security": "hsts", "alt-svc": "http3"}
# Limits of what is read: a lab file is a few kB; every value is one line of printable text.
MAX_FILE_BYTES = 256 * 1024
MAX_TEXT = 1024  # characters of one value (the longest is a header value)
MAX_DEPTH = 20  # nesting of YAML collections
MAX_ALIASES = 100  # uses of YAML aliases (*name): no billion-laughs expansion
EXCERPT = 80  # characters of a value or key an error message shows
# Every character that can reach a rendered file, whatever the field: the broadest whitelist
# (header values); each field's own check is narrower. Checked once more on the built Lab.
RENDERED_RE = re.compile(r"^[A-Za-z0-9 '()*+,./:;=?@!&~_\[\]|^-]*$")


@dataclass(frozen=True)
class Host:
    name: str
    role: str  # authdns | resolver | client | probe | web
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
    signer: str = "labgen"
    keys: str = "ksk-zsk"  # with signer bind: a KSK and a ZSK, or one CSK
    pace: Pace = PACES[DEFAULT_PACE]


@dataclass(frozen=True)
class Certificates:
    issuer: str = "lab-ca"
    lifetime: str = ""  # with acme: a lifetime profile (pace.LIFETIMES)

    @property
    def acme(self) -> bool:
        return self.issuer == "acme"


@dataclass(frozen=True)
class Caa:
    issuer: str
    iodef: str | None


@dataclass(frozen=True)
class SecurityTxt:
    contact: tuple[str, ...]
    expires_days: int
    preferred_languages: tuple[str, ...]


NO_SECONDARY = "no secondary keeps a copy of the zone (in a class, the lab root does)"


@dataclass(frozen=True)
class Parent:
    """The zone above the lab's, in a class: the lab root. Its name server has an address on
    this lab's network, and its DS replaces the lab's own DS as the trust anchor."""

    domain: str
    ns_ipv4: ipaddress.IPv4Address
    ns_ipv6: ipaddress.IPv6Address
    # The lab root's DS rdata (key tag, algorithm, digest type, digest); "" for a lab's own
    # parent host, whose key render makes and keeps.
    ds: str = ""
    # The container of a class's lab root, which keeps a copy of the lab's zone (a secondary);
    # "" for a lab's own parent host, which keeps none.
    container: str = ""


@dataclass(frozen=True)
class Endpoint:
    """Where a lab's containers run when not on this machine: a machine's Podman service,
    reached over SSH (Podman's remote mode, engine.py)."""

    url: str  # ssh://user@host:port/path/of/podman.sock
    key: str = ""  # the SSH private key for it ("": ssh's own)
    machine: str = ""  # the machine's name in the class file, for messages


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
    certificates: Certificates = Certificates()
    # The zone above: a class's lab root (set by classroom), or the lab's own parent host.
    parent: Parent | None = None
    # A class student's SSH public key (classroom/access.py): every host but the probe then
    # runs sshd; the key enters the workstation, and the workstation's own key every server.
    entry_key: str | None = None
    # The class's grading service as this lab's workstation reaches it (the `lab` command).
    grading: str | None = None
    # The workstation's root password as a SHA-512 crypt hash, when the class hands out passwords.
    entry_password_hash: str | None = None
    # A class's student lab on another machine (classroom/placement.py); None: this machine.
    endpoint: Endpoint | None = None
    source: str = field(default="lab.yml", compare=False)

    @property
    def anchor_domain(self) -> str:
        """The zone whose DS the lab's resolver and client trust: the lab's, or the lab root's."""
        return self.parent.domain if self.parent else self.domain

    @property
    def own_parent(self) -> bool:
        """The parent zone is this lab's own (its parent host), not a class's lab root."""
        return any(h.role == "parent" for h in self.hosts)

    @property
    def secondary(self) -> str:
        """The container of the lab root that keeps a copy of the zone (in a class); "": none."""
        return self.parent.container if self.parent else ""

    @property
    def web(self) -> tuple[Host, ...]:
        return tuple(h for h in self.hosts if h.role == "web")

    def role(self, role: str) -> Host:
        return next(h for h in self.hosts if h.role == role)

    def container(self, host: Host) -> str:
        return f"labgen-{self.name}-{host.name}"


# ---------------------------------------------------------------- showing what the user wrote


def _show(value: Any) -> str:
    """A value as an error message may echo it: repr-style (control, bidi and other invisible
    characters as escapes), cut to a short excerpt. Collections are named, never printed."""
    if not isinstance(value, str):
        return _kind(value)
    if len(value) <= EXCERPT:
        return repr(value)
    return f"{value[:EXCERPT]!r}... ({len(value)} characters)"


def _escape(text: str, limit: int = 3 * EXCERPT) -> str:
    """Free text (a YAML or IDNA problem) for one line: escaped like _show, unquoted, cut."""
    return printable(text, limit, keep_newlines=False)


def _show_key(name: Any) -> str:
    """A key as the user wrote it (a null, boolean, number or date key as YAML writes it),
    escaped and cut like a value when it is not a plain word."""
    if name is None:
        return "null"
    if isinstance(name, bool):
        return str(name).lower()
    if isinstance(name, (int, float)):
        return str(name)
    if isinstance(name, dt.date):
        return name.isoformat()
    return name if isinstance(name, str) and re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name) else _show(name)


def _kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, str):
        return f"the text {_show(value)}"
    if isinstance(value, (int, float)) and len(str(value)) <= EXCERPT:
        return f"the number {value}"
    return _sort(value)


def _sort(value: Any) -> str:
    """What kind of value, without the value itself."""
    kinds = {dict: "a mapping", list: "a list", str: "a text", int: "a number", float: "a number",
             bool: "a boolean"}
    return kinds.get(type(value), f"a YAML {type(value).__name__}")


def _did_you_mean(value: str, choices: Any) -> str:
    if len(value) > 64:  # no name is that long: nothing to suggest
        return ""
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _bad_character(value: str) -> str | None:
    """Why a text is not one line of printable text, or None when it is."""
    for ch in value:
        if ch.isprintable():
            continue
        code = f"U+{ord(ch):04X}"
        category = unicodedata.category(ch)
        if ch in "\n\r\x0b\x0c\x85\u2028\u2029":
            return f"a line break ({code})"
        if category == "Cc":
            return f"a control character ({code})"
        if category == "Cf":
            return f"an invisible formatting character ({code})"
        if category == "Zs":
            return f"a space other than the plain space ({code})"
        return f"a non-printing character ({code})"
    return None


def _gate(value: Any, where: str, fail: Callable[[str, str], None]) -> Any:
    """The check every text of the lab file passes first, whatever its field: a bounded length
    and printable characters only. Field checks (whitelists) follow."""
    if isinstance(value, list):  # a list of texts; nested lists are refused by the field checks
        return [item if isinstance(item, list) else _gate(item, where, fail) for item in value]
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            fail(f"{_show(value)} is too long: a value has at most {MAX_TEXT} characters", where)
        bad = _bad_character(value)
        if bad:
            fail(f"{_show(value)} contains {bad}; a value is one line of printable text", where)
    return value


# ---------------------------------------------------------------- reading with a path


class _Section:
    """One mapping of the lab file; remembers its path so every error names the key."""

    def __init__(self, data: Any, path: str, source: str):
        self.path, self.source = path, source
        if data is None:
            data = {}
        if not isinstance(data, dict):
            # The top level of a file that is no lab file at all: its content is not echoed.
            got = _kind(data) if path else _sort(data)
            self.fail(f"must be a mapping of keys to values, got {got}", path or "(top level)")
        self.data = data
        self.used: set[str] = set()
        if path:  # before any value is read: a field check may take a key for a text (headers)
            self._text_keys()

    def _text_keys(self) -> None:
        for name in self.data:
            if not isinstance(name, str):
                self.fail(f"a key must be a text, got {_kind(name)}", self.key(name))

    def fail(self, problem: str, where: str | None = None) -> None:
        raise SpecError(f"{self.source}: {where or self.path}: {problem}")

    def key(self, name: Any) -> str:
        return f"{self.path}.{_show_key(name)}" if self.path else _show_key(name)

    def get(self, name: str, default: Any) -> Any:
        self.used.add(name)
        value = self.data.get(name, default)
        value = default if value is None and default is not None else value
        return _gate(value, self.key(name), self.fail)

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
            self.fail(f"{_show(value)} is not one of {', '.join(choices)}{_did_you_mean(value, choices)}",
                      self.key(name))
        return value

    def section(self, name: str) -> "_Section":
        self.used.add(name)
        return _Section(self.data.get(name, {}), self.key(name), self.source)

    def done(self) -> None:
        if not self.path and self.data and not any(
                name in self.used or _did_you_mean(str(name), self.used) for name in self.data):
            # No lab file key, not even a misspelt one: not a lab file; none of its keys is echoed.
            self.fail(f"is not a lab file: none of its keys is a lab file key ({', '.join(sorted(self.used))})",
                      "(top level)")
        self._text_keys()
        for name in self.data:
            if name not in self.used:
                known = sorted(self.used)
                self.fail(f"unknown key{_did_you_mean(name, known)}; known keys: {', '.join(known)}",
                          self.key(name))


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
            unicode = idna.decode(text)
        except (idna.IDNAError, UnicodeError) as exc:
            fail(f"{_show(value)} is not a valid internationalized label "
                 f"(IDNA 2008: {_escape(str(exc))})", where)
        # UTS 46 mapping drops or replaces some characters: refuse rather than change a name.
        if not value.lower().startswith("xn--") and unicode != unicodedata.normalize("NFC", value.lower()):
            fail(f"{_show(value)} would become {unicode!r} in DNS (IDNA mapping); "
                 f"write {unicode!r} if that is meant", where)
    if len(text) > 63:
        fail(f"{_show(value)} is longer than 63 characters (RFC 1035)", where)
    if not LABEL_RE.fullmatch(text):
        fail(f"{_show(value)} is not a valid DNS label: use letters, digits and '-', "
             "not starting or ending with '-' (RFC 1123)", where)
    if text[2:4] == "--" and not text.startswith("xn--"):
        fail(f"{_show(value)}: '--' in the 3rd and 4th characters is reserved for IDNA (RFC 5891)", where)
    return text


def parent_of(domain: str) -> str:
    return domain.split(".", 1)[1]


def domain_name(value: Any, where: str, fail: Callable[[str, str], None]) -> str:
    if not isinstance(value, str):
        fail(f"must be a domain name (text), got {_kind(value)}", where)
    text = value[:-1] if value.endswith(".") else value
    if text and "" in text.split("."):
        fail(f"{_show(value)} has an empty label (a leading dot or two dots in a row)", where)
    labels = [dns_label(label, where, fail) for label in text.split(".")] if text else []
    if len(labels) < 2:
        fail(f"{_show(value)} needs at least two labels, such as lab.example", where)
    name = ".".join(labels)
    if len(name) > 253:
        fail(f"{_show(value)} is longer than 253 characters (RFC 1035)", where)
    return name


def contact_uri(value: Any, where: str, fail: Callable[[str, str], None]) -> str:
    """A mailto: or https: URI whose host is a valid domain name and port a valid port."""
    mailto = isinstance(value, str) and MAILTO_RE.fullmatch(value)
    https = isinstance(value, str) and HTTPS_URL_RE.fullmatch(value)
    match = mailto or https
    port = https.group(2) if https else None

    def refuse(problem: str = "", _where: str = "") -> None:
        fail(f"{_show(value)} is not a contact URI: use mailto:user@domain or https://host/path "
             "(RFC 9116)", where)

    if not match or (port is not None and not 1 <= int(port) <= 65535):
        refuse()
    if domain_name(match.group(1), where, refuse) != match.group(1):
        refuse()
    return value


def subnet(value: Any, where: str, version: int, fail: Callable[[str, str], None]):
    if not isinstance(value, str):
        fail(f"must be a subnet in CIDR notation (text), got {_kind(value)}", where)
    if not NETWORK_RE.fullmatch(value):
        fail(f"{_show(value)} is not a subnet in CIDR notation", where)
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError:
        try:
            loose = ipaddress.ip_network(value, strict=False)
        except ValueError:
            fail(f"{_show(value)} is not a subnet in CIDR notation", where)
        fail(f"{_show(value)} has host bits set (did you mean {str(loose)!r}?)", where)
    if net.version != version:
        fail(f"{_show(value)} is an IPv{net.version} subnet; this key takes IPv{version}", where)
    allowed = ALLOWED_V4 if version == 4 else ALLOWED_V6
    if not any(net.subnet_of(a) for a in allowed):
        fail(f"{net} is not inside private or documentation space "
             f"({', '.join(map(str, allowed))})", where)
    for reserved in ENGINE_DEFAULTS:
        if net.version == reserved.version and net.overlaps(reserved):
            fail(f"{net} overlaps {reserved}, a container engine's default network", where)
    return net


# ---------------------------------------------------------------- the lab file


def read_lab_text(path: Path) -> str:
    """The text of a lab file: a regular file of at most MAX_FILE_BYTES, UTF-8. Never echoes
    its content (the path may be a link to a file that is not a lab file)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise SpecError(f"{path}: no such lab file (create one with 'labgen init')") from None
    except OSError as exc:
        raise SpecError(f"{path}: cannot read the lab file: {exc.strerror}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = "a folder" if stat.S_ISDIR(mode) else "a special file (device, pipe or socket)"
        raise SpecError(f"{path}: is {kind}, not a lab file")
    with os.fdopen(fd, "rb") as handle:
        try:
            data = handle.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise SpecError(f"{path}: cannot read the lab file: {exc.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise SpecError(f"{path}: is larger than {MAX_FILE_BYTES // 1024} KiB; a lab file is a few kB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: is not UTF-8 text (byte {exc.start + 1})") from None


def load(path: str | Path) -> Lab:
    """Read and validate a lab file; raises SpecError naming the file, key and problem."""
    path = Path(path)
    stream = io.StringIO(read_lab_text(path))
    stream.name = str(path)
    try:
        data = yaml.load(stream, Loader=_SafeLabLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: {_yaml_problem(exc)}") from None
    return parse(data, str(path))


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """One line: where and what, with the problem escaped and cut like any echoed value."""
    if isinstance(exc, yaml.reader.ReaderError):  # a character YAML does not allow: not echoed
        return (f"character {exc.position + 1}: not valid YAML: U+{exc.character:04X} is not "
                "allowed in a YAML file" if isinstance(exc.character, int)
                else f"character {exc.position + 1}: not valid YAML: {_escape(exc.reason)}")
    if not isinstance(exc, yaml.MarkedYAMLError):
        return f"not valid YAML: {_escape(str(exc))}"
    mark = exc.problem_mark or exc.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    problem = ": ".join(p for p in (exc.context, exc.problem) if p)
    return f"{where}not valid YAML: {_escape(problem)}"


class _SafeLabLoader(yaml.SafeLoader):
    """SafeLoader with bounded nesting and alias use, that refuses a key given twice (instead
    of keeping the last) and a key that is a list or a mapping; supports merge keys (<<)."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = self._aliases = 0

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise yaml.composer.ComposerError(None, None, f"more than {MAX_ALIASES} aliases (*name)",
                                                  event.start_mark)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels",
                                                  event.start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # merged keys may be overridden: only keys written here must be unique
            if not isinstance(key_node, yaml.ScalarNode):
                raise yaml.constructor.ConstructorError(
                    None, None, "a key must be a text, not a list or a mapping", key_node.start_mark)
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {_show(str(key))} is given twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def resource_name(top: "_Section", default: str, pattern: re.Pattern, what: str, longest: int) -> str:
    """The name of a lab or a class: it names containers and networks."""
    name = top.typed("name", str, default)
    if not pattern.fullmatch(name):
        top.fail(f"{_show(name)} is not a valid {what} name: 1-{longest} lowercase letters, digits "
                 "and '-', starting with a letter (it names containers and networks)", "name")
    return name


def parse(data: Any, source: str = "lab.yml") -> Lab:
    top = _Section(data, "", source)
    fail = top.fail

    name = resource_name(top, "demo", LAB_NAME_RE, "lab", 32)
    domain = domain_name(top.get("domain", "lab.example"), "domain", fail)
    profile = load_profile(top.choice("profile", tuple(PROFILES), "modern"))
    target = _target(top)
    net = top.section("network")
    ipv4 = subnet(net.get("ipv4", "198.51.100.0/24"), net.key("ipv4"), 4, fail)
    ipv6 = subnet(net.get("ipv6", "2001:db8:10::/64"), net.key("ipv6"), 6, fail)
    net.done()
    http3 = top.typed("http3", bool, True)
    servers = _servers(top, domain)
    hsts = _hsts(top, profile)
    dnssec = _dnssec(top)
    dane = top.section("dane")
    dane_ca = dane.typed("ca", bool, False)
    dane.done()
    certificates = _certificates(top, dnssec, dane_ca)
    caa = _caa(top, domain)
    headers = _headers(top, profile)
    security_txt = _security_txt(top, domain)
    engine = top.choice("engine", ENGINES, "podman")
    top.done()

    hosts = [(n, role, off, None) for n, role, off in INFRA_HOSTS]
    if dnssec.signer == "bind":
        hosts.insert(0, (*PARENT_HOST, None))
    if certificates.acme:
        hosts.append((*ACME_HOST, None))
    hosts += [(n, "web", WEB_OFFSET + i, sw) for i, (n, sw) in enumerate(servers)]
    last = WEB_OFFSET + len(servers) - 1  # offset of the last web host
    for netw, key in ((ipv4, "network.ipv4"), (ipv6, "network.ipv6")):
        if last >= netw.num_addresses - 1:
            fail(f"{netw} is too small for {len(hosts)} hosts (labgen uses the addresses "
                 f"{netw.network_address + INFRA_HOSTS[0][2]} to {netw.network_address + last}); "
                 "use a larger subnet", key)
    built = tuple(Host(name=n, role=role, fqdn=f"{n}.{domain}", ipv4=ipv4[off], ipv6=ipv6[off],
                       software=sw) for n, role, off, sw in hosts)
    parent = None
    if dnssec.signer == "bind":
        offset = PARENT_HOST[2]
        parent = Parent(parent_of(domain), ipv4[offset], ipv6[offset])
    lab = Lab(name=name, domain=domain, profile=profile, target=target, ipv4_network=ipv4,
              ipv6_network=ipv6, hosts=built, http3=http3, hsts=hsts, dnssec=dnssec,
              dane_ca=dane_ca, caa=caa, headers=headers, security_txt=security_txt, engine=engine,
              certificates=certificates, parent=parent, source=source)
    _check_rendered(lab, fail)
    return lab


# Where each attribute of the Lab comes from in the lab file (for the last check's message).
_LAB_KEYS = {"ipv4_network": "network.ipv4", "ipv6_network": "network.ipv6", "hosts": "servers",
             "dane_ca": "dane.ca", "security_txt": "security_txt"}


def _check_rendered(lab: Lab, fail: Callable[[str, str], None]) -> None:
    """The last line of defence: every text of the Lab that templates can print, addresses and
    networks included, in their printed form, is inside one whitelist."""

    def walk(value: Any, key: str) -> None:
        if isinstance(value, (str, ipaddress.IPv4Address, ipaddress.IPv6Address,
                              ipaddress.IPv4Network, ipaddress.IPv6Network)):
            if not RENDERED_RE.fullmatch(str(value)):
                fail(f"{_show(str(value))} has characters labgen does not write into a config file",
                     key)
        elif isinstance(value, (tuple, list)):
            for item in value:
                walk(item, key)
        elif hasattr(value, "__dataclass_fields__") and not isinstance(value, (Profile, Target)):
            for name in value.__dataclass_fields__:
                walk(getattr(value, name), key)

    for name in lab.__dataclass_fields__:
        if name not in ("profile", "target", "source"):
            walk(getattr(lab, name), _LAB_KEYS.get(name, name))
    walk(tuple(getattr(lab.target, k) for k in ("nginx", "apache", "openssl")), "target")


def _target(top: _Section) -> Target:
    value = top.get("target", DEFAULT_TARGET)
    if isinstance(value, str):
        if value not in TARGETS:
            top.fail(f"{_show(value)} is not a known target ({', '.join(TARGETS)})"
                     f"{_did_you_mean(value, TARGETS)}; "
                     "or give a mapping of nginx, apache and openssl versions", "target")
        return Target(name=value, **TARGETS[value])
    sec = _Section(value, "target", top.source)
    base = TARGETS[sec.choice("preset", tuple(TARGETS), DEFAULT_TARGET)]
    versions = {}
    for software in ("nginx", "apache", "openssl"):
        version = sec.get(software, base[software])
        if isinstance(version, (int, float)) and not isinstance(version, bool):
            # YAML reads 1.20 as the number 1.2: refuse rather than guess.
            sec.fail(f"{_kind(version).removeprefix('the number ')} is a number; write the version "
                     "in quotes, such as \"1.26\"", sec.key(software))
        if not isinstance(version, str) or not VERSION_RE.fullmatch(version):
            sec.fail(f"{_show(version)} is not a version such as 1.26 or 2.4.66", sec.key(software))
        versions[software] = version
    sec.done()
    return Target(name="custom", **versions)


def _servers(top: _Section, domain: str) -> list[tuple[str, str]]:
    written = top.data.get("servers") is not None
    value = top.get("servers", [{"name": "nginx", "software": "nginx"},
                                {"name": "apache", "software": "apache"}])
    if not isinstance(value, list) or not value:
        got = "an empty list" if value == [] else _kind(value)
        top.fail(f"must be a non-empty list of web servers, got {got}", "servers")
    reserved = {n: f"the lab's own {n} host" for n, _, _ in INFRA_HOSTS + (ACME_HOST, PARENT_HOST)}
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
        seen[name] = i
        sec.done()
        servers.append((name, software))
    _check_name_lengths(top, domain, [n for n, _ in servers], written)
    return servers


def _check_name_lengths(top: _Section, domain: str, servers: list[str], written: bool) -> None:
    """Every name labgen puts in the zone must fit 253 characters: blame the server name the
    user wrote when it is the one too long, else the domain."""
    infra = max([n for n, _, _ in INFRA_HOSTS] + [BOGUS, "hostmaster"], key=len)
    room = 253 - len(domain) - 1  # characters left for what labgen puts before the domain
    for i, name in enumerate(servers):
        owner = f"_443._tcp.{name}"  # the TLSA record: the longest name of a web server
        if len(owner) > room and written and len(infra) <= room:
            top.fail(f"{name!r} is too long for the domain: the TLSA name {owner}.{domain} would be "
                     f"longer than 253 characters (RFC 1035)", f"servers[{i}].name")
    longest = max([infra] + [f"_443._tcp.{n}" for n in servers], key=len)
    if len(longest) > room:
        top.fail(f"{_show(domain)} is too long: labgen adds names such as {longest}.<domain>, so "
                 f"the domain may have at most {253 - len(longest) - 1} characters here", "domain")


def _hsts(top: _Section, profile: Profile) -> Hsts:
    sec = top.section("hsts")
    minimum = profile.hsts_min_age
    max_age = sec.typed("max_age", int, minimum)
    if not minimum <= max_age <= 2**31 - 1:
        sec.fail(f"{max_age} is out of range: the {profile.name} profile allows {minimum} "
                 f"(its hsts_min_age) to {2**31 - 1} seconds", sec.key("max_age"))
    include = sec.typed("include_subdomains", bool, True)
    preload = sec.typed("preload", bool, False)
    if preload and (not include or max_age < 31536000):
        sec.fail("preload needs include_subdomains: true and max_age of at least 31536000 "
                 "(hstspreload.org submission requirements)", sec.key("preload"))
    sec.done()
    return Hsts(max_age, include, preload)


def _dnssec(top: _Section) -> Dnssec:
    sec = top.section("dnssec")
    algorithm = sec.choice("algorithm", DNSSEC_ALGORITHMS, "ECDSAP256SHA256")
    denial = sec.choice("denial", DENIAL, "nsec")
    signer = sec.choice("signer", SIGNERS, "labgen")
    keys = sec.choice("keys", KEY_LAYOUTS, "ksk-zsk")
    pace = PACES[sec.choice("pace", tuple(PACES), DEFAULT_PACE)]
    timings = sec.section("timings")
    changes = {}
    for name in TIMINGS:
        value = timings.typed(name, int, getattr(pace, name))
        if not 1 <= value <= MAX_SECONDS:
            timings.fail(f"{value} is out of range: 1 to {MAX_SECONDS} seconds", timings.key(name))
        if value != getattr(pace, name):
            changes[name] = value
    timings.done()
    pace = with_timings(pace, changes)
    for name, problem in pace.problems():
        timings.fail(problem, timings.key(name))
    sec.done()
    return Dnssec(algorithm, denial, signer, keys, pace)


def _certificates(top: _Section, dnssec: Dnssec, dane_ca: bool) -> Certificates:
    """certificates: lab-ca | acme, or a mapping of issuer and (for acme) lifetime."""
    value = top.get("certificates", None)
    if isinstance(value, str) or value is None:
        sec = _Section({"issuer": value or "lab-ca"}, "certificates", top.source)
        sec.key = lambda name: "certificates"  # the short form: the key itself is the issuer
    else:
        sec = top.section("certificates")
    issuer = sec.choice("issuer", ISSUERS, "lab-ca")
    lifetime = ""
    if issuer == "acme":
        lifetime = sec.choice("lifetime", tuple(LIFETIMES), DEFAULT_LIFETIME)
        if dnssec.signer != "bind":
            sec.fail("acme needs dnssec.signer: bind (a renewal with a new key changes the TLSA "
                     "record by dynamic update, which only a zone BIND signs takes)", sec.key("issuer"))
        if dane_ca:
            top.fail("dane.ca needs certificates: lab-ca (the ACME CA makes a new root at each "
                     "start, so no TLSA 2 1 1 record can name it)", "dane.ca")
    elif sec.data.get("lifetime") is not None:
        sec.fail("a lifetime is for issuer: acme (the lab CA's lifetime is the profile's)", sec.key("lifetime"))
    sec.done()
    return Certificates(issuer, lifetime)


def _caa(top: _Section, domain: str) -> Caa:
    sec = top.section("caa")
    issuer = domain_name(sec.get("issuer", f"ca.{domain}"), sec.key("issuer"), sec.fail)
    iodef = sec.get("iodef", None) if "iodef" in sec.data else f"mailto:security@{domain}"
    if iodef is not None:  # null turns iodef reports off
        iodef = contact_uri(iodef, sec.key("iodef"), sec.fail)
    sec.done()
    return Caa(issuer, iodef)


def _headers(top: _Section, profile: Profile) -> tuple[tuple[str, str], ...]:
    sec = top.section("headers")
    merged = {k.lower(): (k, v) for k, v in profile.headers.items()}
    for name in list(sec.data):
        value = sec.get(name, None)
        where = sec.key(name)
        if not HEADER_NAME_RE.fullmatch(name):
            sec.fail(f"{_show(name)} is not a header name: letters, digits and '-'", where)
        if name.lower() in MANAGED_HEADERS:
            sec.fail(f"{name} is set by labgen from the '{MANAGED_HEADERS[name.lower()]}' key", where)
        if value is None:  # null removes a default header
            merged.pop(name.lower(), None)
            continue
        if not isinstance(value, str) or not HEADER_VALUE_RE.fullmatch(value):
            sec.fail(f"{_show(value)} is not an allowed header value: printable ASCII without "
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
            sec.fail(f"{_show(lang)} is not a language tag such as en or nl (RFC 5646)",
                     sec.key("preferred_languages"))
    sec.done()
    return SecurityTxt(tuple(contacts), days, tuple(langs))

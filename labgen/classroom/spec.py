"""The class file: a class of student labs under one lab root -> a frozen Class model.

Each student's lab is an ordinary Lab, made by spec.parse from the class's `lab:` section with
the name, zone and subnets the class gives it: validated and later rendered, deployed and
verified by the single-lab code path.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import SpecError
from ..spec import (PARENT_HOST, Endpoint, Lab, _SafeLabLoader, _Section, _show, domain_name, parse, read_lab_text,
                    resource_name, subnet)

# An address as written: digits, hex, '.' and ':' only (no zone ID), then checked by ipaddress.
NETWORK_ADDRESS_RE = re.compile(r"^[0-9A-Fa-f.:]{2,39}$")
CLASS_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,14}[a-z0-9]$|^[a-z]$")  # 16: lab names are 32
STUDENT_RE = re.compile(r"^[a-z][a-z0-9-]{0,13}[a-z0-9]$|^[a-z]$")  # 15: <class>-<student>
MAX_STUDENTS = 300  # a regional workshop; the address plan must hold them too (_plan)
# Labels of the root zone that are the root's own: a student may not take them.
RESERVED = {"ns": "the lab root's name server", "root": "the lab root itself",
            "www": "kept for the root's own use", "bogus": "the name labgen keeps broken on purpose"}
# The per-student lab keys the class sets itself.
CLASS_KEYS = {"name": "<class>-<student>", "domain": "<student>.<root>", "network": "the address plan"}
DS_MODES = ("root", "student")
STUDENT_V4_PREFIX, STUDENT_V6_PREFIX = 24, 64
DEFAULT_SSH_PORT = 2200
DEFAULT_BOARD_PORT = 2280
# The class's own hosts on every student's network (labgen's own hosts start at .10): the lab
# root's name server (each student's resolver asks it for the class's zones, each student's
# ns1 notifies it), and the access container (SSH entry, the student end of the grading service).
ROOT_ON_STUDENT_NET = PARENT_HOST[2]  # where a lab of its own has its parent host
ACCESS_ON_STUDENT_NET = 6


@dataclass(frozen=True)
class Student:
    name: str  # a DNS label: the student's zone is <name>.<root>
    lab: Lab


@dataclass(frozen=True)
class Access:
    """How students enter their labs from the classroom network (classroom/access.py)."""

    ssh_port: int = DEFAULT_SSH_PORT  # student n (from 1) gets ssh_port + n
    listen: str = "0.0.0.0"  # the trainer machine's address the ports are published on
    host: str = ""  # the name students type to reach the trainer machine ("" : its hostname)
    board_port: int = DEFAULT_BOARD_PORT  # the trainer's scoreboard page (classroom/service.py)
    password: bool = False  # also a password per student for their workstation (besides the key)


DEFAULT_SOCKET = "/run/podman/podman.sock"
SOCKET_RE = re.compile(r"^/[A-Za-z0-9._/-]{1,200}$")


@dataclass(frozen=True)
class Machine:
    """A machine that runs students' labs, reached over SSH by Podman and Ansible
    (classroom/machines.py). The class's own machine, when the class file lists none."""

    name: str  # a label: names the machine's copy of the lab root
    ssh: str = ""  # user@host: how labgen reaches its Podman; "" for the machine labgen runs on
    port: int = 22
    key: str = ""  # the SSH private key labgen uses (empty: ssh's own configuration)
    address: str = ""  # its address on the backbone: where the other copies of the root reach its copy
    capacity: int = MAX_STUDENTS  # the most students it takes; they are spread in proportion
    socket: str = DEFAULT_SOCKET  # its Podman service's socket (systemd's podman.socket)

    @property
    def endpoint(self) -> Endpoint | None:
        """How labgen's engine reaches it: Podman's remote mode over SSH (None: this machine)."""
        if not self.ssh:
            return None
        return Endpoint(f"ssh://{self.ssh}:{self.port}{self.socket}", self.key, self.name)


LOCAL = Machine("local")
DEFAULT_BACKBONE_PORT = 53


@dataclass(frozen=True)
class Class:
    name: str
    root: str  # the lab root zone
    ds: str  # root: the root holds each student's DS; student: the trainer takes it in later
    ipv4_network: ipaddress.IPv4Network  # the whole plan
    ipv6_network: ipaddress.IPv6Network
    root_ipv4: ipaddress.IPv4Network  # the root's own subnets: the first of the plan
    root_ipv6: ipaddress.IPv6Network
    students: tuple[Student, ...]
    source: str
    exercises: tuple[str, ...] = ()  # assigned to every student (the handouts list them)
    access: Access = field(default_factory=lambda: Access())
    machines: tuple[Machine, ...] = (LOCAL,)
    backbone_port: int = DEFAULT_BACKBONE_PORT  # each root copy's DNS port on its backbone address

    def port(self, student: Student) -> int:
        """The trainer machine's port that lands on this student's workstation (SSH)."""
        return self.access.ssh_port + self.students.index(student) + 1

    def student(self, name: str) -> Student:
        found = next((s for s in self.students if s.name == name), None)
        if found is None:
            raise SpecError(f"{self.source}: no student {_show(name)} in class {self.name} "
                            f"(students: {', '.join(s.name for s in self.students[:6])}"
                            f"{', ...' if len(self.students) > 6 else ''})")
        return found


def load_class(path: str | Path) -> Class:
    path = Path(path)
    try:
        data = yaml.load(read_lab_text(path), Loader=_SafeLabLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {str(exc).splitlines()[0][:200]}") from None
    return parse_class(data, str(path))


def _students(top: _Section) -> list[str]:
    value = top.get("students", 3)
    if isinstance(value, int) and not isinstance(value, bool):
        if not 1 <= value <= MAX_STUDENTS:
            top.fail(f"{value} is not a number of students from 1 to {MAX_STUDENTS}", "students")
        return [f"s{i:02d}" for i in range(1, value + 1)]
    if not isinstance(value, list) or not value:
        top.fail("must be a number of students or a list of their names (DNS labels)", "students")
    if len(value) > MAX_STUDENTS:
        top.fail(f"{len(value)} students; a class has at most {MAX_STUDENTS}", "students")
    seen: set[str] = set()
    for i, name in enumerate(value):
        where = f"students[{i}]"
        if not isinstance(name, str) or not STUDENT_RE.fullmatch(name):
            top.fail(f"{_show(name)} is not a student name: 1-15 lowercase letters, digits and '-', "
                     "starting with a letter (it becomes a DNS label and names containers)", where)
        if name in RESERVED:
            top.fail(f"{_show(name)} is reserved: {RESERVED[name]}", where)
        if name in seen:
            top.fail(f"{_show(name)} is given twice", where)
        seen.add(name)
    return list(value)


def _plan(net, count: int, prefix: int, where: str, fail) -> list:
    """The root's subnet and one per student, in order, carved from the plan."""
    if net.prefixlen > prefix:
        fail(f"{net} is smaller than one /{prefix}; each student gets a /{prefix}", where)
    have = 2 ** (prefix - net.prefixlen)
    if have < count + 1:
        need = prefix - (count).bit_length()
        fail(f"{net} holds {have} /{prefix} subnets, too few for {count} students and the lab root; "
             f"use a /{need} or larger", where)
    subnets = net.subnets(new_prefix=prefix)
    return [next(subnets) for _ in range(count + 1)]


def parse_class(data: Any, source: str = "class.yml") -> Class:
    top = _Section(data, "", source)
    fail = top.fail
    name = resource_name(top, "class", CLASS_NAME_RE, "class", 16)
    root = domain_name(top.get("root", "class.example"), "root", fail)
    students = _students(top)
    ds = top.choice("ds", DS_MODES, "root")
    net = top.section("network")
    ipv4 = subnet(net.get("ipv4", "10.100.0.0/16"), net.key("ipv4"), 4, fail)
    ipv6 = subnet(net.get("ipv6", "2001:db8:100::/48"), net.key("ipv6"), 6, fail)
    net.done()
    v4 = _plan(ipv4, len(students), STUDENT_V4_PREFIX, "network.ipv4", fail)
    v6 = _plan(ipv6, len(students), STUDENT_V6_PREFIX, "network.ipv6", fail)
    settings = top.get("lab", {})
    if settings is None:
        settings = {}
    if not isinstance(settings, dict):
        fail("must be a mapping: the keys of a lab file, for every student's lab", "lab")
    for key in CLASS_KEYS:
        if key in settings:
            fail(f"is set by the class ({CLASS_KEYS[key]}); remove it", f"lab.{key}")
    exercises = _exercises(top)
    access = _access(top, len(students))
    machines, backbone_port = _machines(top, len(students), source)
    top.done()
    built = []
    for i, student in enumerate(students, 1):
        lab_data = {**settings, "name": f"{name}-{student}", "domain": f"{student}.{root}",
                    "network": {"ipv4": str(v4[i]), "ipv6": str(v6[i])}}
        try:
            built.append(Student(student, parse(lab_data, source)))
        except SpecError as exc:  # the lab keys live under lab: in a class file
            raise SpecError(str(exc).replace(f"{source}: ", f"{source}: lab.", 1)) from None
    return Class(name=name, root=root, ds=ds, ipv4_network=ipv4, ipv6_network=ipv6,
                 root_ipv4=v4[0], root_ipv6=v6[0], students=tuple(built), source=source,
                 exercises=exercises, access=access, machines=machines, backbone_port=backbone_port)


def _access(top: _Section, count: int) -> Access:
    sec = top.section("access")
    port = sec.typed("ssh_port", int, DEFAULT_SSH_PORT)
    if not 1024 <= port <= 65535 - count:
        sec.fail(f"{port} is out of range: the ports {port}+1 to {port}+{count} must lie between "
                 f"1025 and 65535", sec.key("ssh_port"))
    listen = sec.get("listen", "0.0.0.0")
    try:
        if not isinstance(listen, str) or not NETWORK_ADDRESS_RE.fullmatch(listen):
            raise ValueError
        ipaddress.ip_address(listen)
    except ValueError:
        sec.fail(f"{_show(listen)} is not an IP address of this machine (0.0.0.0 for every one, "
                 "127.0.0.1 for this machine alone)", sec.key("listen"))
    # 2280, unless a large class's SSH ports reach it: then the first port after theirs.
    board = sec.typed("board_port", int, DEFAULT_BOARD_PORT if not port < DEFAULT_BOARD_PORT <= port + count
                      else port + count + 1)
    if not 1024 < board <= 65535 or port < board <= port + count:
        sec.fail(f"{board} is out of range: the board's port must lie between 1025 and 65535 and "
                 f"outside the students' SSH ports {port}+1 to {port}+{count}", sec.key("board_port"))
    host = sec.get("host", "")
    if host:
        host = domain_name(host, sec.key("host"), sec.fail) if not NETWORK_ADDRESS_RE.fullmatch(str(host)) \
            else str(ipaddress.ip_address(host))
    password = sec.typed("password", bool, False)
    sec.done()
    return Access(port, listen, host, board, password)


SSH_USER_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")


def _machines(top: _Section, count: int, source: str) -> tuple[tuple[Machine, ...], int]:
    """machines: the machines the students are spread over (none: this machine), each reached
    over SSH; backbone: the network their copies of the lab root talk over."""
    value = top.get("machines", [])
    backbone = top.section("backbone")
    port = backbone.typed("port", int, DEFAULT_BACKBONE_PORT)
    if not 1 <= port <= 65535:
        backbone.fail(f"{port} is not a port (1-65535)", backbone.key("port"))
    network = backbone.get("network", None)
    if network is not None:
        network = ipaddress.ip_network(subnet(network, backbone.key("network"),
                                              4 if ":" not in str(network) else 6, top.fail))
    backbone.done()
    if not value:
        if network is not None:
            top.fail("names a backbone, but the class lists no machines", "backbone.network")
        return (LOCAL,), port
    if not isinstance(value, list):
        top.fail("must be a list of machines (name, ssh, address, capacity)", "machines")
    found: list[Machine] = []
    for i, entry in enumerate(value):
        sec = _Section(entry, f"machines[{i}]", source)
        name = sec.typed("name", str, "")
        if not STUDENT_RE.fullmatch(name):
            sec.fail(f"{_show(name)} is not a machine name: 1-15 lowercase letters, digits and '-', "
                     "starting with a letter", sec.key("name"))
        if name in {m.name for m in found}:
            sec.fail(f"{_show(name)} is given twice", sec.key("name"))
        target = sec.typed("ssh", str, "")
        user, at, host = target.rpartition("@")
        if not at or not SSH_USER_RE.fullmatch(user) or not host:
            sec.fail(f"{_show(target)} is not user@host (the SSH login labgen uses to reach its Podman)",
                     sec.key("ssh"))
        if NETWORK_ADDRESS_RE.fullmatch(host):
            try:
                host = str(ipaddress.ip_address(host))
            except ValueError:
                sec.fail(f"{_show(host)} is not an IP address", sec.key("ssh"))
        else:
            host = domain_name(host, sec.key("ssh"), sec.fail)
        ssh_port = sec.typed("port", int, 22)
        if not 1 <= ssh_port <= 65535:
            sec.fail(f"{ssh_port} is not a port (1-65535)", sec.key("port"))
        key = sec.typed("key", str, "")
        if key:
            key = str((Path(source).parent / key).resolve()) if not Path(key).is_absolute() else key
            if not Path(key).is_file():
                sec.fail(f"{_show(key)} is not a file (the SSH private key for this machine)", sec.key("key"))
        address = sec.get("address", host if NETWORK_ADDRESS_RE.fullmatch(host) else None)
        try:
            if not isinstance(address, str) or not NETWORK_ADDRESS_RE.fullmatch(address):
                raise ValueError
            address = ipaddress.ip_address(address)
        except ValueError:
            sec.fail(f"{_show(address)} is not an IP address: give the machine's address on the "
                     "backbone, where the other machines reach its copy of the lab root", sec.key("address"))
        if network is not None and address not in network:
            sec.fail(f"{address} is not in the backbone network {network}", sec.key("address"))
        if str(address) in {m.address for m in found}:
            sec.fail(f"{address} is the address of another machine", sec.key("address"))
        capacity = sec.typed("capacity", int, MAX_STUDENTS)
        if not 1 <= capacity <= MAX_STUDENTS:
            sec.fail(f"{capacity} is not a number of students from 1 to {MAX_STUDENTS}", sec.key("capacity"))
        sock = sec.typed("socket", str, DEFAULT_SOCKET)
        if not SOCKET_RE.fullmatch(sock) or "/../" in f"{sock}/":
            sec.fail(f"{_show(sock)} is not the path of a Unix socket (Podman's service on the machine)",
                     sec.key("socket"))
        sec.done()
        found.append(Machine(name, f"{user}@{host}", ssh_port, key, str(address), capacity, sock))
    if sum(m.capacity for m in found) < count:
        top.fail(f"the machines hold {sum(m.capacity for m in found)} students in all (capacity), "
                 f"fewer than the class's {count}", "machines")
    return tuple(found), port


def _exercises(top: _Section) -> tuple[str, ...]:
    from ..exercises import catalogue
    from ..spec import _did_you_mean

    value = top.get("exercises", [])
    if not isinstance(value, list):
        top.fail("must be a list of exercise ids (labgen exercise list)", "exercises")
    for i, exercise_id in enumerate(value):
        if exercise_id not in catalogue():
            top.fail(f"{_show(exercise_id)} is not an exercise{_did_you_mean(str(exercise_id), list(catalogue()))}"
                     "; labgen exercise list shows them", f"exercises[{i}]")
    return tuple(value)

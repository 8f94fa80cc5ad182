"""Students enter their own lab from the classroom network, and nothing else.

Each student gets one SSH port (the class file's access.ssh_port plus the student's number) on
the machine that runs their lab, published by the class's access container there (one per
machine), which forwards it to that student's workstation (port 22) and to nothing else. labgen makes one key pair per student,
kept in the class build (0600) and reused on every `class up`; the handout carries the private
key and the workstation's host key. From the workstation the student reaches their own servers
by name with the workstation's key (render.ssh_files); the probe is never reachable by SSH.

The access container sits on a network of its own with published ports, and on the network of
every student of its machine; it listens only on its own network's address, so from a student's
network nothing answers there, and it routes nothing. The grading service runs on the trainer's
machine; another machine's access container reaches its Unix socket through SSH, which the
service keeps forwarding there (ssh -R, classroom/service.py).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519

from .. import pki
from ..engine import LABEL, LIMITS, ROUTES_NOTHING, Engine, EngineError, network_name
from ..render import SSH_HOST_KEY, ssh_hosts
from . import placement
from .spec import ACCESS_ON_STUDENT_NET as ON_STUDENT_NET, Class, Machine, Student

USER = "root"
FORWARDER = Path(__file__).with_name("forwarder.py")


def access_name(klass: Class) -> str:
    """The label (and container and network name stem) of the class's access layer."""
    return f"{klass.name}-access"


def container(klass: Class) -> str:
    return f"labgen-{access_name(klass)}"


def key_file(folder: Path, student: Student) -> Path:
    return folder / "access" / student.name / "id_ed25519"


def student_key(folder: Path, student: Student) -> str:
    """The student's public key line; the pair is made once and kept (private key 0600)."""
    path = key_file(folder, student)
    pub = path.with_suffix(".pub")
    if not (path.is_file() and pub.is_file()):
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        private, public = pki.openssh_pair(ed25519.Ed25519PrivateKey.generate(),
                                           f"{student.name}@{student.lab.domain}")
        pki.write_private(path, private)
        pub.write_text(public + "\n", encoding="utf-8")
    return pub.read_text(encoding="utf-8").strip()


def password_file(folder: Path, student: Student) -> Path:
    return folder / "access" / student.name / "password"


def student_password_hash(folder: Path, student: Student) -> str:
    """access.password: the student's workstation password, made once and kept (0600), and the
    SHA-512 crypt hash sshd checks, kept beside it (made once: a re-up changes nothing)."""
    path = password_file(folder, student)
    hashed = path.with_suffix(".sha512")
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        pki.write_private(path, (secrets.token_urlsafe(12) + "\n").encode())
        hashed.unlink(missing_ok=True)
    if not hashed.is_file():
        password = path.read_text(encoding="utf-8").strip()
        salt = hashlib.sha256(password.encode()).hexdigest()[:16]
        pki.write_private(hashed, subprocess.run(
            ["openssl", "passwd", "-6", "-salt", salt, "-stdin"], input=password, capture_output=True,
            text=True, check=True).stdout.encode())
    return hashed.read_text(encoding="utf-8").strip()


def host(klass: Class, machine: Machine | None = None) -> str:
    """What a student types to reach the machine that runs their lab (the trainer's when it runs
    here): another machine's name or address as labgen reaches it."""
    if machine is not None and machine.ssh:
        return machine.ssh.rpartition("@")[2]
    if klass.access.host:
        return klass.access.host
    return klass.access.listen if klass.access.listen not in ("0.0.0.0", "::") else socket.gethostname()


@dataclass(frozen=True)
class Entry:
    student: str
    host: str
    port: int
    user: str
    key_file: str
    known_hosts: str  # the line that names the workstation's host key at host:port

    @property
    def command(self) -> str:
        return (f"ssh -i {self.student}_ed25519 -o UserKnownHostsFile={self.student}_known_hosts "
                f"-p {self.port} {self.user}@{self.host}")


def entry(klass: Class, student: Student, folder: Path, builds: Path) -> Entry:
    """How this student enters (after class up: the workstation's host key is rendered)."""
    lab = student.lab
    port, where = klass.port(student), host(klass, placement.where(klass, folder, student.name))
    pub = builds / lab.name / "hosts" / lab.role("client").name / f"{SSH_HOST_KEY.lstrip('/')}.pub"
    known = f"[{where}]:{port} {' '.join(pub.read_text().split()[:2])}" if pub.is_file() else ""
    return Entry(student.name, where, port, USER, str(key_file(folder, student)), known)


def service_dir(folder: Path) -> Path:
    """The grading service's folder on the trainer's machine: its token, results and log."""
    return folder / "service"


def socket_dir(folder: Path) -> Path:
    """The folder of the grading service's Unix socket alone: the one thing of the service's that
    is mounted into the access container (the token, the results and the log stay out)."""
    return service_dir(folder) / "socket"


def make_socket_dir(folder: Path) -> Path:
    """service_dir and socket_dir, each 0700 (mkdir's parents would take the umask's mode)."""
    for made in (service_dir(folder), socket_dir(folder)):
        made.mkdir(parents=True, exist_ok=True, mode=0o700)
    return socket_dir(folder)


SOCKET = "grading.sock"  # the grading service's socket in socket_dir
MOUNTED = "/run/labgen"  # socket_dir inside the access container


def attachments(students, offset: int) -> list[tuple[str, str, str]]:
    """(network, IPv4, IPv6) of a class host that sits at this offset on each of these students'
    networks."""
    return [(network_name(s.lab), str(s.lab.ipv4_network[offset]), str(s.lab.ipv6_network[offset]))
            for s in students]


def forwarded(klass: Class, students) -> dict:
    """What an access container forwards (forwarder.py reads it): its students' SSH ports, the
    board, and the student end of the grading service on each of its students' networks."""
    labs = [s.lab for s in students]
    return {"ssh": {str(klass.port(s)): str(s.lab.role("client").ipv4) for s in students},
            "board_port": klass.access.board_port, "socket": f"{MOUNTED}/{SOCKET}",
            "student_nets": [str(n) for lab in labs for n in (lab.ipv4_network, lab.ipv6_network)],
            "students": [{"name": s.name, "listen": [v4, v6],
                          "hosts": [str(a) for h in ssh_hosts(s.lab) for a in (h.ipv4, h.ipv6)]}
                         for s, (_, v4, v6) in zip(students, attachments(students, ON_STUDENT_NET))]}


def listen(klass: Class, engine: Engine) -> str:
    """The address the access container's ports are published on: the class file's on the
    trainer's machine, every address on another machine."""
    return klass.access.listen if engine.endpoint is None else "0.0.0.0"


THERE = '"$HOME/.cache/labgen/$0"'  # on another machine, $0 the class and machine's names


def sockets(klass: Class, folder: Path, engine: Engine) -> str:
    """The folder, on the engine's machine, that holds the grading service's socket for its access
    container: the class build's service folder here; on another machine a folder of the login's
    own (0700), where the service's SSH tunnel puts the socket."""
    if engine.endpoint is None:
        return str(make_socket_dir(folder).resolve())
    made = engine.on_machine("sh", "-c", f'd={THERE} && mkdir -p -m 700 "$d" && cd "$d" && pwd -P',
                             f"{klass.name}-{engine.endpoint.machine}")
    there = made.stdout.strip()
    if made.returncode != 0 or not there.startswith("/"):
        raise EngineError(f"cannot make the grading service's folder{engine.where}: "
                          f"{(made.stderr.strip() or there)[-300:]}")
    return there


def remove_sockets(klass: Class, engine: Engine) -> None:
    """class down: another machine's socket folder goes with the class."""
    engine.on_machine("sh", "-c", f"rm -rf {THERE}", f"{klass.name}-{engine.endpoint.machine}")


def ensure(klass: Class, folder: Path, engine: Engine, tag: str, students) -> str:
    """A machine's access container, for its students: created, or replaced when what it
    forwards changed."""
    net = f"labgen-{access_name(klass)}"
    if engine.run("network", "exists", net, check=False).returncode != 0:
        engine.run("network", "create", "--label", f"{LABEL}={access_name(klass)}", net)
    mine = attachments(students, ON_STUDENT_NET)
    where = sockets(klass, folder, engine)
    config, source = forwarded(klass, students), FORWARDER.read_text(encoding="utf-8")
    key = hashlib.sha256(repr((tag, net, mine, config, where, klass.access, source, LIMITS))
                         .encode()).hexdigest()[:16]
    ports = [*config["ssh"], config["board_port"]]
    published = [a for port in ports for a in ("-p", f"{listen(klass, engine)}:{port}:{port}")]
    attach = [a for n, v4, v6 in mine for a in ("--network", f"{n}:ip={v4},ip6={v6}")]
    return engine.converge(container(klass), key, lambda: engine.run(
        "run", "-d", "--name", container(klass), "--hostname", f"access.{klass.root}", "--network", net,
        *attach, *published, *ROUTES_NOTHING, *LIMITS, "-v", f"{where}:{MOUNTED}",
        "--label", f"{LABEL}={access_name(klass)}", "--label", f"io.labgen.key={key}",
        "--entrypoint", "/usr/bin/python3", tag, "-c", source, json.dumps(config)))

"""The pytest plugin behind labgen's checks: options, the lab model, testinfra hosts and the
parametrization over web servers and address families."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
import subprocess

import pytest
import testinfra

from ..engine import containers_conf
from ..spec import Lab, load
from . import NOT_APPLICABLE
from .prerequisites import NotRun, Prerequisites

FAMILIES = ("ipv4", "ipv6")


def pytest_addoption(parser):
    group = parser.getgroup("labgen")
    group.addoption("--lab-file", default="lab.yml", help="the lab file of the running lab")
    group.addoption("--student", default=None,
                    help="judge this student's lab; --lab-file is then the class file")


LAB_KEY = pytest.StashKey[Lab]()


def _lab(config) -> Lab:
    """The lab file, read once per session (parametrization asks for it per test function)."""
    if LAB_KEY not in config.stash:
        path, student = config.getoption("--lab-file"), config.getoption("--student")
        if student:
            from ..classroom.rootzone import class_student_lab
            from ..classroom.spec import load_class

            klass = load_class(path)
            lab = class_student_lab(klass, klass.student(student),
                                    Path(path).parent / "build" / klass.name)
        else:
            lab = load(path)
        config.stash[LAB_KEY] = lab
    return config.stash[LAB_KEY]


@pytest.fixture(scope="session")
def lab(pytestconfig) -> Lab:
    return _lab(pytestconfig)


class Shell:
    """One long-lived `<engine> exec -i <container> sh` behind a testinfra host.

    testinfra's container backends start one `exec` per command (about 0.2 s here, most of a
    verify run); through this shell a check's command costs what the command itself costs.
    Each command runs in a subshell with its own stdin, output and exit status, as before.
    """

    def __init__(self, engine: str, container: str):
        self.container = container
        self.proc = subprocess.Popen([engine, "exec", "-i", container, "sh"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.files = f"/tmp/.labgen-verify-{secrets.token_hex(4)}"

    def run(self, command: str) -> tuple[int, bytes, bytes]:
        marker = secrets.token_hex(8)
        out, err = f"{self.files}.out", f"{self.files}.err"
        script = (f"( {command}\n) </dev/null >{out} 2>{err}; echo \"{marker} $? $(wc -c <{out}) "
                  f"$(wc -c <{err})\"; cat {out} {err}; rm -f {out} {err}\n")
        try:
            self.proc.stdin.write(script.encode())
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
            while line and not line.startswith(marker.encode()):
                line = self.proc.stdout.readline()
        except BrokenPipeError:
            line = b""
        if not line:
            raise RuntimeError(f"lost the shell in {self.container}: is the lab up? (labgen status)")
        _, rc, n_out, n_err = line.split()
        return int(rc), self.proc.stdout.read(int(n_out)), self.proc.stdout.read(int(n_err))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=10)


def _host(lab: Lab, name: str, shells: list[Shell]):
    os.environ.setdefault("CONTAINERS_CONF", str(containers_conf()))
    engine = "docker" if lab.engine == "docker" else "podman"
    container = f"labgen-{lab.name}-{name}"
    host = testinfra.get_host(f"{engine}://{container}")
    shell = Shell(engine, container)
    shells.append(shell)
    backend = host.backend

    def run(command: str, *args: str, **kwargs):
        cmd = backend.get_command(command, *args)
        rc, out, err = shell.run(cmd)
        return backend.result(rc, backend.encode(cmd), out, err)

    backend.run = run
    return host


@pytest.fixture(scope="session")
def hosts(lab):
    """testinfra hosts for every lab host, by name."""
    shells: list[Shell] = []
    yield {h.name: _host(lab, h.name, shells) for h in lab.hosts}
    for shell in shells:
        shell.close()


@pytest.fixture(scope="session")
def client(hosts):
    """The student's workstation: network checks run from here, through the lab resolver."""
    return hosts["client"]


def pytest_generate_tests(metafunc):
    lab = _lab(metafunc.config)
    if "server" in metafunc.fixturenames:
        servers = lab.web
        if "family" in metafunc.fixturenames:
            metafunc.parametrize(("server", "family"), [(s, f) for s in servers for f in FAMILIES],
                                 ids=[f"{s.name}-{f}" for s in servers for f in FAMILIES])
        else:
            metafunc.parametrize("server", servers, ids=[s.name for s in servers])


@pytest.fixture(scope="session")
def prerequisites(lab, client) -> Prerequisites:
    return Prerequisites(lab, client)


@pytest.fixture(autouse=True)
def _preconditions(request, lab):
    """Before a check runs: it applies to this server (else N/A), and its prerequisites
    (@check(needs=...)) are there (else it is not run, with their cause)."""
    meta = getattr(request.function, "labgen_check", None)
    if meta is None:
        return
    callspec = getattr(request.node, "callspec", None)
    params = callspec.params if callspec else {}
    if reason := meta.not_applicable(lab, params.get("server")):
        pytest.skip(f"{NOT_APPLICABLE}: {reason}")
    if meta.needs and (cause := request.getfixturevalue("prerequisites").missing(
            meta.needs, params.get("server"), params.get("family", "ipv4"))):
        raise NotRun(cause)

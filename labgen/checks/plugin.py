"""The pytest plugin behind labgen's checks: options, the lab model, testinfra hosts and the
parametrization over web servers and address families."""

from __future__ import annotations

import os
import secrets
import select
import subprocess
import time

import pytest
import testinfra

from .. import vantage
from ..labfile import lab_for
from ..spec import Host, Lab
from . import NOT_APPLICABLE
from .netutil import FAMILIES
from .prerequisites import NotRun, Prerequisites



def pytest_addoption(parser):
    group = parser.getgroup("labgen")
    group.addoption("--lab-file", default="lab.yml", help="the lab file of the running lab")
    group.addoption("--student", default=None,
                    help="judge this student's lab; --lab-file is then the class file")


LAB_KEY = pytest.StashKey[Lab]()


def _lab(config) -> Lab:
    """The lab the checks judge: given by labgen verify (verify.GivenLab), else the lab file,
    read once per session (parametrization asks for it per test function)."""
    if LAB_KEY not in config.stash:
        config.stash[LAB_KEY] = lab_for(config.getoption("--lab-file"), config.getoption("--student"))
    return config.stash[LAB_KEY]


@pytest.fixture(scope="session")
def lab(pytestconfig) -> Lab:
    return _lab(pytestconfig)


class Shell:
    """One long-lived `<engine> exec -i <container> env -i ... sh` behind a testinfra host.

    testinfra's container backends start one `exec` per command (about 0.2 s here, most of a
    verify run); through this shell a check's command costs what the command itself costs.
    Each command runs in a subshell with its own stdin, output and exit status, as before, in
    the grader's clean environment (vantage.CLEAN_ENV) and within vantage.COMMAND_LIMIT: a
    command that outlives it is stopped, the shell replaced, and the check told so.
    """

    def __init__(self, engine: str, container: str, prelude: str = ""):
        self.engine, self.container, self.prelude = engine, container, prelude
        self.files = f"/tmp/.labgen-verify-{secrets.token_hex(4)}"
        self.proc: subprocess.Popen | None = None

    def _start(self) -> subprocess.Popen:
        proc = subprocess.Popen([self.engine, "exec", "-i", self.container, *vantage.CLEAN_ENV,
                                 "/bin/sh"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)
        if self.prelude:
            proc.stdin.write(self.prelude.encode())
        return proc

    def _chunk(self, size: int, deadline: float) -> bytes:
        """Up to size bytes of the shell's output once some arrive ('' at its end); TimeoutError
        when none arrive before the deadline."""
        fd = self.proc.stdout.fileno()
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise TimeoutError
        return os.read(fd, size)

    def _readline(self, deadline: float) -> bytes:
        line = bytearray()
        while not line.endswith(b"\n") and (chunk := self._chunk(1, deadline)):
            line += chunk
        return bytes(line)

    def _read(self, n: int, deadline: float) -> bytes:
        data = bytearray()
        while len(data) < n and (chunk := self._chunk(min(65536, n - len(data)), deadline)):
            data += chunk
        return bytes(data)

    def run(self, command: str, limit: float = vantage.COMMAND_LIMIT) -> tuple[int, bytes, bytes]:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = self._start()
        marker = secrets.token_hex(8)
        out, err = f"{self.files}.out", f"{self.files}.err"
        script = (f"( {command}\n) </dev/null >{out} 2>{err}; echo \"{marker} $? $(wc -c <{out}) "
                  f"$(wc -c <{err})\"; cat {out} {err}; rm -f {out} {err}\n")
        deadline = time.monotonic() + limit
        try:
            self.proc.stdin.write(script.encode())
            self.proc.stdin.flush()
            line = self._readline(deadline)
            while line and not line.startswith(marker.encode()):
                line = self._readline(deadline)
            if not line:
                raise RuntimeError(f"lost the shell in {self.container}: is the lab up? (labgen status)")
            _, rc, n_out, n_err = line.split()
            return int(rc), self._read(int(n_out), deadline), self._read(int(n_err), deadline)
        except TimeoutError:
            self.close()
            raise TimeoutError(f"no result in {limit:.0f} s from a command on {self.container}; "
                               "stopped it") from None
        except BrokenPipeError:
            raise RuntimeError(f"lost the shell in {self.container}: is the lab up? (labgen status)") from None

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=2)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def _host(lab: Lab, host: Host, shells: list[Shell]):
    engine = "docker" if lab.engine == "docker" else "podman"
    container = lab.container(host)
    testinfra_host = testinfra.get_host(f"{engine}://{container}")
    shell = Shell(engine, container, vantage.PROBE_PRELUDE if host.role == vantage.PROBE else "")
    shells.append(shell)
    backend = testinfra_host.backend

    def run(command: str, *args: str, **kwargs):
        cmd = backend.get_command(command, *args)
        rc, out, err = shell.run(cmd)
        return backend.result(rc, backend.encode(cmd), out, err)

    backend.run = run
    return testinfra_host


@pytest.fixture(scope="session")
def hosts(lab):
    """testinfra hosts for every lab host, by name."""
    shells: list[Shell] = []
    vantage.containers_conf_env(lab)
    yield {h.name: _host(lab, h, shells) for h in lab.hosts}
    for shell in shells:
        shell.close()


@pytest.fixture(scope="session")
def probe(hosts, lab):
    """Where network checks run from: labgen's probe on the lab network (never the student's
    workstation, whose tools and files the student owns). Its DNS truth is a validating resolver
    of its own, fresh for this run (vantage.truth_start), as probe.labgen_truth: dig's target."""
    probe = hosts[vantage.PROBE]
    unit = f"labgen-truth-{secrets.token_hex(4)}"
    ports = [20000 + secrets.randbelow(20000) for _ in range(3)]
    started = probe.run(vantage.truth_start(lab.domain, ports, unit))
    port = started.stdout.strip()
    probe.labgen_truth = f"@127.0.0.1 -p {port}" if started.rc == 0 and port.isdigit() else vantage.NO_TRUTH
    yield probe
    probe.run(vantage.truth_stop(unit))


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
def prerequisites(lab, probe) -> Prerequisites:
    return Prerequisites(lab, probe)


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
    host = lab.role(params["role"]) if "role" in params else None
    if cause := request.getfixturevalue("prerequisites").missing(
            meta.needs, params.get("server"), params.get("family", "ipv4"), host):
        raise NotRun(cause)

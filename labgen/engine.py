"""The container engine: the same small set of CLI calls for Podman (the default) and Docker.

Everything labgen creates carries the label io.labgen.lab=<lab name>, so `labgen down` removes
exactly one lab's containers, network and volumes, and nothing else.
"""

from __future__ import annotations

import ipaddress
import json
import os
import resource
import shlex
import shutil
import subprocess
import tempfile
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from . import image
from .errors import EngineError, ImageError, ToolError
from .spec import ENGINES, Endpoint, Host, Lab

LABEL = "io.labgen.lab"
INSTALL_HINT = {
    "podman": "install it with 'apt-get install podman runc' (Debian/Ubuntu) or see https://podman.io",
    "docker": "install Docker Engine (Debian: 'apt-get install docker.io') and start dockerd",
}
# Ansible reaches a container through the engine, not SSH.
CONNECTION = {"podman": "containers.podman.podman", "docker": "community.docker.docker"}
REGISTRY_BASE = {"podman": "docker.io/library/debian", "docker": "debian"}
# systemd as PID 1. Podman sets up /run, /tmp and cgroups itself; Docker needs them spelt out.
# A container on several students' networks (the lab root, the access container) forwards no
# packet between them, whatever a student sends it.
# What one container may take of the machine: a class runs hundreds on it, and a student is root
# in theirs. A fork bomb or a zone that eats memory stops at that container (the lab root, the
# access container and the probe included). A lab host uses 20 to 60 MB and about 40 tasks.
LIMITS = ("--memory", "1g", "--pids-limit", "1024")
ROUTES_NOTHING = ("--sysctl", "net.ipv4.ip_forward=0", "--sysctl", "net.ipv6.conf.all.forwarding=0")
SYSTEMD_ARGS = {
    "podman": ("--systemd=always",),
    "docker": ("--tmpfs", "/run", "--tmpfs", "/run/lock", "--tmpfs", "/tmp", "--cgroupns=host",
               "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "--stop-signal", "SIGRTMIN+3"),
}


def network_name(lab: Lab) -> str:
    return f"labgen-{lab.name}"


def image_tag(suite: str) -> str:
    """Keyed by the package list and setup: a new list means a new image, never a stale one."""
    return f"localhost/labgen-{suite}:{image.package_key(suite=suite)}"


def containers_conf() -> Path:
    """labgen's own containers.conf for Podman, written to the cache and used through
    CONTAINERS_CONF, so no file under /etc changes. It holds the two settings some machines
    need: the runc runtime (crun fails on hybrid cgroups) and ulimits no higher than this
    machine's hard limits (Podman's defaults can exceed them, and then no container starts)."""
    lines = ["# Written by labgen for its own Podman calls; delete it at will.", "[containers]"]
    limits = []
    # Plenty for a lab host, and low enough for the machines measured (nproc above 32768 was
    # refused there even under a hard limit of 96343).
    for name, which, cap in (("nofile", resource.RLIMIT_NOFILE, 65536),
                             ("nproc", resource.RLIMIT_NPROC, 4096)):
        hard = resource.getrlimit(which)[1]
        value = cap if hard == resource.RLIM_INFINITY else min(hard, cap)
        limits.append(f'"{name}={value}:{value}"')
    lines.append(f"default_ulimits = [{', '.join(limits)}]")
    if shutil.which("runc"):
        lines += ["[engine]", 'runtime = "runc"']
    text = "\n".join(lines) + "\n"
    path = image.cache_dir() / "containers.conf"
    if not path.exists() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return path


def endpoint_vars(endpoint: Endpoint | None) -> dict:
    """Inventory variables that point Ansible's Podman connection at another machine's Podman."""
    if endpoint is None:
        return {}
    extra = f"--url {endpoint.url}" + (f" --identity {endpoint.key}" if endpoint.key else "")
    return {"ansible_podman_extra_args": extra}


@dataclass(frozen=True)
class ContainerState:
    name: str
    running: bool
    key: str  # io.labgen.key: what the container was created with
    ipv4: str
    ipv6: str


class Engine:
    def __init__(self, name: str = "podman", endpoint: Endpoint | None = None):
        if name not in ENGINES:
            raise EngineError(f"unknown container engine {name!r}; use one of {', '.join(ENGINES)}")
        self.name = name
        if shutil.which(name) is None:
            raise EngineError(f"{name} is not installed: {INSTALL_HINT[name]}")
        # What labgen adds to the environment of the engine (and of Ansible's engine calls).
        self.own_env = {}
        if name == "podman" and "CONTAINERS_CONF" not in os.environ:
            self.own_env["CONTAINERS_CONF"] = str(containers_conf())
        # Another machine's Podman, over SSH: Podman's own remote mode, by its own variables.
        self.endpoint = endpoint
        if endpoint is not None:
            if name != "podman":
                raise EngineError(f"a lab on another machine runs under Podman, not {name}")
            self.own_env["CONTAINER_HOST"] = endpoint.url
            if endpoint.key:
                self.own_env["CONTAINER_SSHKEY"] = endpoint.key
        self.env = {**os.environ, **self.own_env}

    @classmethod
    def of(cls, lab: Lab) -> "Engine":
        """The engine that runs this lab's containers, on this machine or on its own."""
        return cls(lab.engine, lab.endpoint)

    def here(self) -> "Engine":
        """This machine's engine: where the lab image is made and read (image.from_pristine)."""
        return self if self.endpoint is None else Engine(self.name)

    @property
    def where(self) -> str:
        return f" on machine {self.endpoint.machine}" if self.endpoint else ""

    def host_vars(self) -> dict:
        return endpoint_vars(self.endpoint)

    def reachable(self) -> bool:
        """Whether the engine answers (another machine's may be gone)."""
        try:
            return self.run("version", "--format", "{{.Client.Version}}", check=False, timeout=20).returncode == 0
        except EngineError:
            return False

    def ssh(self, *options: str) -> list[str]:
        """ssh to the engine's machine with the login its Podman is reached with (options go
        before the destination)."""
        url = urllib.parse.urlsplit(self.endpoint.url)
        return ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-p", str(url.port or 22),
                *(("-i", self.endpoint.key) if self.endpoint.key else ()), *options,
                f"{url.username}@{url.hostname}"]

    def on_machine(self, *cmd: str, input: str | None = None, timeout: int = 60) -> subprocess.CompletedProcess:
        """A command on the engine's machine itself (nft, for a class's walls): here, or over
        SSH on another machine, with the same login its Podman is reached with."""
        if self.endpoint is not None:
            cmd = (*self.ssh(), "--", shlex.join(cmd))
        try:
            return subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise EngineError(f"'{cmd[0]}'{self.where} did not finish in {timeout} s") from None

    @property
    def connection(self) -> str:
        return CONNECTION[self.name]

    def run(self, *args: str, check: bool = True, timeout: int = 600, **kw) -> subprocess.CompletedProcess:
        try:
            result = subprocess.run([self.name, *args], capture_output=True, text=True,
                                    env=self.env, timeout=timeout, **kw)
        except subprocess.TimeoutExpired:
            raise EngineError(f"'{self.name} {args[0]}' did not finish in {timeout} s") from None
        if check and result.returncode != 0:
            raise EngineError(f"'{self.name} {' '.join(args[:2])}'{self.where} failed: "
                              f"{_hint(result.stderr.strip() or result.stdout.strip())}")
        return result

    # ------------------------------------------------------------------ image

    def image_exists(self, tag: str) -> bool:
        return self.run("image", "inspect", tag, check=False).returncode == 0

    def ensure_image(self, suite: str, log=print) -> tuple[str, str]:
        """The lab image for a Debian suite: (tag, how it was obtained)."""
        tag = image_tag(suite)
        if self.image_exists(tag):
            return tag, "cached"
        if self.endpoint is not None:  # made here (or found here), then sent over
            local, how = self.here().ensure_image(suite, log=log)
            log(f"sending {local} to machine {self.endpoint.machine}")
            save = subprocess.Popen([self.name, "save", local], stdout=subprocess.PIPE,
                                    env=self.here().env)
            result = self.run("load", check=False, stdin=save.stdout, timeout=1800)
            save.stdout.close()
            save.wait()
            if result.returncode != 0 or save.returncode != 0:
                raise ImageError(f"sending the lab image to machine {self.endpoint.machine} failed: "
                                 f"{result.stderr.strip()[-300:]}")
            return tag, f"{how} here, sent to machine {self.endpoint.machine}"
        source = os.environ.get("LABGEN_IMAGE_SOURCE", "auto")
        # debootstrap needs only Debian's mirror, which apt already uses; a registry is asked
        # only where debootstrap cannot run (no debootstrap, not root) or when asked for.
        if source == "auto" and shutil.which("debootstrap") and os.geteuid() == 0:
            source = "debootstrap"
        if source in ("auto", "registry") and self._pull_and_build(suite, tag, log):
            return tag, "built from the registry's debian image"
        if source == "registry":
            raise ImageError(f"no registry answered for {REGISTRY_BASE[self.name]}:{suite}")
        try:
            root = image.rootfs(suite=suite, log=log)
        except ToolError as exc:  # debootstrap missing or failed
            raise ImageError(str(exc)) from None
        log(f"importing {root} as {tag}")
        tar = subprocess.Popen(["tar", "-C", str(root), "--numeric-owner", "-c", "."],
                               stdout=subprocess.PIPE)
        result = self.run("import", "--change", 'CMD ["/sbin/init"]', "-", tag, check=False,
                          stdin=tar.stdout)
        tar.stdout.close()
        tar.wait()
        if result.returncode != 0 or tar.returncode != 0:
            raise ImageError(f"'{self.name} import' failed: {result.stderr.strip()}")
        return tag, "built with debootstrap"

    def _pull_and_build(self, suite: str, tag: str, log) -> bool:
        """The ordinary route where a registry answers: Debian's image plus the same packages
        and setup as the debootstrap route."""
        base = f"{REGISTRY_BASE[self.name]}:{suite}"
        if self.run("pull", base, check=False, timeout=300).returncode != 0:
            log(f"no registry answered for {base}: building with debootstrap instead")
            return False
        log(f"pulled {base}; installing the lab packages")
        recipe = (f"FROM {base}\n"
                  "RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "
                  f"--no-install-recommends {' '.join(image.PACKAGES)} && {image.SETUP}\n"
                  'CMD ["/sbin/init"]\n')
        with tempfile.TemporaryDirectory(prefix="labgen-image-") as ctx:
            (Path(ctx) / "Containerfile").write_text(recipe)
            result = self.run("build", "-t", tag, "-f", f"{ctx}/Containerfile", ctx, check=False,
                              timeout=1800)
        if result.returncode != 0:
            raise ImageError(f"'{self.name} build' failed:\n" +
                             "\n".join(result.stdout.strip().splitlines()[-5:]))
        return True

    # ------------------------------------------------------------------ network

    def ensure_network(self, lab: Lab) -> str:
        """The lab's network with the lab file's subnets; a network with other subnets (the lab
        file changed) is replaced together with the lab's containers."""
        name = network_name(lab)
        result = self.run("network", "inspect", name, check=False)
        if result.returncode == 0:
            info = json.loads(result.stdout)[0]
            if set(_subnets(info)) == {lab.ipv4_network, lab.ipv6_network}:
                return "exists"
            self.remove_lab(lab.name)
        # Internal: the lab talks only to itself and to this machine, never beyond.
        try:
            self.run("network", "create", "--internal", "--ipv6", "--subnet", str(lab.ipv4_network),
                     "--subnet", str(lab.ipv6_network), "--label", f"{LABEL}={lab.name}", name)
        except EngineError as exc:
            taken = self._networks_overlapping(lab)
            if not taken:
                raise
            raise EngineError(f"the lab's subnets are taken: {'; '.join(taken)}; choose other "
                              f"subnets (network.ipv4 / network.ipv6 in the lab file) or take "
                              f"that network down first") from exc
        return "created"

    def _networks_overlapping(self, lab: Lab) -> list[str]:
        """'<subnet> is used by network N (lab L)' for every network in the way of the lab's."""
        names = self.run("network", "ls", "--format", "{{.Name}}").stdout.split()
        result = self.run("network", "inspect", *names, check=False) if names else None
        found = []
        for info in json.loads(result.stdout) if result and result.returncode == 0 else []:
            labels = info.get("labels") or info.get("Labels") or {}
            owner = f" (lab {labels[LABEL]})" if LABEL in labels else ""
            for subnet in _subnets(info):
                if any(subnet.version == mine.version and subnet.overlaps(mine)
                       for mine in (lab.ipv4_network, lab.ipv6_network)):
                    found.append(f"{subnet} is used by network {info.get('name') or info.get('Name')}{owner}")
        return found

    # ------------------------------------------------------------------ containers

    def state(self, container: str) -> ContainerState | None:
        return self.states([container]).get(container)

    def states(self, containers: list[str]) -> dict[str, ContainerState]:
        """Each of these containers that exists, with its addresses: one engine call."""
        if not containers:
            return {}
        result = self.run("container", "inspect", *containers, check=False)
        if result.returncode != 0 and len(containers) > 1:  # one is missing: ask one by one
            return {name: found for name in containers if (found := self.state(name)) is not None}
        if result.returncode != 0:
            return {}
        found = {}
        for name, info in zip(containers, json.loads(result.stdout)):
            nets = (info.get("NetworkSettings") or {}).get("Networks") or {}
            net = next(iter(nets.values()), {})
            found[name] = ContainerState(name, bool(info["State"].get("Running")),
                                         ((info.get("Config") or {}).get("Labels") or {}).get("io.labgen.key", ""),
                                         net.get("IPAddress", ""), net.get("GlobalIPv6Address", ""))
        return found

    def lab_states(self, lab_name: str) -> dict[str, ContainerState]:
        """Every container of a lab, running or not, with its key: one engine call (addresses
        are left empty; state() has them)."""
        podman = self.name == "podman"  # Podman prints one JSON list, Docker a JSON object per line
        out = self.run("ps", "-a", "--filter", f"label={LABEL}={lab_name}", "--format",
                       "json" if podman else "{{json .}}").stdout
        entries = json.loads(out or "[]") if podman else [json.loads(line) for line in out.splitlines() if line.strip()]
        found = {}
        for info in entries:
            names = info.get("Names") or []
            name = names[0] if isinstance(names, list) and names else str(names).lstrip("/")
            labels = info.get("Labels") or {}
            if isinstance(labels, str):  # Docker: "k=v,k=v"
                labels = dict(pair.split("=", 1) for pair in labels.split(",") if "=" in pair)
            running = str(info.get("State", "")).lower() == "running"
            found[name] = ContainerState(name, running, labels.get("io.labgen.key", ""), "", "")
        return found

    def create_container(self, lab: Lab, host: Host, tag: str, key: str) -> None:
        resolver = lab.role("resolver")
        self.run("run", "-d", "--name", lab.container(host), "--hostname", host.fqdn,
                 "--network", network_name(lab), "--ip", str(host.ipv4), "--ip6", str(host.ipv6),
                 # Every lookup in the lab goes through the lab's validating resolver.
                 "--dns", str(resolver.ipv4), "--dns", str(resolver.ipv6), "--dns-search", lab.domain,
                 "--label", f"{LABEL}={lab.name}", "--label", f"io.labgen.key={key}",
                 *LIMITS, *SYSTEMD_ARGS[self.name], tag)

    def create_multihomed(self, name: str, hostname: str, networks: list[tuple[str, str, str]],
                          labels: dict[str, str], tag: str, extra: list[str] = ()) -> None:
        """A container with an address on each of several networks (network, IPv4, IPv6; no
        addresses: the engine's choice): the lab root of a class, which every student's network
        reaches and which routes nothing. extra: more arguments (published ports)."""
        attach = [a for net, v4, v6 in networks
                  for a in ("--network", f"{net}:ip={v4},ip6={v6}" if v4 else net)]
        marks = [a for key, value in labels.items() for a in ("--label", f"{key}={value}")]
        self.run("run", "-d", "--name", name, "--hostname", hostname, *attach, "--dns", "127.0.0.1",
                 *marks, *extra, *ROUTES_NOTHING, *LIMITS, *SYSTEMD_ARGS[self.name], tag)

    def converge(self, name: str, key: str, create) -> str:
        """The container `name` made by create() with this key: left running, started, created,
        or replaced when its key (what it was made from) changed."""
        state = self.state(name)
        if state is not None and state.key == key:
            if state.running:
                return "running"
            self.start(name)
            return "started"
        if state is not None:
            self.remove(name)
        create()
        return "created" if state is None else "replaced"

    def start(self, container: str) -> None:
        self.run("start", container)

    def remove(self, container: str) -> None:
        self.run("rm", "-f", container)

    def wait_booted(self, container: str, timeout: float = 60) -> str:
        """Wait until systemd has finished booting; return its state (running or degraded)."""
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            state = self.exec(container, "systemctl", "is-system-running").stdout.strip()
            if state in ("running", "degraded"):
                return state
            time.sleep(0.3)
        raise EngineError(f"{container}: systemd did not finish booting in {timeout:.0f} s "
                          f"(state {state or 'unknown'})")

    def exec(self, container: str, *cmd: str, timeout: int = 60) -> subprocess.CompletedProcess:
        return self.run("exec", container, *cmd, check=False, timeout=timeout)

    def lab_resources(self, lab_name: str) -> dict[str, list[str]]:
        """Everything of this engine that carries the lab's label."""
        selector = f"label={LABEL}={lab_name}"
        found = {}
        for kind, args in (("containers", ("ps", "-a", "--filter", selector, "--format", "{{.Names}}")),
                           ("networks", ("network", "ls", "--filter", selector, "--format", "{{.Name}}")),
                           ("volumes", ("volume", "ls", "--filter", selector, "--format", "{{.Name}}"))):
            found[kind] = self.run(*args).stdout.split()
        return found

    def remove_lab(self, lab_name: str) -> dict[str, list[str]]:
        found = self.lab_resources(lab_name)
        if found["containers"]:
            self.run("rm", "-f", *(("-t", "2") if self.name == "podman" else ()), *found["containers"])
        if found["networks"]:
            self.run("network", "rm", *found["networks"])
        if found["volumes"]:
            self.run("volume", "rm", "-f", *found["volumes"])
        return found


def _subnets(info: dict) -> list:
    """The subnets of a network, from Podman's or Docker's `network inspect`."""
    entries = info.get("subnets") or (info.get("IPAM") or {}).get("Config") or []
    return [ipaddress.ip_network(e.get("subnet") or e.get("Subnet")) for e in entries
            if e.get("subnet") or e.get("Subnet")]


def _hint(message: str) -> str:
    """Add what to do for the failures MACHINE-like hosts are known to show."""
    if "setrlimit" in message:
        message += ("\n  hint: the engine's default ulimits exceed this machine's hard limits; "
                    "labgen's containers.conf lowers them for Podman (unset CONTAINERS_CONF)")
    elif "cgroups in hybrid mode" in message or "crun" in message:
        message += "\n  hint: crun does not work here; install runc ('apt-get install runc')"
    return message

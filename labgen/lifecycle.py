"""labgen up / down / status: the rendered lab in containers, deployed by Ansible.

`up` converges: it renders when the build is missing or stale, reuses the image, network and
containers that match the lab file, replaces those that do not, starts stopped ones and runs the
playbook. So a second `up` changes nothing, and an `up` after a crash or a killed container
brings the lab back to full health.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from . import __version__, deploy, image, includes, kinds
from .engine import LABEL, LIMITS, Engine, network_name
from .errors import EngineError, ImageError, UsageError
from .render import data_dir, render, write_manifest
from .spec import Host, Lab
from .text import printable

# The systemd unit each role runs; the client runs none.
STAMP = ".labgen-stamp.json"
# Zone signatures last 30 days (dnszone.signing_window): re-render well before they expire.
RENDER_MAX_AGE = dt.timedelta(days=7)
PHASES = ("render", "image", "network", "containers", "deploy")


def count(n: int, noun: str) -> str:
    """'1 change', '3 changes'."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def service(host: Host) -> str | None:
    return kinds.of(host).unit or None


def _source_digest(lab: Lab) -> str:
    """What the build depends on: the lab file, labgen's version, its templates and profiles,
    and its code (which renders, and ships programs such as labgen-certs as they are)."""
    digest = hashlib.sha256(_code_digest().encode())
    digest.update(Path(lab.source).read_bytes() if Path(lab.source).is_file() else lab.source.encode())
    return digest.hexdigest()


@functools.lru_cache(maxsize=1)
def _code_digest() -> str:
    """labgen's own part of every build's digest: read once per run (a class has many labs)."""
    digest = hashlib.sha256(__version__.encode())
    code = Path(__file__).parent
    inputs = [*data_dir("templates").rglob("*"), *(code / "profiles").rglob("*"), *code.rglob("*.py")]
    for path in sorted(inputs):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def ensure_build(lab: Lab, out: Path, now: dt.datetime | None = None) -> tuple[Path, str]:
    now = now or dt.datetime.now(dt.timezone.utc)
    build = out / lab.name
    digest = _source_digest(lab)
    try:
        stamp = json.loads((build / STAMP).read_text())
        fresh = (stamp["digest"] == digest and
                 now - dt.datetime.fromisoformat(stamp["rendered"]) < RENDER_MAX_AGE)
    except (OSError, ValueError, KeyError):
        fresh = False
    if fresh:
        return build, "up to date"
    build = render(lab, out, now=now)
    (build / STAMP).write_text(json.dumps({"digest": digest, "rendered": now.isoformat()}))
    return build, "rendered"


def _container_key(lab: Lab, host: Host, tag: str) -> str:
    """Everything a container is created with: when it changes, the container is replaced."""
    resolver = lab.role("resolver")
    return hashlib.sha256(" ".join(map(str, (tag, host.fqdn, host.ipv4, host.ipv6, resolver.ipv4,
                                             resolver.ipv6, lab.domain, *LIMITS))).encode()).hexdigest()[:16]


@dataclass
class Phase:
    """Prints '[n/5] phase: ...' lines and remembers which phase is running."""

    log: callable = print
    current: str = ""
    started: float = 0.0

    def start(self, name: str) -> None:
        self.current, self.started = name, time.monotonic()

    def note(self, detail: str) -> None:
        """What a long phase is doing, before its lines of detail."""
        self.log(f"[{PHASES.index(self.current) + 1}/{len(PHASES)}] {self.current}: {detail}")

    def done(self, detail: str) -> None:
        self.note(f"{detail} ({time.monotonic() - self.started:.1f} s)")


def retransfer(lab: Lab, engine: Engine) -> str:
    """After labgen put the rendered zone back on ns1: the lab root that keeps a copy of it (in
    a class) takes it whole. A secondary never takes a lower serial, and the rendered zone's may
    be lower than one a student signed since. What was done, or "" when there is no such copy."""
    root = lab.secondary
    if not root or not ((state := engine.state(root)) and state.running):
        return ""
    done = engine.exec(root, "rndc", "retransfer", lab.domain)
    return f"the lab root's copy of {lab.domain}: " + (
        "transferred again" if done.returncode == 0 else
        f"not transferred again ({(done.stderr or done.stdout).strip()[:200]})")


def up(lab: Lab, out: Path, engine: Engine, *, verbose: bool = False, log=print) -> dict:
    phase = Phase(log)
    build, tag = prepare(lab, out, engine, phase)
    phase.start("deploy")
    phase.note(f"ansible-playbook site.yml on {len(lab.hosts)} hosts")
    stats = deploy_labs([(lab, build, "")], engine, tag, verbose=verbose, log=log)
    moved = stats["moved"]
    aside = (f"; {count(len(moved), 'file')} labgen does not own moved aside into "
             f"{includes.BACKUP}/ on {', '.join(sorted({h for h, _, _ in moved}))}") if moved else ""
    phase.done(count(deploy.changed(stats), "change") + aside)
    for line in after_deploy(lab, "", stats, engine):
        log(f"      {line}")
    log(f"lab {lab.name} is up")
    return stats


def prepare(lab: Lab, out: Path, engine: Engine, phase: "Phase",
            lock: threading.Lock | None = None) -> tuple[Path, str]:
    """Everything of up before the deploy: the build, the image, the network and the containers.
    Returns the build folder and the image. lock: held while rendering and making the image, so
    several labs may be prepared at once (the umask of a render is the whole process's)."""
    with lock or contextlib.nullcontext():
        phase.start("render")
        build, how = ensure_build(lab, out)
        phase.done(f"{build} {how}")

        phase.start("image")
        suite = image.SUITES.get(lab.target.name)
        if suite is None:
            raise ImageError(f"target {lab.target.name!r} has no lab image; labgen up runs "
                             f"{', '.join(image.SUITES)}")
        tag, how = engine.ensure_image(suite, log=lambda msg: phase.log(f"      {msg}"))
        phase.done(f"{tag} ({how})")

    phase.start("network")
    net = lab.ipv4_network, lab.ipv6_network
    phase.done(f"{network_name(lab)} {net[0]} {net[1]} ({engine.ensure_network(lab)})")

    phase.start("containers")
    phase.done(_ensure_containers(lab, engine, tag))
    return build, tag


def deploy_labs(labs: list[tuple[Lab, Path, str]], engine: Engine, tag: str, *, verbose: bool = False,
                log=print, also: tuple[tuple[Path, Path, str], ...] = (), artifacts: Path | None = None,
                tolerate: bool = False, changes_only: bool = False) -> dict:
    """One ansible-playbook run over the hosts of every lab (lab, its build, a prefix for its
    host names in the run or ""), and also of these rendered inventories (a class's lab root);
    Ansible's files go into artifacts (default: the first lab's build/.ansible). Returns
    ansible-runner's stats, with "moved": what was moved aside (tolerate: deploy.run_playbook's)."""
    for lab, build, _ in labs:
        for host in lab.hosts:
            write_manifest(build / "hosts" / host.name, build / "manifests" / f"{host.name}.json")
    artifacts = (artifacts or labs[0][1] / ".ansible").resolve()
    # The include folders of each server kind as the image has them: what is not there, not
    # rendered and not enabled by a role is moved aside on the host (includes.py).
    folders = includes.playbook_folders(includes.pristine_folders(engine.here(), tag))
    moved: list = []
    parts = [(build / "inventory.yml", build, prefix, Engine.of(lab).host_vars())
             for lab, build, prefix in labs] + list(also)
    stats = deploy.run_playbook(deploy.engine_inventory(parts, artifacts, engine.connection), artifacts,
                                {"labgen_folders": folders}, envvars=engine.own_env,
                                verbose=verbose, log=log, moved=moved, tolerate=tolerate,
                                changes_only=changes_only)
    stats["moved"] = moved
    return stats


def after_deploy(lab: Lab, prefix: str, stats: dict, engine: Engine) -> list[str]:
    """After a deploy: when the zone changed on ns1, the resolver drops its cache and a lab root
    that keeps a copy takes it again. What was done, one line each."""
    changed = stats.get("changed") or {}  # per inventory host name
    name = (lambda host: f"{prefix}-{host.name}") if prefix else (lambda host: host.name)
    ns, resolver = lab.role("authdns"), lab.role("resolver")
    done = []
    if changed.get(name(ns)) and not changed.get(name(resolver)):
        # The zone changed: the resolver must not keep answering from its cache.
        engine.exec(lab.container(resolver), "systemctl", "restart", service(resolver))
        done.append(f"the zone changed on {ns.name}: restarted {service(resolver)} to drop its cache")
    if changed.get(name(ns)) and (line := retransfer(lab, engine)):
        done.append(line)
    return done


def require_up(lab: Lab, engine: Engine, config: str) -> None:
    """Refuse (exit 2) a command that needs the lab running when one of its hosts is not."""
    down = [h.name for h in lab.hosts if not (s := engine.state(lab.container(h))) or not s.running]
    if down:
        raise UsageError(f"lab {lab.name} is not up ({', '.join(down)} not running); "
                         f"run labgen up -c {config} first")


def _ensure_containers(lab: Lab, engine: Engine, tag: str) -> str:
    counts = {"created": 0, "started": 0, "replaced": 0, "running": 0, "removed": 0}
    expected = {lab.container(h) for h in lab.hosts}
    states = engine.lab_states(lab.name)  # one engine call for the lab's containers
    for stale in set(states) - expected:
        engine.remove(stale)  # a server the lab file no longer has
        counts["removed"] += 1
    fresh = []  # containers that boot now: the deploy waits for them, not for the running ones
    for host in lab.hosts:
        name, key = lab.container(host), _container_key(lab, host, tag)
        state = states.get(name)
        if state is not None and state.key != key:
            engine.remove(name)
            counts["replaced"] += 1
            state = None
        if state is None:
            engine.create_container(lab, host, tag, key)
            counts["created"] += 1
        elif not state.running:
            try:
                engine.start(name)
                counts["started"] += 1
            except EngineError:  # e.g. created by an earlier up that was cut off: start afresh
                engine.remove(name)
                engine.create_container(lab, host, tag, key)
                counts["replaced"] += 1
        else:
            counts["running"] += 1
            continue
        fresh.append(name)
    for name in fresh:
        engine.wait_booted(name)
    return ", ".join(f"{n} {what}" for what, n in counts.items() if n) + f" ({LABEL}={lab.name})"


def down(lab_name: str, engine: Engine) -> dict[str, list[str]]:
    return engine.remove_lab(lab_name)


@dataclass(frozen=True)
class HostStatus:
    host: Host
    state: str
    ipv4: str
    ipv6: str
    service: str | None
    service_state: str
    problem: str = ""  # what the running service lacks (a zone BIND did not load), escaped

    @property
    def healthy(self) -> bool:
        return self.state == "running" and self.service_state in ("active", "-") and not self.problem


# For each zone BIND does not serve: "<zone>: <BIND's reason>", from its log since named last
# started ("not loaded" when it says nothing). named stays active when a zone fails to load, so the unit alone says
# nothing about what it serves.
_UNLOADED = r"""for zone in "$@"; do
    rndc zonestatus "$zone" >/dev/null 2>&1 && continue
    why=$(journalctl -u named -o cat --no-pager -n 2000 2>/dev/null |
          awk '/starting BIND/ {since = ""} {since = since $0 "\n"} END {printf "%s", since}' |
          grep -F "zone $zone/IN" | grep -F "failed: " | tail -n 1)
    echo "$zone: ${why:-not loaded}"
done"""


def _zone_problem(engine: Engine, name: str, zones: tuple[str, ...]) -> str:
    if not zones:
        return ""
    found = engine.exec(name, "sh", "-c", _UNLOADED, "zones", *zones).stdout.strip()
    return printable("; ".join(f"zone {line}" for line in found.splitlines()), keep_newlines=False)


def status(lab: Lab, engine: Engine) -> list[HostStatus]:
    """Each host's container and service: one engine call for the containers, then each
    service asked at once (a class asks this for every student)."""
    states = engine.states([lab.container(h) for h in lab.hosts])

    def row(host: Host) -> HostStatus:
        name, unit = lab.container(host), service(host)
        state = states.get(name)
        if state is None:
            return HostStatus(host, "missing", "", "", unit, "-" if unit is None else "unknown")
        svc = "-"
        problem = ""
        if unit and state.running:
            svc = engine.exec(name, "systemctl", "is-active", unit).stdout.strip() or "unknown"
            if svc == "active":
                problem = _zone_problem(engine, name, kinds.of(host).zones(lab, host))
        elif unit:
            svc = "unknown"
        return HostStatus(host, "running" if state.running else "stopped", state.ipv4, state.ipv6, unit, svc,
                          problem)

    with ThreadPoolExecutor(max_workers=len(lab.hosts) or 1) as pool:
        return list(pool.map(row, lab.hosts))


def status_table(lab: Lab, rows: list[HostStatus]) -> str:
    lines = [f"lab {lab.name}: network {network_name(lab)} "
             f"({lab.ipv4_network}, {lab.ipv6_network})",
             f"{'HOST':<26} {'CONTAINER':<9} {'IPV4':<16} {'IPV6':<24} SERVICE"]
    for r in rows:
        svc = f"{r.service} {r.service_state}" if r.service else "-"
        lines.append(f"{r.host.fqdn:<26} {r.state:<9} {r.ipv4 or '-':<16} {r.ipv6 or '-':<24} {svc}")
        if r.problem:
            lines.append(f"  {r.host.fqdn}: unhealthy: {r.problem}")
    healthy = sum(r.healthy for r in rows)
    lines.append(f"{healthy} of {len(rows)} hosts healthy")
    return "\n".join(lines)

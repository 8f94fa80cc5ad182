"""The grader's vantage point: where the checks run from, and with what.

A student is root in their own lab hosts and may want the point without the fix, so the grade
leans on nothing a student owns:
- network checks run on the probe, a host of every lab that labgen deploys and never hands to
  anyone (no handout names it); its tools have time limits and read no user configuration, and
  it resolves names only through the lab resolver, or, for a drill's watch, through a validating
  cache of its own that no student can flush;
- every command the grader runs on a host (probe or server) runs in a clean environment (no
  PATH of the host's, no HOME, no LD_PRELOAD), so /usr/local and dotfiles play no part;
- before host checks run on a server, the binaries they call are compared, from outside the
  container (through /proc/<pid>/root, never with the host's own tools), with the same files
  of the pristine lab image: a replaced apache2ctl or a /etc/ld.so.preload is a root cause.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import posixpath
import stat
import subprocess
import tarfile
import threading

from . import image, kinds
from .kinds import KINDS
from .kinds.client import GRADER_CACHE, GRADER_CACHE_PORT  # noqa: F401 - the probe's own cache
from .engine import Engine, containers_conf

PROBE = "probe"
# The environment of every command the grader runs: nothing of the user's.
CLEAN_ENV = ("/usr/bin/env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/nonexistent",
             "LC_ALL=C.UTF-8")
# Seconds: no single command may take longer (a stalled server costs this at most once).
COMMAND_LIMIT = 30
# The probe's network tools, defined once in its shell: time limits on every request, no curlrc
# (-q), no digrc (HOME does not exist). A stalled listener costs seconds, not minutes.
# dig: a resolver that falls back from a dead name-server address needs seconds to answer.
CURL_LIMIT, DIG_TIME, DIG_TRIES = 8, 5, 2
PROBE_PRELUDE = (f"curl() {{ /usr/bin/curl -q --connect-timeout 4 --max-time {CURL_LIMIT} \"$@\"; }}\n"
                 f"dig() {{ /usr/bin/dig +time={DIG_TIME} +tries={DIG_TRIES} \"$@\"; }}\n"
                 f"delv() {{ /usr/bin/delv +time={DIG_TIME} +tries={DIG_TRIES} \"$@\"; }}\n")
# The grader's DNS truth: for each verify, a fresh Unbound on the probe (the drills' cache config,
# on a port of its own), validating from labgen's trust anchor and asking the lab's authoritative
# servers (and a class's lab root) itself. The lab resolver, which a student runs, is a subject
# judged against it, never an oracle. Fresh: nothing a cache held before a student's fix counts.
TRUTH_LIFETIME = 900  # seconds a truth resolver may outlive an interrupted verify
NO_TRUTH = "@127.0.0.1 -p 9"  # where dig asks when the truth did not start: no answer


def truth_start(domain: str, ports: list[int], unit: str) -> str:
    """A shell script for the probe: start the truth resolver on the first of ports it can bind,
    wait until it answers, print that port; exit 1 when none would."""
    tries = " ".join(str(p) for p in ports)
    return (f"conf=/run/{unit}.conf; for port in {tries}; do "
            f"sed 's/@{GRADER_CACHE_PORT}$/@'$port/ {GRADER_CACHE} > $conf || exit 1; "
            f"systemd-run --quiet --collect --unit {unit} -p RuntimeMaxSec={TRUTH_LIFETIME} "
            f"/usr/sbin/unbound -d -p -c $conf || exit 1; "
            f"for i in $(seq 40); do /usr/bin/dig +time=1 +tries=1 @127.0.0.1 -p $port {domain} SOA "
            f">/dev/null 2>&1 && {{ echo $port; exit 0; }}; sleep 0.25; done; "
            f"systemctl stop {unit} 2>/dev/null; done; exit 1")


def truth_stop(unit: str) -> str:
    return f"systemctl stop {unit} 2>/dev/null; rm -f /run/{unit}.conf; true"


# The files the grader's commands use on each kind of host (the shell's own helpers first).
# Compared with the lab image before host checks run; ld.so.preload must stay absent.
SHELL_TOOLS = ("/usr/bin/env", "/bin/sh", "/usr/bin/dash", "/usr/bin/cat", "/usr/bin/wc",
               "/usr/bin/rm", "/usr/bin/timeout", "/etc/ld.so.preload")
MISSING = "missing"


def tools(kind: str) -> tuple[str, ...]:
    return SHELL_TOOLS + KINDS[kind].tools


def _inside(root: str, path: str) -> str:
    """path resolved inside a container's root: symlinks, absolute ones too, stay inside it
    (the kernel would resolve an absolute link under /proc/<pid>/root against our own root)."""
    parts, resolved, hops = [p for p in path.split("/") if p], "", 40
    while parts:
        part = parts.pop(0)
        if part in (".", ""):
            continue
        if part == "..":
            resolved = resolved.rsplit("/", 1)[0]
            continue
        candidate = f"{resolved}/{part}"
        if os.path.islink(root + candidate):
            hops -= 1
            if hops < 0:
                raise OSError(f"{path}: too many levels of symbolic links")
            target = os.readlink(root + candidate)
            if target.startswith("/"):
                resolved = ""
            parts = [p for p in target.split("/") if p] + parts
            continue
        resolved = candidate
    return root + resolved


# The largest tool the grader will read (the biggest, apache2 or named, is a few MB): a larger
# file is "replaced" without being read whole.
TOOL_LIMIT = 64 * 1024 * 1024


def digests(root: str, paths: tuple[str, ...]) -> dict[str, str]:
    """sha256 of each path inside a container's root (/proc/<pid>/root), or MISSING, or what
    stands there instead of a regular file. Opened without blocking and without following a
    last link (a FIFO or a device the student put at a tool's path cannot stall the grader),
    read at most TOOL_LIMIT bytes."""
    found = {}
    for path in paths:
        try:
            fd = os.open(_inside(root, path), os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
        except (FileNotFoundError, NotADirectoryError):
            found[path] = MISSING
            continue
        except OSError as exc:  # a link swapped in since it was resolved, a loop, ...
            found[path] = f"unreadable ({exc.strerror})"
            continue
        with os.fdopen(fd, "rb") as f:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                found[path] = "not a regular file"
            elif info.st_size > TOOL_LIMIT:
                found[path] = f"too large ({info.st_size} bytes)"
            else:
                found[path] = hashlib.sha256(f.read(TOOL_LIMIT + 1)).hexdigest()
    return found


# Host facts read from outside the container (this machine's kernel and tools), for a lab on
# this machine: a student's ss, stat or shell plays no part. A lab on another machine still
# asks inside its hosts, with their tools compared with the lab image's first.
@functools.lru_cache(maxsize=None)
def _pid(engine_name: str, container: str) -> int:
    return int(Engine(engine_name).run("inspect", "-f", "{{.State.Pid}}", container, timeout=60).stdout.strip())


def outside(lab) -> bool:
    """Whether the grader reads this lab's host facts from outside its containers."""
    return lab.endpoint is None


def listeners(lab, host, port: int) -> set[str]:
    """The local addresses with a TCP listener on port, from the kernel of the host's network
    namespace, through this machine's ss (nsenter enters that namespace alone)."""
    pid = _pid(Engine.of(lab).name, lab.container(host))
    out = subprocess.run(["nsenter", "-t", str(pid), "-n", "/usr/bin/ss", "-Hltn", f"sport = :{port}"],
                         capture_output=True, text=True, timeout=COMMAND_LIMIT, env={"PATH": "/usr/bin:/bin"})
    return {line.split()[3] for line in out.stdout.splitlines() if len(line.split()) > 3}


def file_owner_mode(lab, host, path: str) -> tuple[int, int] | None:
    """(uid, mode) of a file in the host, links resolved inside its root, or None when it is
    missing; read through /proc/<pid>/root with this machine's stat."""
    root = f"/proc/{_pid(Engine.of(lab).name, lab.container(host))}/root"
    try:
        info = os.lstat(_inside(root, path))
    except (FileNotFoundError, NotADirectoryError):
        return None
    return info.st_uid, info.st_mode


def all_tools() -> list[str]:
    """Every file the grader compares with the lab image, on any kind of host."""
    return sorted({p for kind in KINDS.values() if kind.tools for p in tools(kind.name)})


def reference(engine: Engine, image_id: str) -> dict[str, str]:
    """What the grader's tools are in the lab image (read once per image, then cached)."""
    every = all_tools()
    return image.from_pristine(engine, image_id, "grader-tools", every,
                               lambda root: digests(root, tuple(every)))


def replaced_in(lab) -> dict[str, list[str]]:
    """replaced() for every host of a spec.Lab whose kind has grader's tools, by container."""
    return replaced(Engine.of(lab), {lab.container(h): kinds.of(h).name for h in lab.hosts
                                         if kinds.of(h).tools})


def containers_conf_env(lab=None) -> None:
    """Have Podman, as testinfra calls it, read labgen's containers.conf (engine.py), and reach
    the machine the lab runs on (a class over several machines)."""
    os.environ.setdefault("CONTAINERS_CONF", str(containers_conf()))
    if lab is not None and lab.endpoint is not None:
        os.environ.update({k: v for k, v in Engine.of(lab).own_env.items() if k != "CONTAINERS_CONF"})


def replaced(engine: Engine, containers: dict[str, str]) -> dict[str, list[str]]:
    """For each container (name -> kind of host): the grader's tools on it that differ from the
    lab image's (an empty list: all genuine). One engine call for all of them."""
    if engine.endpoint is not None:
        return _replaced_over_there(engine, containers)
    names = list(containers)
    lines = engine.run("inspect", "-f", "{{.State.Pid}} {{.Image}}", *names, timeout=60).stdout.split("\n")
    found = {}
    for name, line in zip(names, lines):
        pid, image_id = line.split()
        known = reference(engine, image_id.removeprefix("sha256:"))
        wanted = tools(containers[name])
        seen = digests(f"/proc/{pid}/root", wanted)
        found[name] = [path for path in wanted if seen[path] != known.get(path)]
    return found


def _replaced_over_there(engine: Engine, containers: dict[str, str]) -> dict[str, list[str]]:
    """replaced() for containers on another machine: each file read by that machine's Podman
    service (`podman cp` works from outside the container, as /proc/<pid>/root does here),
    compared with the lab image as this machine has it (the same image: it was sent from here)."""
    found, names = {}, list(containers)
    images = engine.run("inspect", "-f", "{{.Image}}", *names, timeout=60).stdout.split()
    for name, image_id in zip(names, images):
        kind = containers[name]
        known = reference(engine.here(), image_id.removeprefix("sha256:"))
        wanted = tools(kind)
        found[name] = [path for path in wanted if _copied_digest(engine, name, path) != known.get(path)]
    return found


def _copied_digest(engine: Engine, container: str, path: str, hops: int = 40) -> str:
    """sha256 of a file in a container, through `podman cp` (a tar stream, read at most
    TOOL_LIMIT and a header's worth), links followed inside the container."""
    with subprocess.Popen([engine.name, "cp", f"{container}:{path}", "-"], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, env=engine.env) as proc:
        timer = threading.Timer(COMMAND_LIMIT, proc.kill)  # a stalled copy costs this at most
        timer.start()
        try:
            stream = proc.stdout.read(TOOL_LIMIT + 64 * 1024)
        finally:
            timer.cancel()
            proc.kill()
            proc.wait()
    try:
        with tarfile.open(fileobj=io.BytesIO(stream)) as tar:
            entry = next(iter(tar), None)
            if entry is None:
                return MISSING
            if entry.issym() and hops > 0:
                target = posixpath.normpath(posixpath.join(posixpath.dirname(path), entry.linkname))
                return _copied_digest(engine, container, target, hops - 1)
            if not entry.isfile():
                return "not a regular file"
            if entry.size > TOOL_LIMIT:
                return f"too large ({entry.size} bytes)"
            return hashlib.sha256(tar.extractfile(entry).read()).hexdigest()
    except tarfile.TarError:
        return MISSING

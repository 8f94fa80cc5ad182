"""The lab's Debian 13 root file system, built with debootstrap and cached by its package list.

It is the lab image's content (issue: labgen up) and the place where the rendered configs are
tested with the exact nginx, Apache, BIND and Unbound versions the lab runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from .errors import ToolError
from .kinds import KINDS

# The Debian release whose packages each render target describes.
SUITES = {"debian13": "trixie", "debian12": "bookworm"}
SUITE = SUITES["debian13"]  # the lab image
# Everything a lab host needs: what every host has, then every kind's packages (labgen.kinds),
# so one image serves all containers. Its cache key is the sorted list.
BASE = ("systemd", "systemd-sysv", "python3", "iproute2", "procps", "ca-certificates", "openssl",
        "openssh-server")
PACKAGES = tuple(dict.fromkeys(BASE + tuple(p for k in KINDS.values() for p in k.packages)))
# Run in the new root file system. Debian enables every service it installs; in the lab each
# host starts only its own, so all start disabled. Timers that would reach the network go too.
# Every container makes its own machine id and SSH host keys. A lab host never reaches the
# internet, so it trusts no public root, only the lab's own CA: the deploy's update-ca-certificates
# then handles one certificate (0.1 s) instead of Mozilla's 150 (0.9 s, on every host of a class).
SERVICES = tuple(u for k in KINDS.values() for u in k.disabled) + (
    "ssh", "ssh.socket", "apt-daily.timer", "apt-daily-upgrade.timer", "dpkg-db-backup.timer",
    "fstrim.timer", "systemd-pstore")
SETUP = (f"for unit in {' '.join(SERVICES)}; do systemctl disable --quiet $unit 2>/dev/null; done; "
         "rm -f /etc/ssh/ssh_host_*; : > /etc/machine-id; "
         "sed -i 's/^mozilla/!mozilla/' /etc/ca-certificates.conf; update-ca-certificates --fresh >/dev/null; "
         "apt-get clean; rm -rf /var/lib/apt/lists/* /var/log/*.log")


def cache_dir() -> Path:
    """$LABGEN_CACHE, else $XDG_CACHE_HOME/labgen, else ~/.cache/labgen. Delete it to clear."""
    if os.environ.get("LABGEN_CACHE"):
        return Path(os.environ["LABGEN_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "labgen"


def package_key(packages: tuple[str, ...] = PACKAGES, suite: str = SUITE) -> str:
    """A short digest of what goes into the root file system: it changes when the list or the
    setup does."""
    return hashlib.sha256(" ".join([suite, *sorted(packages), SETUP]).encode()).hexdigest()[:12]


def debian_mirror() -> str:
    """The Debian mirror this machine's apt uses ($LABGEN_MIRROR overrides it)."""
    if os.environ.get("LABGEN_MIRROR"):
        return os.environ["LABGEN_MIRROR"]
    sources = sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))
    for path in sources:
        for stanza in path.read_text(errors="replace").split("\n\n"):
            uris = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
            suites = re.search(r"^Suites:\s*(.+)$", stanza, re.M)
            if uris and suites and not any(s.endswith("-security") for s in suites.group(1).split()):
                return uris.group(1)
    listing = Path("/etc/apt/sources.list")
    if listing.exists():
        for line in listing.read_text(errors="replace").splitlines():
            match = re.match(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+(\S+)", line)
            if match and not match.group(2).endswith("-security"):
                return match.group(1)
    raise ToolError("no Debian mirror found in /etc/apt/sources.list(.d); set LABGEN_MIRROR")


def rootfs(*, suite: str = SUITE, packages: tuple[str, ...] = PACKAGES, log=print) -> Path:
    """The cached root file system for this package list; built with debootstrap when missing."""
    dest = cache_dir() / f"rootfs-{suite}-{package_key(packages, suite)}"
    if (dest / "etc" / "debian_version").exists():
        return dest
    if shutil.which("debootstrap") is None:
        raise ToolError("debootstrap is not installed: run 'apt-get install debootstrap' as root")
    if os.geteuid() != 0:
        raise ToolError("building the lab root file system needs root (debootstrap)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".rootfs-", dir=dest.parent))
    log(f"building the Debian {suite} root file system with debootstrap (about a minute)")
    cmd = ["debootstrap", "--variant=minbase", f"--include={','.join(packages)}", suite,
           str(work / "fs"), debian_mirror()]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        shutil.rmtree(work, ignore_errors=True)
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-5:])
        raise ToolError(f"debootstrap failed (exit {result.returncode}):\n{tail}")
    result = subprocess.run(["chroot", str(work / "fs"), "/bin/sh", "-c", SETUP],
                            capture_output=True, text=True)
    if result.returncode != 0:
        shutil.rmtree(work, ignore_errors=True)
        raise ToolError(f"setting up the root file system failed: {result.stderr.strip()}")
    os.rename(work / "fs", dest)
    shutil.rmtree(work, ignore_errors=True)
    return dest


def from_pristine(engine, image_ref: str, name: str, parts, read):
    """What read(root) finds in the lab image as built: a throwaway container of it that runs
    nothing and has no network, its file system read from outside through /proc/<pid>/root
    (never with the container's own tools). Cached per image and parts in the cache folder as
    <name>-<key>.json; delete the cache folder to read again."""
    key = hashlib.sha256(json.dumps([image_ref, name, parts]).encode()).hexdigest()[:16]
    cache = cache_dir() / f"{name}-{key}.json"
    try:
        return json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    container = f"labgen-pristine-{key}-{os.getpid()}"
    engine.run("run", "-d", "--rm", "--name", container, "--network", "none",
               "--entrypoint", "/usr/bin/sleep", image_ref, "120", timeout=120)
    try:
        pid = engine.run("inspect", "-f", "{{.State.Pid}}", container, timeout=60).stdout.strip()
        found = read(f"/proc/{pid}/root")
    finally:
        engine.run("rm", "-f", *(("-t", "0") if engine.name == "podman" else ()), container, check=False)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(found, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, cache)
    return found

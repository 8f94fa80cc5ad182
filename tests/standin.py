"""Stand-in machines on one machine, for the tests and the bench of a class spread over machines.

Each stand-in shares nothing with the others but a backbone network: it has its own network
namespace (its own interfaces, routes and firewall), reached only over a veth on a backbone
bridge; its own sshd there; and its own Podman (its own storage, networks and run state), served
over that SSH as a real machine's would be (`podman system service`, Podman's remote mode). This
machine sits on the backbone too, as a trainer's laptop would.

Run as root:  python tests/standin.py up 2 | down | stop NAME
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

BRIDGE = "lgstandin0"
NETWORK = "10.99.0"  # /24: this machine .1, stand-in n at .20+n
RUN = Path("/run/labgen-standin")
STATE = Path("/var/lib/labgen-standin")
KEY = STATE / "id_ed25519"


def name_of(n: int) -> str:
    return f"m{n}"


def address(n: int) -> str:
    return f"{NETWORK}.{20 + n}"


def socket(name: str) -> str:
    return str(RUN / name / "podman.sock")


def _sh(*cmd: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {result.stderr.strip()}")
    return result


def _netns(name: str) -> str:
    return f"labgen-standin-{name}"


def _podman_env(name: str) -> dict:
    return {**os.environ, "CONTAINERS_CONF": str(STATE / name / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(STATE / name / "storage.conf")}


def up(count: int) -> list[dict]:
    """Start `count` stand-in machines (kept if they run); their entries for a class file."""
    if not Path("/usr/sbin/sshd").exists():
        raise RuntimeError("the stand-ins need sshd: apt-get install openssh-server")
    STATE.mkdir(parents=True, exist_ok=True)
    if not KEY.exists():
        _sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "labgen-standin", "-f", str(KEY))
    if _sh("ip", "link", "show", BRIDGE, check=False).returncode != 0:
        _sh("ip", "link", "add", BRIDGE, "type", "bridge")
        _sh("ip", "addr", "add", f"{NETWORK}.1/24", "dev", BRIDGE)
        _sh("ip", "link", "set", BRIDGE, "up")
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation folder
    entries = []
    for n in range(1, count + 1):
        name = name_of(n)
        _machine(name, address(n))
        entries.append({"name": name, "ssh": f"root@{address(n)}", "key": str(KEY), "socket": socket(name)})
    _known_hosts([address(n) for n in range(1, count + 1)])
    return entries


def _machine(name: str, addr: str) -> None:
    ns, run, state = _netns(name), RUN / name, STATE / name
    if _sh("ip", "netns", "pids", ns, check=False).returncode != 0:
        _sh("ip", "netns", "add", ns)
        _sh("ip", "link", "add", f"lgs-{name}", "type", "veth", "peer", "name", "eth0", "netns", ns)
        _sh("ip", "link", "set", f"lgs-{name}", "master", BRIDGE, "up")
        _sh("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0")
        _sh("ip", "-n", ns, "link", "set", "eth0", "up")
        _sh("ip", "-n", ns, "link", "set", "lo", "up")
    _sh("ip", "link", "set", f"lgs-{name}", "up")
    run.mkdir(parents=True, exist_ok=True)
    (state / "networks").mkdir(parents=True, exist_ok=True)
    (run / "tmp").mkdir(exist_ok=True)
    # Its own Podman: the same runtime and limits as labgen's containers.conf, its own storage.
    (state / "containers.conf").write_text(
        '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]\n'
        f'[engine]\nruntime = "runc"\ntmp_dir = "{run}/tmp"\nevents_logger = "file"\n'
        f'[network]\nnetwork_config_dir = "{state}/networks"\n')
    (state / "storage.conf").write_text(
        f'[storage]\ndriver = "overlay"\ngraphroot = "{state}/storage"\nrunroot = "{run}/runroot"\n')
    (state / "authorized_keys").write_text(Path(f"{KEY}.pub").read_text())
    os.chmod(state / "authorized_keys", 0o600)
    # nsenter --net, not `ip netns exec`: that remounts /sys and hides the cgroup mounts.
    enter = ("nsenter", f"--net=/run/netns/{ns}")
    if not _alive(run / "sshd.pid"):
        _sh(*enter, "/usr/sbin/sshd", "-o", f"ListenAddress={addr}", "-o", f"PidFile={run}/sshd.pid",
            "-o", "PermitRootLogin=prohibit-password", "-o", f"AuthorizedKeysFile={state}/authorized_keys",
            "-o", "PasswordAuthentication=no")
    if not _alive(run / "podman.pid"):
        log = open(run / "service.log", "ab")
        proc = subprocess.Popen([*enter, "podman", "system", "service", "-t", "0", f"unix://{socket(name)}"],
                                env=_podman_env(name), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                start_new_session=True, cwd="/")
        (run / "podman.pid").write_text(str(proc.pid))
        for _ in range(50):
            if Path(socket(name)).exists():
                break
            time.sleep(0.1)


def _alive(pidfile: Path) -> bool:
    try:
        os.kill(int(pidfile.read_text().split()[0]), 0)
        return True
    except (OSError, ValueError):
        return False


def _known_hosts(addresses: list[str]) -> None:
    """Podman's remote mode checks ~/.ssh/known_hosts: the stand-ins' keys go there (again)."""
    known = Path.home() / ".ssh" / "known_hosts"
    known.parent.mkdir(mode=0o700, exist_ok=True)
    for addr in addresses:
        if known.exists():
            _sh("ssh-keygen", "-R", addr, "-f", str(known), check=False)
    found = _sh("ssh-keyscan", *addresses).stdout
    with known.open("a") as f:
        f.write(found)


def stop(name: str) -> None:
    """The machine goes away: its containers stop, its Podman and sshd end, its link goes down."""
    _sh("podman", "stop", "-a", "-t", "2", env=_podman_env(name), check=False, cwd="/")
    for pidfile in (RUN / name / "podman.pid", RUN / name / "sshd.pid"):
        if _alive(pidfile):
            os.kill(int(pidfile.read_text().split()[0]), signal.SIGTERM)
    _sh("ip", "link", "set", f"lgs-{name}", "down", check=False)


def down() -> None:
    """Every stand-in gone, with its containers, storage and namespace."""
    for path in sorted(RUN.glob("m*")) if RUN.exists() else []:
        name = path.name
        stop(name)
        _sh("podman", "rm", "-af", "-t", "0", env=_podman_env(name), check=False, cwd="/")
        _sh("podman", "rmi", "-af", env=_podman_env(name), check=False, cwd="/")
        for line in reversed(Path("/proc/mounts").read_text().splitlines()):  # what Podman left mounted
            if f" {STATE / name}/" in line or f" {RUN / name}/" in line:
                _sh("umount", "-l", line.split()[1], check=False)
        _sh("ip", "netns", "del", _netns(name), check=False)
        _sh("ip", "link", "del", f"lgs-{name}", check=False)
        shutil.rmtree(path, ignore_errors=True)
        shutil.rmtree(STATE / name, ignore_errors=True)
    _sh("ip", "link", "del", BRIDGE, check=False)


if __name__ == "__main__":
    what = sys.argv[1:] or ["up", "2"]
    if what[0] == "up":
        for entry in up(int(what[1]) if len(what) > 1 else 2):
            print(entry)
    elif what[0] == "stop":
        stop(what[1])
    else:
        down()

"""Helpers shared by the test tiers (a plain module: conftest names collide across folders)."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import yaml

# A fixed clock for renders whose bytes are compared (security.txt Expires, zone serial).
FIXED_NOW = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.timezone.utc)


def run(cmd: list[str] | str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, shell=isinstance(cmd, str), **kwargs)


def write_lab(folder: Path, data: dict) -> Path:
    """Write a lab file (a dict) into folder/lab.yml."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "lab.yml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


# A listener that accepts on ports 80 and 443 (both families) and never answers: a stalled web
# server. Run on a lab host with python3 (the lab image has it); tests and bench_verify use it.
STALL_LISTENER = ("import os,socket,threading,time\n"
                  "open('/root/stall.pid','w').write(str(os.getpid()))\n"
                  "def serve(f,a,p):\n"
                  " s=socket.socket(f);s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
                  " f==socket.AF_INET6 and s.setsockopt(socket.IPPROTO_IPV6,socket.IPV6_V6ONLY,1)\n"
                  " s.bind((a,p));s.listen(50);h=[]\n"
                  " while True: h.append(s.accept())\n"
                  "for f,a in ((socket.AF_INET,'0.0.0.0'),(socket.AF_INET6,'::')):\n"
                  " for p in (80,443): threading.Thread(target=serve,args=(f,a,p),daemon=True).start()\n"
                  "time.sleep(600)\n")


def stall_script(service: str) -> str:
    """Shell for the web host: stop its server and put the stalled listener in its place."""
    return (f"cat > /root/stall.py <<'EOF'\n{STALL_LISTENER}EOF\nsystemctl stop {service}; "
            "(setsid python3 /root/stall.py >/dev/null 2>&1 &); sleep 1")


def unstall_script(service: str) -> str:
    return f"kill $(cat /root/stall.pid); rm -f /root/stall.py /root/stall.pid; systemctl start {service}"


def until_solved(check, limit: float, every: float, never=("not secure",)):
    """A drill's grade, asked every `every` s (check() runs `labgen exercise check`) until it is
    solved or `limit` s passed since now; a text of `never` in a grade fails at once. Returns the
    last result and the seconds it took."""
    import time

    begun = time.monotonic()
    while True:
        checked = check()
        if checked.returncode == 0 or time.monotonic() - begun > limit:
            return checked, time.monotonic() - begun
        assert not any(text in checked.stdout for text in never), checked.stdout
        time.sleep(every)

"""The class's grading service as a process (classroom/service.py is the service itself):
started in the background by class up unless one runs, stopped by class down; its pid, log and
the trainer's board link with its token."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from .. import pki
from ..errors import LabgenError
from . import access, placement
from .spec import Class


def token(folder: Path) -> str:
    """The trainer's board token: made once per class build, kept 0600."""
    path = access.service_dir(folder) / "token"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        pki.write_private(path, secrets.token_urlsafe(24).encode())
    return path.read_text(encoding="utf-8").strip()


def board_url(klass: Class, folder: Path) -> str:
    """Every access container publishes the board: the link names the first student's machine."""
    first = placement.where(klass, folder, klass.students[0].name)
    return f"http://{access.host(klass, first)}:{klass.access.board_port}/board/{token(folder)}"


def socket_file(folder: Path) -> Path:
    return access.socket_dir(folder) / access.SOCKET


def pid_file(folder: Path) -> Path:
    return access.service_dir(folder) / "service.pid"


def log_file(folder: Path) -> Path:
    return access.service_dir(folder) / "service.log"


def running(folder: Path) -> int | None:
    """The pid of this class's running service, if one runs."""
    try:
        pid = int(pid_file(folder).read_text(encoding="utf-8"))
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None
    return pid if b"serve" in command and b"labgen" in command else None


def start(config: Path, out: Path, klass: Class) -> str:
    """In the background, unless it already runs (class up); its log says who asked what."""
    folder = out / klass.name
    if pid := running(folder):
        return f"running (pid {pid})"
    access.make_socket_dir(folder)
    with open(log_file(folder), "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "labgen", "class", "serve", "--background",
                                 "-c", str(config), "-o", str(out)], stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    socket_path = socket_file(folder)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_file(folder).read_text(encoding="utf-8", errors="replace").strip().splitlines()[-1:]
            raise LabgenError(f"the grading service did not start: {' '.join(tail)}")
        if socket_path.exists():
            return f"started (pid {proc.pid})"
        time.sleep(0.1)
    raise LabgenError(f"the grading service did not start within 15 s; see {log_file(folder)}")


def stop(out: Path, klass: Class) -> bool:
    folder = out / klass.name
    pid = running(folder)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and running(folder):
        time.sleep(0.1)
    if running(folder):  # with its SSH tunnels: class up starts it leading a group of its own
        try:
            os.killpg(pid, signal.SIGKILL) if os.getpgid(pid) == pid else os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    pid_file(folder).unlink(missing_ok=True)
    return True

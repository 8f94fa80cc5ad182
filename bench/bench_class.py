"""Classes of 1, 5, 10 and 30 students (image cached): `labgen class up` from nothing, the
memory of all the class's containers (podman stats) in all and per student, the access layer
(the access container and the grading service), `lab check` typed on one workstation, then on
every workstation at once (each answered? the longest wait), `labgen class verify`, and a second
`class up` (nothing to change), and `labgen up --student s01` after that student's nginx
config drifted (a change to that student alone). Each class is taken down afterwards.

Aims for 30 students (one ansible-playbook run for the whole class): up within 5 minutes,
under 200 MiB per student, verify within 2 minutes, a re-up that changes nothing within 1
minute, that one student's re-up within 15 s; the access layer at most 10 MB per student; `lab check` within 10 s; 30 students
checking at once all answered. For 100 students on one machine: memory within 12 GB, up time
reported.

Run as root: .venv/bin/python bench/bench_class.py [--sizes 1,10,30,100]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from bench_up import UNITS, memory_mb  # noqa: E402 - the same reading of podman stats

from labgen.classroom import service
from labgen.engine import Engine


def container_mb(engine: Engine, name: str) -> float:
    out = engine.run("stats", "--no-stream", "--format", "{{.MemUsage}}", name).stdout
    match = re.match(r"([\d.]+)([kMG]?B) /", out.strip())
    return float(match.group(1)) * UNITS[match.group(2)] / 1e6 if match else float("nan")


def labgen(config: Path, *args: str) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "labgen", *args, "-c", str(config)],
                            capture_output=True, text=True)
    return time.perf_counter() - start, result


def lab_check(engine: Engine, container: str) -> tuple[float, bool]:
    """`lab check` typed on a workstation: seconds until the answer, and whether one came."""
    start = time.perf_counter()
    result = engine.run("exec", container, "lab", "check", check=False, timeout=900)
    return time.perf_counter() - start, result.returncode in (0, 1) and "after you asked)" in result.stdout


def service_mb(folder: Path) -> float:
    pid = service.running(folder)
    status = Path(f"/proc/{pid}/status").read_text() if pid else ""
    found = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(found.group(1)) * 1024 / 1e6 if found else float("nan")


def one(size: int, folder: Path, up_only: bool = False) -> str:
    config = folder / "class.yml"
    config.write_text(yaml.safe_dump({"name": "cbench", "students": size, "access": {"listen": "127.0.0.1"},
                                      "network": {"ipv4": "10.140.0.0/16", "ipv6": "2001:db8:140::/48"}}))
    labgen(config, "class", "down")
    try:
        up, result = labgen(config, "class", "up")
        if result.returncode != 0:
            return f"{size:>8}  class up failed: {(result.stderr or result.stdout).strip()[-300:]}"
        memory = memory_mb(Engine("podman"), "cbench")
        if up_only:
            return f"{size:>8}  {up:>9.1f} s  {memory:>8.0f} MB  {memory / size:>8.0f} MB"
        # The access layer: the access container (sshd runs only once a student connects) and
        # the grading service on the trainer's machine.
        engine = Engine("podman")
        access = container_mb(engine, "labgen-cbench-access") + service_mb(folder / "build" / "cbench")
        clients = [f"labgen-cbench-s{n:02d}-client" for n in range(1, size + 1)]
        single, _ = lab_check(engine, clients[0])
        with ThreadPoolExecutor(max_workers=size) as pool:
            together = list(pool.map(lambda c: lab_check(engine, c), clients))
        answered, longest = sum(ok for _, ok in together), max(t for t, _ in together)
        verify, result = labgen(config, "class", "verify")
        verdict = "all pass" if result.returncode == 0 else "FAILURES"
        again, _ = labgen(config, "class", "up")
        # One student's nginx config drifts (as a student's edit would): a re-up of that student.
        engine.exec("labgen-cbench-s01-nginx", "sh", "-c", "echo '# drift' >> /etc/nginx/nginx.conf")
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "labgen", "up", "--student", "s01", "-c", str(config)],
                                capture_output=True, text=True)
        one_up = time.perf_counter() - start if result.returncode == 0 else float("nan")
        return (f"{size:>8}  {up:>9.1f} s  {memory:>8.0f} MB  {memory / size:>8.0f} MB  "
                f"{access / size:>8.1f} MB  {single:>8.1f} s  {answered:>3}/{size:<3} {longest:>7.1f} s  "
                f"{verify:>8.1f} s ({verdict})  {again:>8.1f} s  {one_up:>8.1f} s")
    finally:
        labgen(config, "class", "down")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,10,30,100")
    parser.add_argument("--up-only", action="store_true", help="time class up and take the memory only")
    args = parser.parse_args()
    print(f"{'students':>8}  {'class up':>11}  {'memory':>11}  {'/student':>11}  {'access/st.':>11}  "
          f"{'lab check':>11}  {'all at once, longest':>20}  {'class verify':>21}  {'re-up':>10}  {'one student':>10}", flush=True)
    with tempfile.TemporaryDirectory(prefix="labgen-bench-class-") as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            print(one(size, Path(tmp), args.up_only), flush=True)


if __name__ == "__main__":
    main()

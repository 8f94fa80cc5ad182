"""Classes of 1, 5, 10 and 30 students (image cached): `labgen class up` from nothing, the
memory of all the class's containers (podman stats) in all and per student, `labgen class
verify`, and a second `class up` (nothing to change). Each class is taken down afterwards.

Aims for 30 students: up within 10 minutes, under 200 MiB per student, verify within 3
minutes, a re-up within 2 minutes; the access layer (SSH entry) at most 10 MB per student.

Run as root: .venv/bin/python bench/bench_class.py [--sizes 1,5,10,30]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from bench_up import UNITS, memory_mb  # noqa: E402 - the same reading of podman stats

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


def one(size: int, folder: Path) -> str:
    config = folder / "class.yml"
    config.write_text(yaml.safe_dump({"name": "cbench", "students": size, "access": {"listen": "127.0.0.1"},
                                      "network": {"ipv4": "10.140.0.0/16", "ipv6": "2001:db8:140::/48"}}))
    labgen(config, "class", "down")
    try:
        up, result = labgen(config, "class", "up")
        if result.returncode != 0:
            return f"{size:>8}  class up failed: {(result.stderr or result.stdout).strip()[-300:]}"
        memory = memory_mb(Engine("podman"), "cbench")
        # The access layer: the access container (sshd runs only once a student connects).
        access = container_mb(Engine("podman"), "labgen-cbench-access")
        verify, result = labgen(config, "class", "verify")
        verdict = "all pass" if result.returncode == 0 else "FAILURES"
        again, _ = labgen(config, "class", "up")
        return (f"{size:>8}  {up:>9.1f} s  {memory:>8.0f} MB  {memory / size:>8.0f} MB  "
                f"{access / size:>8.1f} MB  {verify:>8.1f} s ({verdict})  {again:>8.1f} s")
    finally:
        labgen(config, "class", "down")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,5,10,30")
    args = parser.parse_args()
    print(f"{'students':>8}  {'class up':>11}  {'memory':>11}  {'/student':>11}  {'access/st.':>11}  "
          f"{'class verify':>21}  {'re-up':>10}", flush=True)
    with tempfile.TemporaryDirectory(prefix="labgen-bench-class-") as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            print(one(size, Path(tmp)), flush=True)


if __name__ == "__main__":
    main()

"""Time `labgen verify` on the default lab (its own name and subnets): median over several runs.

Brings the lab up first (not timed), then runs the CLI as a student would, each run a fresh
process, and takes it down again unless --keep. Aim (issue 4): under 15 s on 2 cores.

Run as root: .venv/bin/python bench/bench_verify.py [--runs 5] [--keep]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from labgen import lifecycle
from labgen.engine import Engine
from labgen.spec import load

LAB = {"name": "bench", "network": {"ipv4": "192.168.78.0/24", "ipv6": "2001:db8:79::/64"}}
AIM = 15.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="leave the lab running afterwards")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="labgen-bench-verify-"))
    config = folder / "lab.yml"
    config.write_text(yaml.safe_dump(LAB), encoding="utf-8")
    lab, engine = load(config), Engine("podman")
    lifecycle.up(lab, folder / "build", engine, log=lambda _: None)
    try:
        samples, checks = [], 0
        for _ in range(args.runs):
            start = time.perf_counter()
            result = subprocess.run([sys.executable, "-m", "labgen", "verify", "-c", str(config)], capture_output=True, text=True)
            samples.append(time.perf_counter() - start)
            if result.returncode != 0:
                sys.exit(f"verify failed (exit {result.returncode}):\n{result.stdout}{result.stderr}")
            checks = result.stdout.count("    PASS  ")
        median = statistics.median(samples)
        print(f"labgen verify, default lab ({checks} scorecard rows)  median {median:.1f} s   "
              f"(min {min(samples):.1f}, max {max(samples):.1f}, {len(samples)} runs)   "
              f"aim < {AIM:.0f} s: {'met' if median < AIM else 'MISSED'}")
    finally:
        if not args.keep:
            lifecycle.down(lab.name, engine)


if __name__ == "__main__":
    main()

"""Time `labgen verify` on the default lab (its own name and subnets): median over several runs.

Brings the lab up first (not timed), then runs the CLI as a student would, each run a fresh
process, and takes it down again unless --keep. Aim (issue 4): under 15 s on 2 cores.

With --stalled, then the same with nginx replaced by a listener that accepts on 80 and 443 and
never answers (issue 18: a stalled server must cost verify under 30 s).

Run as root: .venv/bin/python bench/bench_verify.py [--runs 5] [--keep] [--stalled]
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from labtest import stall_script, unstall_script  # noqa: E402

from labgen import lifecycle
from labgen.engine import Engine
from labgen.spec import load

LAB = {"name": "bench", "network": {"ipv4": "192.168.78.0/24", "ipv6": "2001:db8:79::/64"}}
AIM = 15.0
STALLED_AIM = 30.0


def timed(config: Path, runs: int, expect: int) -> tuple[list[float], str]:
    samples, out = [], ""
    for _ in range(runs):
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "labgen", "verify", "-c", str(config)],
                                capture_output=True, text=True)
        samples.append(time.perf_counter() - start)
        if result.returncode != expect:
            sys.exit(f"verify exited {result.returncode}, expected {expect}:\n{result.stdout}{result.stderr}")
        out = result.stdout
    return samples, out


def line(what: str, samples: list[float], aim: float) -> str:
    median = statistics.median(samples)
    return (f"{what}  median {median:.1f} s   (min {min(samples):.1f}, max {max(samples):.1f}, "
            f"{len(samples)} runs)   aim < {aim:.0f} s: {'met' if median < aim else 'MISSED'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="leave the lab running afterwards")
    parser.add_argument("--stalled", action="store_true", help="also time verify against a stalled nginx")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="labgen-bench-verify-"))
    config = folder / "lab.yml"
    config.write_text(yaml.safe_dump(LAB), encoding="utf-8")
    lab, engine = load(config), Engine("podman")
    lifecycle.up(lab, folder / "build", engine, log=lambda _: None)
    try:
        samples, out = timed(config, args.runs, 0)
        print(line(f"labgen verify, default lab ({out.count('    PASS  ')} scorecard rows)", samples, AIM))
        if args.stalled:
            container = lab.container(lab.web[0])
            engine.run("exec", container, "sh", "-c", stall_script("nginx"))
            try:
                samples, _ = timed(config, args.runs, 1)
                print(line("labgen verify, nginx stalled (accepts, never answers)", samples, STALLED_AIM))
            finally:
                engine.run("exec", container, "sh", "-c", unstall_script("nginx"), check=False)
    finally:
        if not args.keep:
            lifecycle.down(lab.name, engine)


if __name__ == "__main__":
    main()

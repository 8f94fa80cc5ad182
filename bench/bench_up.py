"""Time labgen up / down on the default lab (its own name and subnets): medians over several runs.

- cold image: debootstrap into an empty cache plus `podman import` (the CI route);
- warm up: from nothing (no containers, no build) with the image cached;
- re-up: the idempotent second `up` (changed = 0);
- down: removing the lab's containers and network;
- memory: what the running lab's containers use (podman stats), summed.

Run as root: .venv/bin/python bench/bench_up.py [--runs 3] [--cold-runs 1]
A cold run deletes the lab image and builds it again in a temporary cache.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from labgen import deploy, image, lifecycle
from labgen.engine import Engine, image_tag
from labgen.spec import parse

LAB = {"name": "bench", "network": {"ipv4": "192.168.78.0/24", "ipv6": "2001:db8:79::/64"}}
UNITS = {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def memory_mb(engine: Engine, lab_name: str) -> float:
    out = engine.run("stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}").stdout
    total = 0.0
    for line in out.splitlines():
        match = re.match(rf"labgen-{lab_name}-\S+ ([\d.]+)([kMG]?B) /", line)
        if match:
            total += float(match.group(1)) * UNITS[match.group(2)]
    return total / 1e6


def report(name: str, samples: list[float]) -> None:
    print(f"{name:<34} median {statistics.median(samples):7.1f} s   "
          f"(min {min(samples):.1f}, max {max(samples):.1f}, {len(samples)} runs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cold-runs", type=int, default=1)
    args = parser.parse_args()
    engine = Engine("podman")
    suite = image.SUITES["debian13"]
    quiet = lambda _msg: None  # noqa: E731

    cold = []
    for _ in range(args.cold_runs):
        engine.run("rmi", "-f", image_tag(suite), check=False)
        with tempfile.TemporaryDirectory(prefix="labgen-bench-cache-") as cache:
            os.environ["LABGEN_CACHE"] = cache
            cold.append(timed(engine.ensure_image, suite, log=quiet)[0])
            del os.environ["LABGEN_CACHE"]
    engine.ensure_image(suite, log=quiet)  # from the normal cache, if the runs above removed it

    lab = parse(LAB, "bench")
    warm, again, down, memory = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="labgen-bench-") as tmp:
        out = Path(tmp)
        lifecycle.down(lab.name, engine)
        for _ in range(args.runs):
            shutil.rmtree(out / lab.name, ignore_errors=True)
            warm.append(timed(lifecycle.up, lab, out, engine, log=quiet)[0])
            time.sleep(5)  # let the services settle before reading their memory
            memory.append(memory_mb(engine, lab.name))
            seconds, stats = timed(lifecycle.up, lab, out, engine, log=quiet)
            assert deploy.changed(stats) == 0, stats
            again.append(seconds)
            down.append(timed(lifecycle.down, lab.name, engine)[0])
    if cold:
        report("cold image build (debootstrap)", cold)
    report("warm up from nothing", warm)
    report("idempotent re-up", again)
    report("down", down)
    print(f"{'memory of the running lab':<34} median {statistics.median(memory):7.1f} MB "
          f"({len(lab.hosts)} containers)")


if __name__ == "__main__":
    main()

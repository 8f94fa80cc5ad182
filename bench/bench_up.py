"""Time labgen up / down on the default lab (its own name and subnets): medians over several runs.

- cold image: debootstrap into an empty cache plus `podman import` (the CI route);
- warm up: from nothing (no containers, no build) with the image cached;
- re-up: the idempotent second `up` (changed = 0);
- one change: an `up` after one rendered file of one server changed (what a template change
  does to the nginx site): only that host may change, so only its service reloads;
- down: removing the lab's containers and network;
- memory: what the running lab's containers use (podman stats), summed;
- scaling (--scale 2,5,10): labs with that many web servers (nginx and Apache in turn), the
  deploy step alone from nothing and again with nothing to change, per host.

Each `up` also reports the deploy step alone (ansible-playbook through ansible-runner).

Run as root: .venv/bin/python bench/bench_up.py [--runs 5] [--cold-runs 0] [--scale 2,5,10]
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
DEPLOYS: list[float] = []  # the deploy step of every up, in order


def _timed_playbook(run=deploy.run_playbook):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return run(*args, **kwargs)
        finally:
            DEPLOYS.append(time.perf_counter() - start)
    return wrapper


deploy.run_playbook = _timed_playbook()


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


def report(name: str, samples: list[float], unit: str = "s") -> None:
    print(f"{name:<44} median {statistics.median(samples):7.2f} {unit}   "
          f"(min {min(samples):.2f}, max {max(samples):.2f}, {len(samples)} runs)", flush=True)


def touch_one_server(build: Path, lab) -> str:
    """Change the nginx site as a template change would (a comment line): returns the host."""
    host = next(h for h in lab.web if h.software == "nginx")
    site = build / "hosts" / host.name / f"etc/nginx/conf.d/{host.fqdn}.conf"
    site.write_text(site.read_text() + f"# bench {time.time()}\n")
    return host.name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cold-runs", type=int, default=0)
    parser.add_argument("--scale", default="2,5,10", help="web servers per lab, '' for none")
    parser.add_argument("--scale-runs", type=int, default=3)
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
    warm, again, one, down, memory = [], [], [], [], []
    warm_deploy, again_deploy, one_deploy = [], [], []
    with tempfile.TemporaryDirectory(prefix="labgen-bench-") as tmp:
        out = Path(tmp)
        lifecycle.down(lab.name, engine)
        for _ in range(args.runs):
            shutil.rmtree(out / lab.name, ignore_errors=True)
            warm.append(timed(lifecycle.up, lab, out, engine, log=quiet)[0])
            warm_deploy.append(DEPLOYS[-1])
            time.sleep(5)  # let the services settle before reading their memory
            memory.append(memory_mb(engine, lab.name))
            seconds, stats = timed(lifecycle.up, lab, out, engine, log=quiet)
            assert deploy.changed(stats) == 0, stats
            again.append(seconds)
            again_deploy.append(DEPLOYS[-1])
            host = touch_one_server(out / lab.name, lab)
            seconds, stats = timed(lifecycle.up, lab, out, engine, log=quiet)
            changed = {h: n for h, n in (stats.get("changed") or {}).items() if n}
            assert set(changed) == {host}, f"only {host} should change (and reload): {changed}"
            one.append(seconds)
            one_deploy.append(DEPLOYS[-1])
            down.append(timed(lifecycle.down, lab.name, engine)[0])
    if cold:
        report("cold image build (debootstrap)", cold)
    report("warm up from nothing", warm)
    report("  of which the deploy", warm_deploy)
    report("idempotent re-up", again)
    report("  of which the deploy", again_deploy)
    report("up after one server's file changed", one)
    report("  of which the deploy", one_deploy)
    report("down", down)
    print(f"{'memory of the running lab':<44} median {statistics.median(memory):7.1f} MB "
          f"({len(lab.hosts)} containers)", flush=True)

    for web in [int(n) for n in args.scale.split(",") if n.strip()]:
        servers = [{"name": f"www{i + 1}", "software": ("nginx", "apache")[i % 2]} for i in range(web)]
        big = parse({**LAB, "servers": servers}, "bench")
        first, noop = [], []
        with tempfile.TemporaryDirectory(prefix="labgen-bench-") as tmp:
            for _ in range(args.scale_runs):
                lifecycle.down(big.name, engine)
                lifecycle.up(big, Path(tmp), engine, log=quiet)
                first.append(DEPLOYS[-1])
                lifecycle.up(big, Path(tmp), engine, log=quiet)
                noop.append(DEPLOYS[-1])
            lifecycle.down(big.name, engine)
        hosts = len(big.hosts)
        report(f"{web} web servers ({hosts} hosts): first deploy", first)
        report("  per host", [s / hosts for s in first])
        report(f"{web} web servers ({hosts} hosts): no-change deploy", noop)
        report("  per host", [s / hosts for s in noop])


if __name__ == "__main__":
    main()

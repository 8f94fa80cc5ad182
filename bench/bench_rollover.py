"""Key rollovers on a lab BIND signs (image cached): the wall time of each drill done by the
book (the model student steps, then `labgen exercise check` every 5 s until solved) at a pace,
with the answers the probe recorded as not secure (aim: 0); then the probe's continuous watch
alone for 60 s: questions per second and the CPU it costs on the probe.

Aims at the lesson pace: a ZSK roll within 5 minutes, a KSK roll within 10.

Run as root: .venv/bin/python bench/bench_rollover.py [--pace lesson|test] [--picture docs/rollover.png]
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

from labgen import lifecycle
from labgen.engine import Engine
from labgen.exercises import catalogue
from labgen.exercises.faults import run_steps
from labgen.spec import load

LABS = {"ksk-zsk": {"name": "benchroll", "network": {"ipv4": "10.152.0.0/24", "ipv6": "2001:db8:152::/64"}},
        "csk": {"name": "benchcsk", "network": {"ipv4": "10.153.0.0/24", "ipv6": "2001:db8:153::/64"}}}
LIMIT = 1800  # seconds a drill may take
DRAW = {"lesson": 420, "test": 100}  # seconds the picture of a KSK roll covers


def labgen(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "labgen", *args, "-c", str(config)],
                          capture_output=True, text=True)


def cpu_seconds(engine: Engine, container: str) -> float:
    """CPU time of everything in the container so far, from its cgroup on this machine (v2's
    cpu.stat, or v1's cpuacct.usage)."""
    pid = engine.run("inspect", "--format", "{{.State.Pid}}", container).stdout.strip()
    lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    v1 = next((line.split(":", 2)[2] for line in lines if ":cpuacct:" in line or ":cpu,cpuacct:" in line), None)
    if v1 is not None:
        return int(Path("/sys/fs/cgroup/cpuacct", v1.lstrip("/"), "cpuacct.usage").read_text()) / 1e9
    path = next(line for line in lines if line.startswith("0::")).split("::", 1)[1]
    stat = Path("/sys/fs/cgroup", path.lstrip("/"), "cpu.stat").read_text()
    return int(re.search(r"usage_usec (\d+)", stat).group(1)) / 1e6


def drills(keys: str, pace: str, folder: Path, picture: Path | None = None):
    """Yields one line per measure, as it is taken."""
    data = {**LABS[keys], "dnssec": {"signer": "bind", "pace": pace, "keys": keys}}
    config = folder / f"{data['name']}.yml"
    config.write_text(yaml.safe_dump(data))
    lab, engine = load(config), Engine("podman")
    lifecycle.down(lab.name, engine)
    try:
        start = time.perf_counter()
        lifecycle.up(lab, folder / "build", engine, log=lambda _: None)
        yield (f"{keys} lab at the {pace} pace: up in {time.perf_counter() - start:.1f} s")
        for exercise in catalogue().values():
            if not exercise.drill or exercise.not_applicable(lab):
                continue
            assert labgen(config, "exercise", "start", exercise.id).returncode == 0
            drawing = None
            if exercise.drill == "ksk" and picture:  # labgen watch draws the KSK roll beside it
                drawing = subprocess.Popen([sys.executable, "-m", "labgen", "watch", "--seconds", str(DRAW[pace]),
                                            "--html", str(folder / "roll.html"), "-c", str(config)],
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            begun = time.perf_counter()
            run_steps(lab, folder / "build" / lab.name, engine, exercise, exercise.student)
            while True:
                checked = labgen(config, "exercise", "check", exercise.id)
                if checked.returncode == 0 or time.perf_counter() - begun > LIMIT:
                    break
                time.sleep(5)
            took = time.perf_counter() - begun
            if drawing:
                drawing.wait()
                shot = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu",
                                       "--host-resolver-rules=MAP * ~NOTFOUND", "--window-size=1200,900",
                                       f"--screenshot={picture}", (folder / "roll.html").as_uri()],
                                      capture_output=True, text=True)
                yield (f"  the KSK roll's timeline: {picture}" if shot.returncode == 0 else
                             f"  no picture: {shot.stderr.strip()[-200:]}")
            failures = re.search(r"(\d+) answers were not secure", checked.stdout)
            yield (f"  {exercise.id}: {'solved' if checked.returncode == 0 else 'NOT solved'} "
                         f"{took:.0f} s after the roll began ({took / 60:.1f} min); answers not secure: "
                         f"{failures.group(1) if failures else 0}")
        if keys == "ksk-zsk":
            probe = lab.container(lab.role("probe"))
            before = cpu_seconds(engine, probe)
            result = labgen(config, "watch", "--seconds", "60")
            used = cpu_seconds(engine, probe) - before
            found = re.search(r"(\d+) rounds, (\d+) answers, (\d+) not secure", result.stdout)
            rounds, answers, bad = map(int, found.groups())
            yield (f"  watch for 60 s: {rounds} rounds, {answers / 60:.1f} questions per second, "
                         f"{bad} not secure; probe CPU {used:.1f} s ({100 * used / 60:.1f} % of one core)")
    finally:
        lifecycle.down(lab.name, engine)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pace", default="lesson", choices=["lesson", "test"])
    parser.add_argument("--picture", type=Path, help="also draw the KSK roll (labgen watch --html) "
                        "and save Chromium's screenshot of it here (a .png)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="labgen-bench-roll-") as tmp:
        for keys in ("ksk-zsk", "csk"):
            for line in drills(keys, args.pace, Path(tmp), args.picture and args.picture.resolve()):
                print(line, flush=True)


if __name__ == "__main__":
    main()

"""Certificates from the lab's ACME CA (image cached): the whole `labgen up` from nothing with
`certificates: acme` against the same lab with `lab-ca` (aim: at most 5 s more), a renewal (same
key) and a key roll per web server, and the TLS key roll drill done by the book (the model
student steps, then `labgen exercise check` every 5 s until solved) with the DANE failures the
probe recorded (aim: 0), at a pace.

Run as root: .venv/bin/python bench/bench_acme.py [--pace test|lesson] [--runs 3]
"""

from __future__ import annotations

import argparse
import re
import statistics
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

NETWORK = {"ipv4": "10.154.0.0/24", "ipv6": "2001:db8:154::/64"}
LIMIT = 1800  # seconds the drill may take


def labgen(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "labgen", *args, "-c", str(config)],
                          capture_output=True, text=True)


def lab_file(folder: Path, issuer: str, pace: str) -> Path:
    certificates = {"issuer": "acme", "lifetime": pace} if issuer == "acme" else "lab-ca"
    config = folder / f"{issuer}.yml"
    config.write_text(yaml.safe_dump({"name": "benchacme", "network": NETWORK, "certificates": certificates,
                                      "dnssec": {"signer": "bind", "pace": pace}}))
    return config


def up_from_nothing(config: Path) -> float:
    lab, engine = load(config), Engine("podman")
    lifecycle.down(lab.name, engine)
    begun = time.monotonic()
    result = labgen(config, "up")
    took = time.monotonic() - begun
    if result.returncode != 0:
        raise SystemExit(f"labgen up failed:\n{result.stdout}\n{result.stderr}")
    return took


def on(config: Path, host: str, command: str) -> float:
    lab, engine = load(config), Engine("podman")
    begun = time.monotonic()
    result = engine.exec(lab.container(next(h for h in lab.hosts if h.name == host)), "sh", "-c", command,
                         timeout=600)
    if result.returncode != 0:
        raise SystemExit(f"{host}: {command} failed: {result.stderr}")
    return time.monotonic() - begun


def drill(config: Path) -> tuple[float, str]:
    lab, engine = load(config), Engine("podman")
    exercise = next(e for e in catalogue().values() if e.drill == "tls")
    started = labgen(config, "exercise", "start", exercise.id)
    if started.returncode != 0:
        raise SystemExit(started.stdout + started.stderr)
    begun = time.monotonic()
    run_steps(lab, config.parent / "build" / lab.name, engine, exercise, exercise.student)
    while True:
        checked = labgen(config, "exercise", "check", exercise.id)
        if checked.returncode == 0 or time.monotonic() - begun > LIMIT:
            break
        if "not secure" in checked.stdout:
            return time.monotonic() - begun, checked.stdout
        time.sleep(5)
    return time.monotonic() - begun, checked.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pace", choices=("test", "lesson"), default="test")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="labgen-bench-acme-") as tmp:
        folder = Path(tmp)
        acme, plain = lab_file(folder, "acme", args.pace), lab_file(folder, "lab-ca", args.pace)
        ups = {"lab-ca": [], "acme": []}
        for _ in range(args.runs):  # alternating, so a slower minute hits both alike
            for name, config in (("lab-ca", plain), ("acme", acme)):
                ups[name].append(up_from_nothing(config))
                print(f"up from nothing, {name}: {ups[name][-1]:.1f} s", flush=True)
        median = {name: statistics.median(times) for name, times in ups.items()}
        print(f"median up from nothing: lab-ca {median['lab-ca']:.1f} s, acme {median['acme']:.1f} s "
              f"(+{median['acme'] - median['lab-ca']:.1f} s; aim: at most +5 s)", flush=True)
        lab = load(acme)
        for web in lab.web:
            renewals = [on(acme, web.name, "labgen-certs renew --force") for _ in range(args.runs)]
            print(f"{web.name}: a renewal (certbot, HTTP-01, reload) {statistics.median(renewals):.2f} s "
                  f"(median of {args.runs})", flush=True)
        for web in lab.web:
            took = on(acme, web.name, "labgen-certs roll")
            print(f"{web.name}: a key roll whose next key's TLSA was already out: {took:.2f} s", flush=True)
        took = on(acme, lab.web[0].name, "labgen-certs roll")
        print(f"{lab.web[0].name}: a key roll right after another (waits out the new record's TTL): "
              f"{took:.1f} s", flush=True)
        time.sleep(5)
        took, said = drill(acme)
        failures = re.search(r"(\d+) answers were not secure", said)
        print(f"tls-key-roll drill at the {args.pace} pace: {took:.0f} s, "
              f"{failures.group(1) if failures else 0} answers not secure (aim: 0)"
              + ("" if "solved in" in said else f"; NOT SOLVED: {said.strip()}"), flush=True)
        lifecycle.down(lab.name, Engine("podman"))


if __name__ == "__main__":
    main()

"""Time `labgen render` of the default lab: medians over several runs.

cold: a fresh build folder, so every key is made; warm: keys kept from the previous render.
Run: .venv/bin/python bench/bench_render.py [runs]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from labgen import render, spec


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def main(runs: int = 15) -> None:
    for profile in ("modern", "intermediate"):
        lab = spec.parse({"profile": profile}, "bench")
        cold, warm = [], []
        for _ in range(runs):
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp)
                cold.append(timed(render.render, lab, out))
                warm.append(timed(render.render, lab, out))
        print(f"render {profile:<12} cold (new keys) median {statistics.median(cold) * 1000:7.1f} ms   "
              f"warm (kept keys) median {statistics.median(warm) * 1000:7.1f} ms   ({runs} runs)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 15)

"""labgen class verify: every student's checks (labgen verify --student, two at a time on two
cores), one row per student and standard, in the terminal and as one self-contained page."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..exercises.state import State
from ..render import environment
from ..text import printable
from .rootzone import student_builds
from .spec import Class

WORKERS = 2  # verify is mostly waiting on the containers; more than the cores only queues


@dataclass
class Row:
    student: str
    lab: str
    passed: bool = False
    groups: dict[str, tuple[int, int]] = field(default_factory=dict)  # standard -> (pass, required)
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # (target, title, message)
    solved: int = 0
    error: str = ""

    @property
    def score(self) -> int:
        passing = sum(p for p, _ in self.groups.values())
        required = sum(r for _, r in self.groups.values())
        return round(100 * passing / required) if required else 0


# Seconds one student's verify may take: every probe has its own time limit (a stalled server
# costs seconds), so a run this long is stuck; the board shows that student as timed out.
VERIFY_LIMIT = 300


def _verify(config: Path, student: str, folder: Path) -> dict | str:
    report = folder / f"{student}.json"
    try:
        result = subprocess.run([sys.executable, "-m", "labgen", "verify", "-c", str(config),
                                 "--student", student, "--json", str(report)],
                                capture_output=True, text=True, timeout=VERIFY_LIMIT)
    except subprocess.TimeoutExpired:
        return f"timed out (no verdict in {VERIFY_LIMIT} s)"
    if result.returncode not in (0, 1) or not report.exists():
        return (result.stderr.strip().splitlines() or ["verify failed"])[-1].removeprefix("labgen: error: ")
    return json.loads(report.read_text(encoding="utf-8"))


def row_of(klass: Class, student, doc: dict | str, out: Path) -> Row:
    row = Row(student.name, student.lab.name)
    try:
        state = State.load(student_builds(out / klass.name) / student.lab.name)
        row.solved = sum(r["result"] == "solved" for r in state.history)
    except ValueError:
        pass
    if isinstance(doc, str):
        row.error = printable(doc, 200, keep_newlines=False)
        return row
    row.passed = doc["passed"]
    for target in doc["targets"]:
        for check in target["checks"]:
            if check["level"] != "required" or check["status"] == "n/a":
                continue
            group = check["id"].split(".")[0]
            passing, required = row.groups.get(group, (0, 0))
            row.groups[group] = (passing + (check["status"] == "pass"), required + 1)
            if check["status"] != "pass":
                seen = next((v["message"] for v in check["variants"] if not v["passed"]), "")
                row.failures.append((target["name"], check["title"], seen.splitlines()[0] if seen else ""))
    return row


def collect(klass: Class, config: Path, out: Path) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="labgen-class-verify-") as tmp, \
            ThreadPoolExecutor(max_workers=WORKERS) as pool:
        docs = list(pool.map(lambda s: _verify(config, s.name, Path(tmp)), klass.students))
    return [row_of(klass, s, doc, out) for s, doc in zip(klass.students, docs)]


def groups_of(rows: list[Row]) -> list[str]:
    return sorted({g for r in rows for g in r.groups})


def table(klass: Class, rows: list[Row]) -> str:
    groups = groups_of(rows)
    head = f"{'STUDENT':<16} {'SCORE':>5}  " + "  ".join(f"{g.upper():>7}" for g in groups) + "  EXERCISES"
    lines = [f"class {klass.name}: {len(rows)} students under {klass.root}", head]
    for r in rows:
        if r.error:
            lines.append(f"{r.student:<16} {'-':>5}  not verified: {r.error}")
            continue
        cells = "  ".join(f"{'%d/%d' % r.groups[g] if g in r.groups else '-':>7}" for g in groups)
        lines.append(f"{r.student:<16} {r.score:>4}%  {cells}  {r.solved} solved")
    done = sum(r.passed for r in rows)
    lines.append(f"{done} of {len(rows)} students pass every required check")
    return "\n".join(lines)


def html(klass: Class, rows: list[Row], now: dt.datetime, refresh: int | None = None) -> str:
    return environment().get_template("report/scoreboard.html.j2").render(
        klass=klass, rows=rows, groups=groups_of(rows), refresh=refresh,
        checked_at=now.strftime("%Y-%m-%d %H:%M:%S UTC"))

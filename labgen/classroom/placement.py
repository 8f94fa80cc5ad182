"""Which machine runs each student's lab.

A lab never moves while its machine stays in the class file: moving it would mean a new lab
elsewhere (new containers, the student's changes gone). New students go where the load is
lowest relative to each machine's capacity, so the machines fill in proportion; a student whose
machine left the class file is placed again the same way. The placement is kept beside the
class's build (placement.json), written by `class up` and read by every other class command.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import UsageError
from .spec import Class, Machine

FILE = "placement.json"


def place(klass: Class, before: dict[str, str]) -> dict[str, str]:
    """student name -> machine name; before: the placement of the last `class up`."""
    names = {m.name: m for m in klass.machines}
    placed = {s.name: before[s.name] for s in klass.students if before.get(s.name) in names}
    load = {m.name: 0 for m in klass.machines}
    for machine in placed.values():
        load[machine] += 1
    for student in klass.students:
        if student.name in placed:
            continue
        free = [m for m in klass.machines if load[m.name] < m.capacity]
        if not free:  # only when students kept in place fill their machines past a lowered capacity
            raise UsageError(f"no machine has room for {student.name}: the machines hold "
                             f"{sum(m.capacity for m in klass.machines)} students (capacity)")
        best = min(free, key=lambda m: ((load[m.name] + 1) / m.capacity, klass.machines.index(m)))
        placed[student.name] = best.name
        load[best.name] += 1
    return {s.name: placed[s.name] for s in klass.students}


def read(folder: Path) -> dict[str, str]:
    try:
        found = json.loads((folder / FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def settle(klass: Class, folder: Path) -> dict[str, str]:
    """The placement for this `class up`, written down."""
    placed = place(klass, read(folder))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / FILE).write_text(json.dumps(placed, indent=1) + "\n", encoding="utf-8")
    return placed


def _placed_on(klass: Class, placed: dict[str, str], student: str) -> Machine | None:
    if len(klass.machines) == 1:
        return klass.machines[0]
    return next((m for m in klass.machines if m.name == placed.get(student)), None)


def machine_of(klass: Class, placed: dict[str, str], student: str) -> Machine:
    """The machine that runs a student's lab, as the last `class up` placed it."""
    found = _placed_on(klass, placed, student)
    if found is None:
        raise UsageError(f"student {student} has no machine yet; run labgen class up -c {klass.source} first")
    return found


def where(klass: Class, folder: Path, student: str) -> Machine | None:
    """The machine of a student's lab as the last `class up` placed it (None: not placed yet)."""
    return _placed_on(klass, read(folder) if len(klass.machines) > 1 else {}, student)


def endpoint_of(klass: Class, folder: Path, student: str):
    """How to reach the engine of a student's lab (None: this machine, or not placed yet)."""
    found = where(klass, folder, student)
    return found.endpoint if found else None

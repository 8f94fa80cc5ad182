"""A class over one machine or several: which engine runs each student's lab and each copy of
the lab root.

Every machine runs its students' labs and its own copy of the lab root (RFC 8806's local copy:
the same signed root zone, and a copy of every student's zone), so a student's resolver never
leaves its machine. The copies keep each other current over the backbone with NOTIFY and
TSIG-signed zone transfers (rootzone.py). labgen reaches another machine's Podman over SSH
(Podman's remote mode, engine.py) and Ansible reaches its containers the same way: no overlay
network, no agent of labgen's own on the machines.
"""

from __future__ import annotations

from pathlib import Path

from ..engine import Engine
from . import placement
from .spec import Class, Machine, Student


class Fleet:
    """The class's machines, each with its engine, and the students placed on each."""

    def __init__(self, klass: Class, folder: Path, engine: Engine, placed: dict[str, str] | None = None):
        self.klass = klass
        self.placed = placed if placed is not None else placement.read(folder)
        self.engines = {m.name: engine if m.endpoint is None else Engine(engine.name, m.endpoint)
                        for m in klass.machines}

    @property
    def spread(self) -> bool:
        return len(self.klass.machines) > 1

    def machine(self, student: Student | str) -> Machine:
        name = student if isinstance(student, str) else student.name
        if not self.spread:
            return self.klass.machines[0]
        return placement.machine_of(self.klass, self.placed, name)

    def engine(self, student: Student | str) -> Engine:
        return self.engines[self.machine(student).name]

    def students(self, machine: Machine) -> list[Student]:
        return [s for s in self.klass.students if self.machine(s) == machine]

    def each(self):
        """(machine, its engine, its students), for every machine with students."""
        for machine in self.klass.machines:
            if students := self.students(machine):
                yield machine, self.engines[machine.name], students

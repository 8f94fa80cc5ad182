"""labgen's checks of a live lab: testinfra tests, one module per standard.

Every check carries its id, title, the standard it checks, why it matters, how to fix it and a
level (required, recommended, informational). Expected values come from the Lab model and its
profile, never retyped. They run as `labgen verify`, or as plain pytest:

    pytest --pyargs labgen.checks -p labgen.checks.plugin --lab-file lab.yml
"""

from __future__ import annotations

from dataclasses import dataclass

LEVELS = ("required", "recommended", "informational")


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    standard: str
    level: str
    why: str
    fix: str

    @property
    def group(self) -> str:
        return self.id.split(".")[0]


def check(id: str, title: str, *, standard: str, why: str, fix: str, level: str = "required"):
    """Mark a test function as a labgen check."""
    if level not in LEVELS:
        raise ValueError(f"{id}: level {level!r} is not one of {LEVELS}")

    def mark(fn):
        fn.labgen_check = Check(id, title, standard, level, why, fix)
        return fn

    return mark

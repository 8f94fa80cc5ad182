"""The lab a command works on: a lab file's, or one student's lab of a class file (under the
class's lab root). One place for the CLI and the grader."""

from __future__ import annotations

from pathlib import Path

from .spec import Lab, load


def lab_for(path: str | Path, student: str | None = None, base: Path | None = None) -> Lab:
    """base: the build folder (default build/ beside the file), where a class keeps its root."""
    if not student:
        return load(path)
    from .classroom.rootzone import class_student_lab
    from .classroom.spec import load_class

    klass = load_class(path)
    base = base if base is not None else Path(path).parent / "build"
    return class_student_lab(klass, klass.student(student), base / klass.name)

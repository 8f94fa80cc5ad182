"""labgen class handouts DIR: one page per student (Markdown, and HTML to print): the zone,
addresses and hosts, how to enter the workstation, commands to try, assigned exercises."""

from __future__ import annotations

from pathlib import Path

from .. import pki
from ..errors import UsageError
from ..exercises import catalogue
from ..render import environment
from . import access
from .rootzone import class_student_lab, student_builds
from .spec import Class


def write(klass: Class, folder: Path, dest: Path, engine: str = "podman") -> list[Path]:
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot write handouts into {dest}: {exc.strerror}") from None
    anchor = (folder / "root" / "dns" / f"{klass.root}.ds")
    if not anchor.exists():
        raise UsageError(f"class {klass.name} is not rendered yet; run labgen class up -c {klass.source}")
    env = environment()
    written = []
    for i, student in enumerate(klass.students):
        lab = class_student_lab(klass, student, folder)
        other = klass.students[(i + 1) % len(klass.students)].lab.domain
        exercises = [catalogue()[e] for e in klass.exercises]
        entry = access.entry(klass, student, folder, student_builds(folder))
        # Beside the page: the student's private key (0600) and the workstation's host key.
        pki.write_private(dest / f"{student.name}_ed25519", access.key_file(folder, student).read_bytes())
        (dest / f"{student.name}_known_hosts").write_text(entry.known_hosts + "\n", encoding="utf-8")
        password = access.password_file(folder, student).read_text(encoding="utf-8").strip() \
            if klass.access.password else None
        markdown = env.get_template("class/handout.md.j2").render(
            klass=klass, student=student, lab=lab, web=lab.web[0], other=other, engine=engine,
            entry=entry, password=password,
            anchor=anchor.read_text(encoding="utf-8").strip(),
            exercises=[e for e in exercises if e.not_applicable(lab) is None])
        html = env.get_template("class/handout.html.j2").render(lab=lab, student=student, markdown=markdown)
        for name, text in ((f"{student.name}.md", markdown), (f"{student.name}.html", html)):
            if password:  # a page with a password is as private as the key beside it
                pki.write_private(dest / name, text.encode())
            else:
                (dest / name).write_text(text, encoding="utf-8")
        written.append(dest / f"{student.name}.md")
    return written

"""labgen exercise list|start|hint|check|status|solve: a lesson on one live lab."""

from __future__ import annotations

import datetime as dt
import difflib
import json
from collections import defaultdict
from pathlib import Path

from .. import verify
from ..engine import Engine
from ..errors import UsageError
from ..lifecycle import require_up
from ..spec import Lab
from . import Exercise, Row, catalogue, drill
from .faults import FaultError, changed, restore, run_steps, touched
from .pin import changed_keys, fingerprint, key_names, require_unchanged
from .state import State, duration, took


def find(exercise_id: str) -> Exercise:
    found = catalogue().get(exercise_id)
    if found is None:
        close = difflib.get_close_matches(exercise_id, list(catalogue()), n=2)
        maybe = f" (did you mean {' or '.join(close)}?)" if close else ""
        raise UsageError(f"unknown exercise {exercise_id!r}{maybe}; labgen exercise list shows them all")
    return found


def listing(lab: Lab | None) -> list[dict]:
    rows = []
    for e in catalogue().values():
        reason = e.not_applicable(lab) if lab else None
        rows.append({"id": e.id, "level": e.level, "standards": list(e.standards), "title": e.title,
                     "applies": reason is None, "reason": reason or ""})
    return rows


def list_text(rows: list[dict], lab: Lab | None) -> str:
    lines = [f"{'ID':<24} {'LEVEL':<13} {'STANDARDS':<20} TITLE"]
    for r in rows:
        mark = "" if r["applies"] else f"  (not for this lab: {r['reason']})"
        lines.append(f"{r['id']:<24} {r['level']:<13} {', '.join(r['standards']):<20} {r['title']}{mark}")
    usable = sum(r["applies"] for r in rows)
    lines.append(f"{len(rows)} exercises" + (f", {usable} for lab {lab.name}" if lab else "")
                 + "; start one with: labgen exercise start ID")
    return "\n".join(lines)


def markdown_table() -> str:
    """The catalogue as README shows it (a unit test keeps README in step)."""
    lines = ["| Exercise | Level | Standards | What the student sees |", "|---|---|---|---|"]
    lines += [f"| `{e.id}` | {e.level} | {', '.join(e.standards)} | {e.title} |" for e in catalogue().values()]
    return "\n".join(lines)


def start(lab: Lab, config: str, build: Path, engine: Engine, exercise_id: str) -> str:
    exercise = find(exercise_id)
    require_up(lab, engine, config)
    if reason := exercise.not_applicable(lab):
        raise UsageError(f"exercise {exercise.id} does not apply to lab {lab.name}: {reason}")
    state = State.load(build)
    if exercise.id in state.active:
        raise UsageError(f"exercise {exercise.id} is already active on lab {lab.name}; "
                         f"labgen exercise check {exercise.id} grades it")
    require_unchanged(state.pins(), lab, config)  # every active exercise grades one lab
    mine = touched(lab, exercise)
    for other in state.active:
        if shared := mine & touched(lab, find(other)):
            host, path = sorted(shared)[0]
            raise UsageError(f"exercise {exercise.id} conflicts with the active exercise {other}: "
                             f"both change {path} on {host}; finish or solve {other} first")
        if exercise.drill and find(other).drill:
            raise UsageError(f"the drill {other} is active: one key roll at a time; finish or solve it first")
    if exercise.drill:
        try:
            entry = drill.begin(lab, engine, exercise.id)
        except RuntimeError as exc:
            raise FaultError(str(exc)) from None
    else:
        entry = {}
        try:
            run_steps(lab, build, engine, exercise, exercise.fault)
            if not changed(lab, build, engine, exercise):
                raise FaultError("the fault changed nothing: the lab's files differ from what this "
                                 "exercise expects")
        except BaseException:
            restore(lab, build, engine, exercise)  # no half-broken lab
            raise
    state.start(exercise.id, fingerprint(lab))  # the lab it is graded against: see pin.py
    if entry:
        state.active[exercise.id]["drill"] = entry
    state.save()
    return (f"exercise {exercise.id} started on lab {lab.name} ({exercise.level}; "
            f"{', '.join(exercise.standards)})\n\n{exercise.title}\n\n{exercise.task}\n\n"
            f"Enter the hosts with: {engine.name} exec -it labgen-{lab.name}-<host> bash\n"
            f"A hint: labgen exercise hint {exercise.id}    Grade your fix: labgen exercise check "
            f"{exercise.id}")


def _active(state: State, lab: Lab, exercise_id: str) -> Exercise:
    exercise = find(exercise_id)
    if exercise.id not in state.active:
        raise UsageError(f"exercise {exercise.id} is not active on lab {lab.name}; "
                         f"start it with labgen exercise start {exercise.id}")
    return exercise


def hint(lab: Lab, build: Path, exercise_id: str) -> str:
    state = State.load(build)
    exercise = _active(state, lab, exercise_id)
    shown = state.active[exercise.id]["hints"]
    if shown >= len(exercise.hints):
        return (f"no more hints for {exercise.id}: all {len(exercise.hints)} were shown. "
                "labgen exercise check now shows why each failing check matters and how to fix it.")
    state.active[exercise.id]["hints"] = shown + 1
    state.save()
    last = " (the last one: labgen exercise check now also shows each check's fix)" \
        if shown + 1 == len(exercise.hints) else ""
    return f"hint {shown + 1} of {len(exercise.hints)} for {exercise.id}{last}:\n{exercise.hints[shown]}"


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def check(lab: Lab, config: str, build: Path, engine: Engine, exercise_id: str | None,
          student: str | None = None, report: Path | None = None) -> tuple[int, str]:
    """Grade the exercise (or every active one): solved when its checks pass and no other
    required check fails that no other active exercise explains. The lab must be the one pinned
    at start; the checks judge that very Lab (they do not read the lab file again)."""
    state = State.load(build)
    if exercise_id is None and not state.active:
        raise UsageError(f"no exercise is active on lab {lab.name}; start one with "
                         "labgen exercise start ID (labgen exercise list shows them)")
    graded = [_active(state, lab, exercise_id)] if exercise_id else [find(i) for i in state.active]
    active = [find(i) for i in state.active]
    require_unchanged(state.pins(), lab, config)
    require_up(lab, engine, config)
    _, outcomes = verify.run_checks(Path(config), student=student, lab=lab,
                                    only=lambda c: c.level == "required"
                                    or any(e.covers(c.id, c.needs, c.fetches) for e in graded))
    if not outcomes:
        raise UsageError("no check ran; is the lab file the one of the running lab?")
    if report:  # the checks that ran, as labgen verify --json writes them (the class's board)
        report.write_text(verify.as_json(lab, verify.targets(outcomes), dt.datetime.now(dt.timezone.utc)),
                          encoding="utf-8")
    rows = [Row(o.check.id, o.check.needs, o.check.fetches, o.check.level, o.target, o.variant)
            for o in outcomes if o.applicable]
    failing = {(o.check.id, o.target, o.variant): o for o in outcomes if o.applicable and not o.passed}
    claimed = {e.id: e.expected(lab, rows) for e in active}
    lines, code = [], 0
    for exercise in graded:
        mine = {k: o for k, o in failing.items() if k in claimed[exercise.id]}
        explained = set().union(*(keys for i, keys in claimed.items() if i != exercise.id))
        regressions = {k: o for k, o in failing.items() if k not in mine and k not in explained
                       and o.check.level == "required"}
        hints = state.active[exercise.id]["hints"]
        to_do = drill.grade(lab, engine, exercise.id, exercise.drill, state.active[exercise.id]["drill"]) \
            if exercise.drill else []
        if not mine and not regressions and not to_do:
            if exercise.drill:
                drill.end(lab, engine, exercise.id)
            record = state.end(exercise.id, "solved")
            lines.append(f"exercise {exercise.id}: solved in {duration(took(record))} with "
                         f"{_plural(hints, 'hint')}")
            continue
        code = 1
        lines.append(f"exercise {exercise.id}: not solved yet (started {duration(state.elapsed(exercise.id))} "
                     f"ago; {hints} of {len(exercise.hints)} hints shown)")
        full = hints >= len(exercise.hints)
        if to_do:
            lines.append("  not done yet:")
            lines += [f"    {problem}" for problem in to_do]
        if mine:
            lines.append("  still failing:")
            lines += _failures(mine, full)
        if regressions:
            lines.append("  also failing, and not part of this exercise (something else broke):")
            lines += _failures(regressions, True)
        if not full:
            lines.append(f"  (why and how to fix show once every hint was seen: labgen exercise hint {exercise.id})")
    state.save()
    return code, "\n".join(lines)


def _failures(failing: dict, full: bool) -> list[str]:
    """One entry per check and target: what was expected (the title) and what was seen."""
    grouped = defaultdict(list)
    for (check_id, target, variant), o in sorted(failing.items()):
        grouped[(check_id, target)].append(o)
    lines = []
    for (check_id, target), found in grouped.items():
        check = found[0].check
        variants = ", ".join(o.variant for o in found if o.variant)
        lines.append(f"    {check.title}  [{check_id} on {'the lab' if target == verify.LAB else target}"
                     + (f"; {variants}" if variants else "") + "]")
        lines.append(f"      seen: {found[0].message.splitlines()[0] if found[0].message else 'failed'}")
        if full:
            lines += [f"      why: {check.why}", f"      fix: {check.fix}"]
    return lines


def status(lab: Lab, build: Path) -> str:
    state = State.load(build)
    lines = [f"lab {lab.name}: {_plural(len(state.active), 'active exercise')}"]
    for exercise_id, entry in state.active.items():
        pinned = entry.get("lab")
        keys = key_names(changed_keys(pinned, lab), lab) if pinned else []
        note = (f"; the lab file changed since it started ({', '.join(keys)}): check refuses to "
                "grade it" if keys else "")
        lines.append(f"  ACTIVE  {exercise_id:<24} for {duration(state.elapsed(exercise_id))}, "
                     f"{entry['hints']} of {len(find(exercise_id).hints)} hints shown{note}")
    for record in state.history:
        hints = _plural(record["hints"], "hint")
        lines.append(f"  {record['result'].upper() if record['result'] == 'solved' else 'ENDED':<7} "
                     f"{record['id']:<24} in {duration(took(record))} with {hints}"
                     + ("" if record["result"] == "solved" else f" ({record['result']})"))
    return "\n".join(lines)


def solve(lab: Lab, config: str, build: Path, engine: Engine, exercise_id: str) -> str:
    require_up(lab, engine, config)
    state = State.load(build)
    exercise = _active(state, lab, exercise_id)
    if exercise.drill:  # nothing was broken: the watch stops, the keys stay as the student left them
        drill.end(lab, engine, exercise.id)
        done = "stopped the probe's watch"
    else:
        count = restore(lab, build, engine, exercise)
        done = f"put back the rendered copy of {_plural(count, 'file')} and reloaded the services"
    state.end(exercise.id, "solved by the trainer")
    state.save()
    return f"exercise {exercise.id}: {done}.\nThe reference fix:\n{exercise.fix}"


def end_all(build: Path, reason: str) -> list[str]:
    """After labgen up: every active exercise ended, as the lab is back to its rendered state."""
    state = State.load(build)
    ended = [state.end(i, reason)["id"] for i in list(state.active)]
    if ended:
        state.save()
    return ended


# A class student asks through the `lab` command on the workstation (classroom/service.py), not
# through labgen on the trainer's machine: the same texts, with the student's commands.
FOR_STUDENTS = (("start it with labgen exercise start", "your trainer starts it with labgen exercise start"),
                ("labgen exercise check", "lab check"), ("labgen exercise hint", "lab hint"),
                ("labgen exercise list", "lab exercises"))


def for_students(text: str) -> str:
    for trainer, student in FOR_STUDENTS:
        text = text.replace(trainer, student)
    return text


def as_json(rows: list[dict]) -> str:
    return json.dumps(rows, indent=1) + "\n"

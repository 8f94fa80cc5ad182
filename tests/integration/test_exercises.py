"""Every exercise of the catalogue on a live lab, as a class would do it: `labgen exercise start`
breaks the lab, exactly the checks the exercise declares fail (and every other check passes),
the model student fix edits the live hosts from the inside and reloads what it changed itself
(not labgen up, not solve; labgen reloads nothing after it), and `labgen exercise check` says
solved.

Exercises that change different hosts and fail different checks run together in one lab state
(one verify, one check for the group); `labgen up` brings the lab back after each group.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from conftest import RunningLab

from labgen.exercises import Row, catalogue
from labgen.exercises.faults import run_steps, touched
from labtest import run, write_lab

# Exercises for a lab BIND signs run in test_key_rollover.py, those for a class's secondary in
# test_class.py, those for the ACME CA's certificates in test_acme.py; those for a zone with
# NSEC3 on the intermediate lab.
MODERN = [e for e in catalogue().values() if "intermediate" not in e.profiles
          and not {"online_signing", "nsec3", "secondary", "acme"} & set(e.requires)]
INTERMEDIATE = [e for e in catalogue().values() if "intermediate" in e.profiles or "nsec3" in e.requires]


def labgen(lab: RunningLab, *args: str):
    return run([sys.executable, "-m", "labgen", *args, "-c", str(lab.config)], timeout=600)


def failing_and_rows(lab: RunningLab, tmp_path: Path) -> tuple[set, list[Row]]:
    report = tmp_path / "verify.json"
    result = labgen(lab, "verify", "--json", str(report))
    assert result.returncode in (0, 1), result.stderr
    doc = json.loads(report.read_text())
    rows = [Row(c["id"], tuple(c["needs"]), c["fetches"], c["level"], t["name"], v["variant"])
            for t in doc["targets"] for c in t["checks"] for v in c["variants"] if v["applicable"]]
    failing = {(c["id"], t["name"], v["variant"]) for t in doc["targets"] for c in t["checks"]
               for v in c["variants"] if v["applicable"] and not v["passed"]}
    return failing, rows


def fails(lab: RunningLab, exercise, rows: list[Row]) -> set:
    """Everything the fault makes fail: what grading asks back and its side effects."""
    return exercise.expected(lab.lab, rows) | exercise.side_effects(lab.lab, rows)


def groups(lab: RunningLab, exercises, rows: list[Row]) -> list[list]:
    """Greedy: an exercise joins the first group whose hosts and expected failures it shares
    nothing with (so each student fix meets only its own fault)."""
    found: list[tuple[list, set, set]] = []
    for e in exercises:
        files, keys = {host for host, _ in touched(lab.lab, e)}, fails(lab, e, rows)
        for members, used_files, used_keys in found:
            if not files & used_files and not keys & used_keys:
                members.append(e)
                used_files |= files
                used_keys |= keys
                break
        else:
            found.append(([e], set(files), set(keys)))
    return [members for members, _, _ in found]


class Results:
    """Each group is run once, by the test of its first exercise; the others read the result."""

    def __init__(self, lab: RunningLab, exercises, tmp_path: Path):
        self.lab, self.tmp_path, self.done = lab, tmp_path, {}
        _, rows = failing_and_rows(lab, tmp_path)
        self.groups = groups(lab, exercises, rows)

    def of(self, exercise_id: str) -> dict:
        if exercise_id not in self.done:
            group = next(g for g in self.groups if any(e.id == exercise_id for e in g))
            self._run(group)
        return self.done[exercise_id]

    def _run(self, group) -> None:
        lab = self.lab
        started = {e.id: labgen(lab, "exercise", "start", e.id) for e in group}
        failing, rows = failing_and_rows(lab, self.tmp_path)
        expected = {e.id: fails(lab, e, rows) for e in group}
        everyone = set().union(*expected.values())
        for e in group:
            run_steps(lab.lab, lab.build, lab.engine, e, e.student)
        checked = labgen(lab, "exercise", "check")
        assert labgen(lab, "up").returncode == 0  # back to the rendered lab; ends what is active
        for e in group:
            self.done[e.id] = {"start": started[e.id], "expected": expected[e.id], "failing": failing,
                               "unexpected": failing - everyone, "check": checked,
                               "group": [g.id for g in group]}


@pytest.fixture(scope="module")
def modern(running_lab, tmp_path_factory):
    return Results(running_lab, MODERN, tmp_path_factory.mktemp("exercises"))


@pytest.fixture(scope="module")
def intermediate(intermediate_lab, tmp_path_factory):
    return Results(intermediate_lab, INTERMEDIATE, tmp_path_factory.mktemp("exercises-intermediate"))


def judge(result: dict, exercise_id: str) -> None:
    start, check = result["start"], result["check"]
    assert start.returncode == 0, start.stderr
    assert catalogue()[exercise_id].title in start.stdout
    assert result["expected"], f"{exercise_id} declares no failure that exists in this lab"
    missing = result["expected"] - result["failing"]
    assert not missing, f"{exercise_id}: expected to fail but passed: {sorted(missing)}"
    assert not result["unexpected"], (f"group {result['group']}: failed but no exercise declares it: "
                                      f"{sorted(result['unexpected'])}")
    assert check.returncode == 0 and re.search(rf"exercise {exercise_id}: solved in .* with 0 hints",
                                               check.stdout), check.stdout + check.stderr


@pytest.mark.parametrize("exercise_id", [e.id for e in MODERN])
def test_exercise_breaks_exactly_its_checks_and_the_student_fix_solves_it(modern, exercise_id):
    judge(modern.of(exercise_id), exercise_id)


@pytest.mark.parametrize("exercise_id", [e.id for e in INTERMEDIATE])
def test_intermediate_exercise_breaks_exactly_its_checks_and_the_student_fix_solves_it(
        intermediate, exercise_id):
    judge(intermediate.of(exercise_id), exercise_id)


def test_hints_come_in_order_and_check_shows_fixes_only_after_the_last(running_lab):
    lab = running_lab
    exercise = catalogue()["hsts-one-day"]
    assert labgen(lab, "exercise", "start", exercise.id).returncode == 0
    try:
        first = labgen(lab, "exercise", "check", exercise.id)
        assert first.returncode == 1, first.stdout + first.stderr
        assert "not solved yet" in first.stdout and "HSTS is set for at least a year" in first.stdout
        assert "seen: " in first.stdout and "fix: " not in first.stdout and "Traceback" not in first.stdout
        for n, text in enumerate(exercise.hints, 1):
            shown = labgen(lab, "exercise", "hint", exercise.id)
            assert shown.returncode == 0 and f"hint {n} of {len(exercise.hints)}" in shown.stdout
            assert text in shown.stdout
        assert "no more hints" in labgen(lab, "exercise", "hint", exercise.id).stdout
        last = labgen(lab, "exercise", "check", exercise.id)
        assert last.returncode == 1 and "fix: Send Strict-Transport-Security" in last.stdout
    finally:
        solved = labgen(lab, "exercise", "solve", exercise.id)
    assert solved.returncode == 0 and exercise.fix in solved.stdout, solved.stderr
    status = labgen(lab, "exercise", "status")
    assert re.search(r"ENDED\s+hsts-one-day\s+in .* with 3 hints \(solved by the trainer\)", status.stdout)
    assert labgen(lab, "verify").returncode == 0  # solve put the lab back


def test_up_after_an_exercise_changes_the_lab_back_and_ends_it(running_lab):
    lab = running_lab
    assert labgen(lab, "exercise", "start", "caa-foreign").returncode == 0
    assert labgen(lab, "exercise", "start", "version-shown").returncode == 0
    up = labgen(lab, "up")
    assert up.returncode == 0, up.stderr
    assert re.search(r"deploy: [1-9]\d* change", up.stdout), up.stdout
    for exercise_id in ("caa-foreign", "version-shown"):
        assert f"exercise {exercise_id} ended: labgen up brought the lab back" in up.stdout
    assert "0 active exercises" in labgen(lab, "exercise", "status").stdout
    assert labgen(lab, "verify").returncode == 0


def test_a_bad_id_a_lab_that_is_down_a_conflict_and_a_wrong_profile_are_refused(running_lab, tmp_path):
    lab = running_lab
    bad = labgen(lab, "exercise", "start", "tls-old-version")
    assert bad.returncode == 2 and bad.stdout == ""
    assert "unknown exercise 'tls-old-version' (did you mean tls-old-versions?)" in bad.stderr
    down = run([sys.executable, "-m", "labgen", "exercise", "start", "early-data", "-c",
                str(write_lab(tmp_path, {"name": "notup"}))])
    assert down.returncode == 2 and "lab notup is not up" in down.stderr
    assert labgen(lab, "exercise", "start", "early-data").returncode == 0
    try:
        conflict = labgen(lab, "exercise", "start", "hsts-one-day")
        assert conflict.returncode == 2
        assert ("exercise hsts-one-day conflicts with the active exercise early-data: both change "
                "/etc/nginx/conf.d/nginx.lab.example.conf on nginx") in conflict.stderr
        wrong = labgen(lab, "exercise", "start", "cbc-suite")
        assert wrong.returncode == 2 and "needs the intermediate profile; this lab is modern" in wrong.stderr
        again = labgen(lab, "exercise", "start", "early-data")
        assert again.returncode == 2 and "already active" in again.stderr
    finally:
        assert labgen(lab, "exercise", "solve", "early-data").returncode == 0
    assert labgen(lab, "verify").returncode == 0


def test_the_resolver_says_why_validation_failed_and_unbound_control_flushes(running_lab):
    """Extended DNS Errors (RFC 8914) reach dig on the workstation, and unbound-control works on
    the resolver over its local socket, as the DNS exercises' hints say."""
    lab = running_lab
    answer = lab.client("dig", "+time=5", "+tries=2", f"bogus.{lab.lab.domain}", "A")
    assert "status: SERVFAIL" in answer.stdout and "EDE: 6 (DNSSEC Bogus)" in answer.stdout, answer.stdout
    resolver = lab.lab.role("resolver").name
    for command in (("flush_zone", lab.lab.domain), ("flush_bogus",)):
        flushed = lab.exec(resolver, "unbound-control", *command)
        assert flushed.returncode == 0 and flushed.stdout.startswith("ok"), flushed.stdout + flushed.stderr

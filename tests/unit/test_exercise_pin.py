"""The lab is pinned at `exercise start`: check grades against the lab as it was then, and refuses
(exit 2, naming the lab-file key) a lab file edited since, such as a CAA issuer moved to the
foreign CA of caa-foreign or HTTP/3 turned off under alt-svc-without-quic."""

from __future__ import annotations

import json
import sys

import pytest
import yaml

from labgen.classroom.rootzone import class_student_lab, render_class
from labgen.classroom.spec import load_class
from labgen.errors import UsageError
from labgen.exercises.pin import changed_keys, fingerprint, require_unchanged
from labgen.exercises.state import State
from labgen.spec import load, parse
from labtest import run, write_lab


def test_each_lab_file_key_is_pinned_by_its_own_name():
    pinned = fingerprint(parse({}))
    for change, keys in (({"caa": {"issuer": "ca.other.example"}}, ["caa.issuer"]),
                         ({"http3": False}, ["http3"]),
                         ({"hsts": {"max_age": 94608000}}, ["hsts.max_age"]),
                         ({"dane": {"ca": True}}, ["dane.ca"]),
                         ({"network": {"ipv4": "10.1.2.0/24"}}, ["network.ipv4"]),
                         ({"servers": [{"name": "www", "software": "nginx"}]}, ["servers"]),
                         ({"headers": {"Referrer-Policy": "same-origin"}}, ["headers.Referrer-Policy"]),
                         ({"headers": {"X-Frame-Options": None}}, ["headers.X-Frame-Options"]),
                         ({"profile": "intermediate"}, ["profile"]),
                         ({"security_txt": {"expires_days": 30}}, ["security_txt.expires_days"])):
        assert changed_keys(pinned, parse(change)) == keys, change


def test_the_parsed_lab_is_pinned_not_the_bytes(tmp_path):
    """Comments, key order and values written out as their defaults change nothing."""
    path = write_lab(tmp_path, {"name": "pin", "caa": {"issuer": "ca.lab.example"}})
    pinned = fingerprint(load(path))
    path.write_text("# a comment\ncaa:\n  issuer: ca.lab.example   # the lab CA\nname: pin\nhttp3: true\n")
    assert changed_keys(pinned, load(path)) == []


def test_a_changed_key_is_named_with_what_to_do():
    lab = parse({"caa": {"issuer": "ca.foreign.example"}})
    with pytest.raises(UsageError) as refused:
        require_unchanged({"caa-foreign": fingerprint(parse({}))}, lab, "lab.yml")
    assert refused.value.exit_code == 2
    assert str(refused.value) == (
        "lab.yml changed since exercise caa-foreign started: caa.issuer differs from the lab the "
        "exercise is graded against. Put it back as it was at the start, or end the exercise first "
        "(labgen exercise solve caa-foreign, or labgen up, which ends every exercise) and then "
        "change the lab")
    with pytest.raises(UsageError, match="http3, hsts.max_age differ|hsts.max_age, http3 differ"):
        require_unchanged({"x": fingerprint(parse({}))},
                          parse({"http3": False, "hsts": {"max_age": 94608000}}), "lab.yml")
    with pytest.raises(UsageError, match="started without a pinned lab .* labgen exercise solve x"):
        require_unchanged({"x": None}, parse({}), "lab.yml")


def _pin(build, lab, *exercise_ids):
    """The state `exercise start` leaves: active exercises pinned to lab."""
    build.mkdir(parents=True, exist_ok=True)
    state = State.load(build)
    for exercise_id in exercise_ids:
        state.start(exercise_id, fingerprint(lab))
    state.save()
    return build / "exercises.json"


def labgen(*args):
    return run([sys.executable, "-m", "labgen", *args], timeout=120)


@pytest.mark.parametrize("exercise_id, change, key", [
    ("caa-foreign", {"caa": {"issuer": "ca.foreign.example"}}, "caa.issuer"),
    ("alt-svc-without-quic", {"http3": False}, "http3")])
def test_check_refuses_a_lab_file_edited_after_start(tmp_path, exercise_id, change, key):
    """The two gaming attempts of issue 18: the grader would otherwise read the edited goal."""
    data = {"name": "pinned", "network": {"ipv4": "10.77.200.0/24", "ipv6": "2001:db8:77:200::/64"}}
    config = write_lab(tmp_path, data)
    state = _pin(tmp_path / "build" / "pinned", load(config), exercise_id)
    before = state.read_text()
    write_lab(tmp_path, {**data, **change})
    for args in (("check", exercise_id), ("check",)):
        result = labgen("exercise", *args, "-c", str(config))
        assert result.returncode == 2 and result.stdout == "", result.stderr
        assert result.stderr == (f"labgen: error: {config} changed since exercise {exercise_id} "
                                 f"started: {key} differs from the lab the exercise is graded "
                                 "against. Put it back as it was at the start, or end the exercise "
                                 f"first (labgen exercise solve {exercise_id}, or labgen up, which "
                                 "ends every exercise) and then change the lab\n")
    assert state.read_text() == before  # still active, unsolved, no hint counted
    status = labgen("exercise", "status", "-c", str(config))
    assert status.returncode == 0
    assert f"the lab file changed since it started ({key}): check refuses to grade it" in status.stdout
    write_lab(tmp_path, data)  # put back: the pin no longer refuses (here the lab is not up)
    back = labgen("exercise", "check", "-c", str(config))
    assert back.returncode == 2 and "lab pinned is not up" in back.stderr and "differs" not in back.stderr


def test_start_refuses_a_second_exercise_on_a_lab_changed_since_the_first(tmp_path, monkeypatch):
    """Every active exercise is graded against one lab: the one pinned by the first."""
    from labgen.exercises import session

    monkeypatch.setattr(session, "require_up", lambda *args: None)
    build = tmp_path / "build" / "demo"
    _pin(build, parse({}), "caa-foreign")
    with pytest.raises(UsageError, match="changed since exercise caa-foreign started: http3 differs"):
        session.start(parse({"http3": False}), "lab.yml", build, None, "hsts-dropped")
    assert list(State.load(build).active) == ["caa-foreign"]


def test_an_ended_exercise_forgets_its_pin(tmp_path):
    state = State.load(tmp_path)
    state.start("caa-foreign", fingerprint(parse({})))
    record = state.end("caa-foreign", "solved")
    assert "lab" not in record and state.pins() == {}


def test_a_class_student_is_pinned_to_the_lab_of_the_class_file(tmp_path):
    """For a student the lab comes from the class file: its keys are named as written there."""
    config = tmp_path / "class.yml"
    data = {"name": "pc", "students": 1, "network": {"ipv4": "10.78.0.0/22",
                                                      "ipv6": "2001:db8:78::/48"}}
    config.write_text(yaml.safe_dump(data))
    folder = render_class(load_class(config), tmp_path / "build")
    klass = load_class(config)
    lab = class_student_lab(klass, klass.students[0], folder)
    _pin(folder / "students" / lab.name, lab, "caa-foreign")
    config.write_text(yaml.safe_dump({**data, "lab": {"caa": {"issuer": "ca.foreign.example"}}}))
    result = labgen("exercise", "check", "-c", str(config), "--student", "s01")
    assert result.returncode == 2, result.stderr
    assert f"{config} changed since exercise caa-foreign started: lab.caa.issuer differs" in result.stderr
    config.write_text(yaml.safe_dump({**data, "root": "other.example", "lab": {}}))
    moved = labgen("exercise", "check", "-c", str(config), "--student", "s01")
    assert moved.returncode == 2
    assert "class pc has no lab root yet" in moved.stderr or "root differs" in moved.stderr


def test_the_state_file_keeps_the_pin_as_plain_data(tmp_path):
    path = _pin(tmp_path, parse({}), "caa-foreign")
    pinned = json.loads(path.read_text())["active"]["caa-foreign"]["lab"]
    assert pinned["caa.issuer"] and pinned["http3"] and all(isinstance(v, str) for v in pinned.values())

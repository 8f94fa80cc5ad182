"""A KSK roll in a class of two whose zones BIND signs (test pace): a student rolls their key
through the lab root, which follows the CDS (the grading service runs lifecycle.follow_cds);
the drill is solved with no answer recorded that was not secure, the root's DS then names the
new key alone, and the other student still validates the first one's names."""

from __future__ import annotations

import re
import time

import pytest
from test_class import class_up, labgen

from labgen.engine import Engine
from labgen.exercises import catalogue
from labgen.exercises.faults import run_steps
from labgen.exercises import drill

ROLL_CLASS = {"name": "croll", "students": 2, "network": {"ipv4": "10.132.0.0/16", "ipv6": "2001:db8:132::/48"},
              "lab": {"dnssec": {"signer": "bind", "pace": "test"}},
              "access": {"listen": "127.0.0.1", "ssh_port": 2300, "board_port": 2390}}
LIMIT = 300  # seconds the roll may take at the test pace (about 60 in a single lab)


@pytest.fixture(scope="module")
def roll_class(tmp_path_factory):
    yield from class_up(tmp_path_factory.mktemp("rollclass"), ROLL_CLASS)


def test_a_students_ksk_roll_goes_through_the_lab_root_by_cds(roll_class):
    config, model, _ = roll_class
    s01, s02 = model.students
    exercise = catalogue()["ksk-roll"]
    started = labgen(config, "exercise", "start", exercise.id, "--student", s01.name)
    assert started.returncode == 0, started.stdout + started.stderr
    lab = s01.lab
    build = config.parent / "build" / model.name / "students" / lab.name
    begun = time.monotonic()
    run_steps(lab, build, Engine("podman"), exercise, exercise.student)
    while True:
        checked = labgen(config, "exercise", "check", exercise.id, "--student", s01.name)
        if checked.returncode == 0 or time.monotonic() - begun > LIMIT:
            break
        assert "not secure" not in checked.stdout, checked.stdout
        time.sleep(10)
    assert checked.returncode == 0 and "solved in" in checked.stdout, checked.stdout + checked.stderr
    print(f"class ksk-roll: solved {time.monotonic() - begun:.0f} s after the roll began")
    engine = Engine("podman")
    ksk = {k["tag"] for k in drill.keys(lab, engine) if k["flags"] == 257}
    assert drill.ds_at_parent(lab, engine) == sorted(ksk)  # the root names the new key alone
    # the other student validates the first one's names through the root
    answer = engine.exec(s02.lab.container(s02.lab.role("client")), "dig", "+dnssec",
                         f"nginx.{lab.domain}", "A").stdout
    assert re.search(r"flags: [a-z ]*\bad\b", answer), answer
    # the trainer's on-demand scan has nothing left to do
    assert labgen(config, "class", "cds").stdout.strip() == "no student's CDS asks for another DS"


def test_a_student_going_insecure_has_the_lab_root_drop_the_ds(roll_class):
    """RFC 8078 in a class: the student's delete CDS, checked through the DS the root holds,
    removes the DS there (one root redeploy); the other student then resolves the first one's
    names without the AD flag, never SERVFAIL."""
    config, model, _ = roll_class
    s01, s02 = model.students
    lab, engine = s01.lab, Engine("podman")
    ns1 = lab.container(lab.role("authdns"))
    assert engine.exec(ns1, "sh", "-c", "sed -i 's/dnssec-policy \"labgen\";/dnssec-policy insecure;/' "
                                        "/etc/bind/named.conf && rndc reconfig").returncode == 0
    begun, ds = time.monotonic(), None
    while time.monotonic() - begun < LIMIT:
        ds = drill.ds_at_parent(lab, engine)
        if ds == []:
            break
        time.sleep(5)
    assert ds == [], ds
    print(f"class: the root dropped the DS {time.monotonic() - begun:.0f} s after the student went insecure")
    # the grading service took it; the trainer's scan has nothing left to do
    assert labgen(config, "class", "cds").stdout.strip() == "no student's CDS asks for another DS"
    # BIND's insecure policy publishes the keys for an hour: the other student's resolver lets go now
    resolver = s02.lab.container(s02.lab.role("resolver"))
    assert engine.exec(resolver, "unbound-control", "flush_zone", lab.domain).returncode == 0
    answer = engine.exec(s02.lab.container(s02.lab.role("client")), "dig", "+dnssec",
                         f"nginx.{lab.domain}", "A").stdout
    assert "status: NOERROR" in answer and not re.search(r"flags: [a-z ]*\bad\b", answer), answer

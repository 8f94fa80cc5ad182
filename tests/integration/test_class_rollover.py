"""A KSK roll in a class of two whose zones BIND signs (test pace): a student rolls their key
through the lab root, which follows the CDS (the grading service runs lifecycle.follow_cds);
the drill is solved with no answer recorded that was not secure, the root's DS then names the
new key alone, and the other student still validates the first one's names."""

from __future__ import annotations

import re
import time

import pytest
from labtest import until_solved
from test_class import class_up, labgen

from labgen.engine import Engine
from labgen.exercises import catalogue
from labgen.exercises.faults import run_steps
from labgen.exercises import drill

ROLL_CLASS = {"name": "croll", "students": 2, "network": {"ipv4": "10.132.0.0/16", "ipv6": "2001:db8:132::/48"},
              # every student's web servers get their certificates from their own ACME CA too
              "lab": {"dnssec": {"signer": "bind", "pace": "test"}, "certificates": {"issuer": "acme", "lifetime": "test"}},
              "access": {"listen": "127.0.0.1", "ssh_port": 2300, "board_port": 2390}}
LIMIT = 300  # seconds the roll may take at the test pace (about 60 in a single lab)


@pytest.fixture(scope="module")
def roll_class(tmp_path_factory):
    yield from class_up(tmp_path_factory.mktemp("rollclass"), ROLL_CLASS)


def test_each_student_gets_certificates_from_their_own_acme_ca_and_rolls_a_key_the_others_see(roll_class):
    config, model, shown = roll_class
    s01, s02 = model.students
    assert "class croll is up: 2 student labs" in shown, shown[-1500:]
    status = labgen(config, "class", "status")
    assert status.returncode == 0 and "2 of 2 student labs healthy" in status.stdout, status.stdout
    engine = Engine("podman")
    for student in model.students:
        lab = student.lab
        issuer = engine.exec(lab.container(lab.role("probe")), "sh", "-c", (
            f"openssl s_client -connect {lab.web[0].ipv4}:443 -servername {lab.web[0].fqdn} </dev/null 2>/dev/null "
            "| openssl x509 -noout -issuer")).stdout
        assert "Pebble Intermediate CA" in issuer, issuer
    verified = labgen(config, "class", "verify")
    assert verified.returncode == 0 and "2 of 2 students pass every required check" in verified.stdout, verified.stdout
    nginx = s01.lab.web[0]
    rolled = engine.exec(s01.lab.container(nginx), "labgen-certs", "roll")
    assert rolled.returncode == 0 and "now serving the next key" in rolled.stdout, rolled.stdout + rolled.stderr
    # the other student, through the lab root's copy of the zone, validates the new key's record
    served = engine.exec(s01.lab.container(s01.lab.role("probe")), "sh", "-c", (
        f"openssl s_client -connect {nginx.ipv4}:443 -servername {nginx.fqdn} </dev/null 2>/dev/null | openssl x509 "
        "-noout -pubkey | openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1")).stdout.strip()
    deadline = time.monotonic() + 30  # the record's TTL in the other student's resolver
    while True:
        answer = engine.exec(s02.lab.container(s02.lab.role("client")), "dig", "+dnssec", f"_443._tcp.{nginx.fqdn}",
                             "TLSA").stdout
        if served in answer.replace(" ", "").lower() or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert served in answer.replace(" ", "").lower() and re.search(r"flags: [a-z ]*\bad\b", answer), answer


def test_a_students_ksk_roll_goes_through_the_lab_root_by_cds(roll_class):
    config, model, _ = roll_class
    s01, s02 = model.students
    exercise = catalogue()["ksk-roll"]
    started = labgen(config, "exercise", "start", exercise.id, "--student", s01.name)
    assert started.returncode == 0, started.stdout + started.stderr
    lab = s01.lab
    build = config.parent / "build" / model.name / "students" / lab.name
    run_steps(lab, build, Engine("podman"), exercise, exercise.student)
    checked, took = until_solved(lambda: labgen(config, "exercise", "check", exercise.id, "--student", s01.name),
                                 LIMIT, 10)
    assert checked.returncode == 0 and "solved in" in checked.stdout, checked.stdout + checked.stderr
    print(f"class ksk-roll: solved {took:.0f} s after the roll began")
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

"""A class spread over two machines (tests/standin.py: two stand-ins that share nothing but a
backbone network, each with its own Podman reached over SSH): each machine runs its students'
labs and its own copy of the lab root; a student on one machine validates a name of a student on
the other (AD); a zone change reaches every copy of the root over the backbone (NOTIFY, TSIG
transfers); each student enters on their own machine and is graded through the trainer's
service, whose socket an SSH tunnel carries to the other machine; with one machine gone, the
other machine's students still enter, pass verify and lab check.
"""

from __future__ import annotations

import json
import re
import time

import pytest
import standin
from test_class import class_up, labgen

from labgen.classroom.rootzone import root_container
from labgen.classroom.spec import ACCESS_ON_STUDENT_NET as ON_STUDENT_NET
from labgen.engine import Engine
from labgen.spec import Endpoint
from labtest import run

CLASS = {"name": "cwide", "students": 2, "network": {"ipv4": "10.131.0.0/16", "ipv6": "2001:db8:131::/48"},
         "lab": {"servers": [{"name": "www", "software": "nginx"}]},
         "backbone": {"network": f"{standin.NETWORK}.0/24"}}


def engine_of(machine: str) -> Engine:
    n = int(machine.removeprefix("m"))
    return Engine("podman", Endpoint(f"ssh://root@{standin.address(n)}:22{standin.socket(machine)}",
                                     str(standin.KEY), machine))


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    machines = standin.up(2)
    try:
        yield from class_up(tmp_path_factory.mktemp("wide"), {**CLASS, "machines": machines})
    finally:
        standin.down()


def dig(engine: Engine, container: str, query: str) -> str:
    return engine.exec(container, "sh", "-c", f"dig +time=3 +tries=2 {query}").stdout


def test_each_machine_runs_its_students_and_a_copy_of_the_root(wide):
    config, model, up = wide
    assert "== machines: m1 (root@10.99.0.21): 1 students; m2 (root@10.99.0.22): 1 students" in up, up
    for n, machine in ((1, "m1"), (2, "m2")):
        names = engine_of(machine).run("ps", "--format", "{{.Names}}").stdout.split()
        assert f"labgen-cwide-s0{n}-www" in names and root_container(model) in names, names
        assert not any(f"labgen-cwide-s0{3 - n}-" in name for name in names), names
    # nothing of the class runs on this machine
    here = Engine("podman").run("ps", "-a", "--format", "{{.Names}}").stdout.split()
    assert not any(name.startswith("labgen-cwide-") for name in here), here
    status = labgen(config, "class", "status")
    assert status.returncode == 0 and "m1: named active; m2: named active" in status.stdout, status.stdout


def test_a_student_validates_a_name_of_a_student_on_the_other_machine(wide):
    _, model, _ = wide
    s01 = model.student("s01").lab
    answer = dig(engine_of("m1"), s01.container(s01.role("client")), "+dnssec www.s02.class.example A")
    assert "status: NOERROR" in answer and re.search(r"flags: [a-z ]*\bad\b", answer), answer


def test_the_scoreboard_grades_every_student_on_every_machine(wide):
    config, _, _ = wide
    board = labgen(config, "class", "verify", timeout=900)
    assert board.returncode == 0 and "2 of 2 students pass every required check" in board.stdout, \
        board.stdout[-3000:] + board.stderr


def enter(folder, key: str, known: str, host: str, port: int, command: str):
    """A student's ssh, with the key and host key from their handout, to a stand-in machine."""
    return run(["ssh", "-i", str(folder / f"{key}_ed25519"), "-o", f"UserKnownHostsFile={folder / known}_known_hosts",
                "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
                "-p", str(port), f"root@{host}", command], timeout=300)


def tunnel_pids(model) -> list[str]:
    return run(["pgrep", "-f", "--", f"-R .*/{model.name}-m2/grading.sock:"]).stdout.split()


def test_each_student_enters_on_their_own_machine_and_is_graded_by_the_trainers_service(wide, tmp_path):
    config, model, _ = wide
    assert labgen(config, "class", "handouts", str(tmp_path)).returncode == 0
    s01, s02 = model.students
    for n, student in ((1, s01), (2, s02)):
        port, host = model.port(student), standin.address(n)
        assert f"-p {port} root@{host}" in (tmp_path / f"{student.name}.md").read_text()
        inside = enter(tmp_path, student.name, student.name, host, port, "hostname -f && lab check")
        assert inside.returncode == 0 and inside.stdout.startswith(f"client.{student.lab.domain}\n") \
            and "verdict: every required check passes" in inside.stdout, inside.stdout[-2000:] + inside.stderr
    # a student's port is open on their own machine alone, and another student's key does not open it
    elsewhere = enter(tmp_path, "s02", "s02", standin.address(1), model.port(s02), "hostname")
    assert elsewhere.returncode == 255 and "Connection refused" in elsewhere.stderr, elsewhere.stderr
    wrong = enter(tmp_path, "s01", "s02", standin.address(2), model.port(s02), "hostname")
    assert wrong.returncode == 255 and "Permission denied" in wrong.stderr, wrong.stderr
    # on the other machine too, the service knows the student by where the request came from
    door = f"http://{s02.lab.ipv4_network[ON_STUDENT_NET]}"
    claimed = enter(tmp_path, "s02", "s02", standin.address(2), model.port(s02),
                    f"curl -s -H 'X-Student: s01' {door}/status")
    assert "s02: lab cwide-s02" in claimed.stdout and "s01" not in claimed.stdout, claimed.stdout
    log = (config.parent / "build" / model.name / "service" / "service.log").read_text()
    assert re.search(rf"s02 {s02.lab.role('client').ipv4} POST /check -> 200", log), log[-2000:]
    assert "tunnel to m2: its access container reaches this service" in log, log[-2000:]
    # the board answers on every machine, with its token only
    token = (config.parent / "build" / model.name / "service" / "token").read_text().strip()
    for n in (1, 2):
        base = f"http://{standin.address(n)}:{model.access.board_port}/board"
        assert run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", f"{base}/guess"]).stdout == "403"
        rows = json.loads(run(["curl", "-s", f"{base}/{token}/rows"]).stdout)["rows"]
        assert {r["student"]: r["passed"] for r in rows} == {"s01": True, "s02": True}, rows
    doc = json.loads(labgen(config, "class", "status", "--json").stdout)
    assert doc["access"] == "m1: running; m2: running", doc["access"]
    assert [s["access"]["ssh_host"] for s in doc["students"]] == [standin.address(1), standin.address(2)]
    # on m2, the service's socket is the SSH login's alone
    modes = engine_of("m2").on_machine("sh", "-c", f'cd "$HOME/.cache/labgen/{model.name}-m2" && stat -c %a . grading.sock')
    assert modes.stdout.split() == ["700", "600"], modes.stdout + modes.stderr
    # the tunnel that carries m2's requests ends: the service puts it back within seconds
    before = tunnel_pids(model)
    assert len(before) == 1, before
    run(["kill", before[0]])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and tunnel_pids(model) in ([], before):
        time.sleep(1)
    again = enter(tmp_path, "s02", "s02", standin.address(2), model.port(s02), f"curl -s {door}/status")
    assert "s02: lab cwide-s02" in again.stdout, again.stdout + again.stderr


def serial(engine: Engine, container: str, zone: str, at: str) -> int | None:
    found = re.findall(r"^\S+\s+\d+\s+IN\s+SOA\s+\S+\s+\S+\s+(\d+)", dig(engine, container, f"+norecurse SOA {zone} @{at}"), re.M)
    return int(found[0]) if found else None


def test_a_zone_change_reaches_every_copy_of_the_root_over_the_backbone(wide):
    config, model, _ = wide
    s02 = model.student("s02").lab
    m1, m2 = engine_of("m1"), engine_of("m2")
    ns = s02.role("authdns")
    before = serial(m2, s02.container(ns), s02.domain, "127.0.0.1")
    assert before and serial(m1, root_container(model), s02.domain, "127.0.0.1") == before
    # the student's name server takes a new serial: its NOTIFY reaches its machine's copy, which
    # passes the zone on to the other machine's copy over the backbone (the SOA's signature is
    # then stale: the tests after this one grade s01 alone)
    bumped = m2.exec(s02.container(ns), "sh", "-c",
                     f"f=$(grep -l 'IN SOA' /etc/bind/labgen/db.{s02.domain}* | head -1); "
                     f"sed -i 's/ {before} / {before + 1} /' $f && rndc reload {s02.domain}")
    assert bumped.returncode == 0, bumped.stdout + bumped.stderr
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and serial(m1, root_container(model), s02.domain, "127.0.0.1") != before + 1:
        time.sleep(1)
    assert serial(m2, root_container(model), s02.domain, "127.0.0.1") == before + 1
    assert serial(m1, root_container(model), s02.domain, "127.0.0.1") == before + 1
    # a copy answers a transfer only to the class's key (this machine is on the backbone too)
    secret = (config.parent / "build" / "cwide" / "root" / "pki" / "backbone.secret").read_text().strip()
    plain = run(["dig", "+time=3", "+tries=1", "AXFR", s02.domain, f"@{standin.address(1)}"]).stdout
    signed = run(["dig", "+time=3", "+tries=1", "-y", f"hmac-sha256:labgen-backbone:{secret}", "AXFR",
                  s02.domain, f"@{standin.address(1)}"]).stdout
    assert "Transfer failed" in plain and "IN\tSOA" not in plain, plain
    assert len(re.findall(r"\bIN\s+SOA\b", signed)) == 2, signed


def test_with_one_machine_gone_the_other_machines_students_pass_verify(wide, tmp_path):
    config, model, _ = wide
    assert labgen(config, "class", "handouts", str(tmp_path)).returncode == 0
    standin.stop("m2")
    verify = labgen(config, "verify", "--student", "s01", timeout=600)
    assert verify.returncode == 0, verify.stdout[-3000:] + verify.stderr
    # s01 still enters on m1 and is graded through the service, whose tunnel to m2 is gone
    s01 = model.students[0]
    checked = enter(tmp_path, "s01", "s01", standin.address(1), model.port(s01), "lab check")
    assert checked.returncode == 0 and "verdict: every required check passes" in checked.stdout, \
        checked.stdout[-2000:] + checked.stderr
    status = labgen(config, "class", "status")
    assert status.returncode == 1 and "m2: unreachable" in status.stdout, status.stdout + status.stderr
    assert re.search(r"^s01 .* (\d+)/\1 healthy$", status.stdout, re.M), status.stdout
    down = labgen(config, "class", "down")
    assert down.returncode == 0 and "1 unreachable machine" in down.stdout, down.stdout + down.stderr
    assert not engine_of("m1").run("ps", "-a", "--format", "{{.Names}}").stdout.split()
    gone = engine_of("m1").on_machine("sh", "-c", f'test -e "$HOME/.cache/labgen/{model.name}-m1"')
    assert gone.returncode == 1, "class down left m1's folder of the service's socket"

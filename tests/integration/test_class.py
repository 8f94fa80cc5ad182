"""A class of three students on real containers: each student's names validate through the lab
root from their own workstation; students reach no other student's web server; the scoreboard
shows every student, and one student's broken nginx lowers only their row; ds: student leaves a
delegation insecure until the trainer takes the DS in (a wrong DS is refused); down removes the
class and nothing of the single test lab beside it.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml
from test_verify import page_text

from labgen.classroom.spec import load_class
from labgen.engine import Engine
from labtest import run

# The students' SSH ports on loopback only (2201-2203): tests never use the machine's uplink.
CLASS = {"name": "ctest", "students": 3, "network": {"ipv4": "10.130.0.0/16", "ipv6": "2001:db8:130::/48"},
         "exercises": ["hsts-one-day", "stale-tlsa"], "access": {"listen": "127.0.0.1"}}


def labgen(config: Path, *args: str, timeout: int = 900):
    return run([sys.executable, "-m", "labgen", *args, "-c", str(config)], timeout=timeout)


@pytest.fixture(scope="module")
def klass(running_lab, tmp_path_factory):
    """The class, up; down at the end (what an interrupted session left removed first)."""
    folder = tmp_path_factory.mktemp("class")
    config = folder / "class.yml"
    config.write_text(yaml.safe_dump(CLASS), encoding="utf-8")
    labgen(config, "class", "down")
    up = labgen(config, "class", "up")
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr
    yield config, load_class(config), up.stdout
    labgen(config, "class", "down")


def client(klass, student: str, script: str):
    _, model, _ = klass
    lab = model.student(student).lab
    return Engine("podman").exec(lab.container(lab.role("client")), "sh", "-c", script)


def test_up_shows_each_student_and_how_to_enter_their_workstation(klass):
    config, model, shown = klass
    for student in model.students:
        assert f"== student {model.students.index(student) + 1}/3: {student.name}" in shown
        assert (f"{student.name}: ssh -i {student.name}_ed25519 -o UserKnownHostsFile="
                f"{student.name}_known_hosts -p {model.port(student)} root@127.0.0.1") in shown
    status = labgen(config, "class", "status")
    assert status.returncode == 0 and "3 of 3 student labs healthy" in status.stdout
    assert "labgen-ctest-root: named active" in status.stdout


def test_every_student_validates_through_the_lab_root_with_only_its_key(klass):
    _, model, _ = klass
    for student in model.students:
        anchors = client(klass, student.name, "ls /etc/labgen").stdout.split()
        assert anchors == ["class.example.ds", "trust-anchors.conf"], anchors  # the root's key only
        for other in model.students:  # their own names and the others': the AD flag
            answer = client(klass, student.name, f"dig +dnssec nginx.{other.lab.domain} A").stdout
            assert re.search(r"flags: [a-z ]*\bad\b", answer), f"{student.name} -> {other.name}: {answer}"
        dane = client(klass, student.name, f"ldns-dane -k /etc/labgen/class.example.ds verify "
                                           f"nginx.{student.lab.domain} 443")
        assert dane.returncode == 0 and dane.stdout.count("dane-validated successfully") == 2, dane.stdout


def test_a_student_cannot_open_a_connection_to_another_students_web_server(klass):
    _, model, _ = klass
    s01, s02 = model.students[0], model.students[1]
    for address in (s02.lab.web[0].ipv4, s02.lab.web[0].ipv6):
        result = client(klass, "s01", f"timeout 5 bash -c '</dev/tcp/{address}/443'")
        assert result.returncode != 0, f"s01 reached {address}"
    own = client(klass, "s01", f"timeout 5 bash -c '</dev/tcp/{s01.lab.web[0].ipv4}/443'")
    assert own.returncode == 0, own.stderr


def test_the_scoreboard_shows_every_student_and_a_broken_nginx_lowers_only_its_row(klass, tmp_path):
    config, model, _ = klass
    html = tmp_path / "board.html"
    board = labgen(config, "class", "verify", "--html", str(html))
    assert board.returncode == 0, board.stdout + board.stderr
    rows = [line for line in board.stdout.splitlines() if re.match(r"s0\d ", line)]
    assert len(rows) == 3 and all(" 100% " in row for row in rows), board.stdout
    text = page_text(html)
    assert "Class ctest: 3 students under class.example" in text
    assert len(re.findall(r"s0\d 100%", text)) == 3
    assert labgen(config, "exercise", "start", "hsts-one-day", "--student", "s02").returncode == 0
    try:
        broken = labgen(config, "class", "verify", "--html", str(html))
        graded = labgen(config, "exercise", "check", "hsts-one-day", "--student", "s02")
        assert graded.returncode == 1 and "hsts-one-day: not solved yet" in graded.stdout, graded.stdout
    finally:
        assert labgen(config, "exercise", "solve", "hsts-one-day", "--student", "s02").returncode == 0
    assert broken.returncode == 1
    scores = dict(re.findall(r"^(s0\d)\s+(\d+)%", broken.stdout, re.M))
    assert scores["s01"] == scores["s03"] == "100" and int(scores["s02"]) < 100, broken.stdout
    text = page_text(html)
    assert "s02: failing checks" in text and "HSTS is set for at least a year" in text
    assert "s01: failing checks" not in text


def test_the_handouts_name_each_students_zone_hosts_and_exercises(klass, tmp_path):
    config, model, _ = klass
    result = labgen(config, "class", "handouts", str(tmp_path))
    assert result.returncode == 0, result.stderr
    for student in model.students:
        page = (tmp_path / f"{student.name}.md").read_text()
        assert f"Your zone is **{student.lab.domain}**" in page
        assert f"ssh -i {student.name}_ed25519 -o UserKnownHostsFile={student.name}_known_hosts " \
            f"-p {model.port(student)} root@127.0.0.1" in page and "ssh ns1" in page and "probe" not in page
        assert (tmp_path / f"{student.name}_ed25519").stat().st_mode & 0o777 == 0o600
        assert (tmp_path / f"{student.name}_known_hosts").read_text().startswith(
            f"[127.0.0.1]:{model.port(student)} ssh-ed25519 ")
        assert "**stale-tlsa** (advanced" in page and "ldns-dane -k /etc/labgen/class.example.ds" in page
        assert (tmp_path / f"{student.name}.html").read_text().startswith("<!DOCTYPE html>")


def ssh(folder: Path, key: str, known: str, port: int, command: str):
    """A real ssh client on the trainer's machine, to a published port on loopback."""
    return run(["ssh", "-i", str(folder / f"{key}_ed25519"), "-o", f"UserKnownHostsFile={folder / known}_known_hosts",
                "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
                "-p", str(port), "root@127.0.0.1", command], timeout=60)


def test_each_student_enters_their_own_lab_by_ssh_and_nothing_else(klass, tmp_path):
    config, model, _ = klass
    assert labgen(config, "class", "handouts", str(tmp_path)).returncode == 0
    s01, s02 = model.students[0], model.students[1]
    # the student's key opens their workstation, and from there their servers by name
    inside = ssh(tmp_path, "s01", "s01", model.port(s01),
                 "hostname -f; ssh ns1 hostname -f; ssh nginx hostname -f; ssh apache hostname -f")
    assert inside.returncode == 0, inside.stderr
    assert inside.stdout.split() == [f"{h}.{s01.lab.domain}" for h in ("client", "ns1", "nginx", "apache")]
    # with student A's key, B's port refuses
    refused = ssh(tmp_path, "s01", "s02", model.port(s02), "hostname")
    assert refused.returncode == 255 and "Permission denied (publickey)" in refused.stderr
    # from A's workstation: no TCP path to B's hosts, to the access container's ports, to the
    # published ports on the gateway, or to the probe (no sshd there)
    lab, other = s01.lab, s02.lab
    targets = [f"{other.role('client').ipv4}:22", f"{other.web[0].ipv4}:443",
               f"{lab.ipv4_network[6]}:{model.port(s02)}", f"{lab.ipv4_network[6]}:{model.port(s01)}",
               f"{lab.ipv4_network[1]}:{model.port(s02)}", f"{lab.role('probe').ipv4}:22"]
    probe = ("for t in " + " ".join(targets) + "; do h=${t%:*}; p=${t#*:}; "
             "if timeout 3 bash -c \"exec 3<>/dev/tcp/$h/$p\" 2>/dev/null; then echo \"$t open\"; "
             "else echo \"$t closed\"; fi; done")
    seen = ssh(tmp_path, "s01", "s01", model.port(s01), probe)
    assert seen.stdout.split("\n")[:-1] == [f"{t} closed" for t in targets], seen.stdout + seen.stderr
    # the trainer's view of every student's access
    status = labgen(config, "class", "status", "--json")
    doc = __import__("json").loads(status.stdout)
    assert doc["access"] == "running"
    first = doc["students"][0]["access"]
    assert (first["ssh_host"], first["port"], first["user"]) == ("127.0.0.1", model.port(s01), "root")
    assert first["key_file"].endswith("access/s01/id_ed25519") and Path(first["key_file"]).stat().st_mode & 0o777 == 0o600


def test_a_second_up_changes_nothing_and_a_killed_root_is_repaired(klass):
    config, model, _ = klass
    again = labgen(config, "class", "up")
    assert again.returncode == 0, again.stderr
    deploys = re.findall(r"deploy: (\d+) change", again.stdout)
    assert len(deploys) == len(model.students) + 1 and set(deploys) == {"0"}, again.stdout
    assert "container: running" in again.stdout
    run(["podman", "kill", "labgen-ctest-root"])
    repaired = labgen(config, "class", "up")
    assert repaired.returncode == 0 and "container: started" in repaired.stdout, repaired.stdout[-2000:]
    answer = client(klass, "s01", "dig +dnssec nginx.s02.class.example A").stdout
    assert re.search(r"flags: [a-z ]*\bad\b", answer), answer


def test_ds_student_leaves_a_delegation_insecure_until_the_trainer_takes_the_ds_in(klass):
    config, model, _ = klass
    data = {**CLASS, "ds": "student"}
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    try:
        assert labgen(config, "class", "up").returncode == 0
        answer = client(klass, "s01", "dig +dnssec nginx.s02.class.example A").stdout
        assert "NOERROR" in answer and not re.search(r"flags: [a-z ]*\bad\b", answer), answer
        wrong = labgen(config, "class", "ds", "s02", "--ds", "12345 13 2 " + "ab" * 32)
        assert wrong.returncode == 2 and "matches no DNSKEY of s02.class.example" in wrong.stderr
        taken = labgen(config, "class", "ds", "s02")
        assert taken.returncode == 0, taken.stderr
        answer = client(klass, "s01", "dig +dnssec nginx.s02.class.example A").stdout
        assert re.search(r"flags: [a-z ]*\bad\b", answer), answer  # secure once the DS is in
    finally:
        config.write_text(yaml.safe_dump(CLASS), encoding="utf-8")
        labgen(config, "class", "up")


def test_an_exercise_for_the_whole_class_and_for_one_student(klass):
    config, model, _ = klass
    start = labgen(config, "exercise", "start", "hsts-one-day", "--all")
    try:
        assert start.returncode == 0, start.stderr
        assert all(f"== {s.name}" in start.stdout for s in model.students)
        assert start.stdout.count("exercise hsts-one-day started on lab ctest-") == 3
        status = labgen(config, "exercise", "status", "--student", "s03")
        assert "ACTIVE  hsts-one-day" in status.stdout
        both = labgen(config, "exercise", "status", "--all", "--student", "s01")
        assert both.returncode == 2 and "give --student NAME or --all, not both" in both.stderr
    finally:
        solved = labgen(config, "exercise", "solve", "hsts-one-day", "--all")
    assert solved.returncode == 0 and solved.stdout.count("put back the rendered copy of 1 file") == 3


def test_down_removes_the_class_and_nothing_else(klass, running_lab):
    config, _, _ = klass
    down = labgen(config, "class", "down")
    assert down.returncode == 0 and "class ctest is down: removed 20 containers, 4 networks" in down.stdout
    left = run(["podman", "ps", "-a", "--format", "{{.Names}}"]).stdout.split()
    assert not [name for name in left if name.startswith("labgen-ctest-")], left
    assert not [n for n in run(["podman", "network", "ls", "--format", "{{.Name}}"]).stdout.split()
                if n.startswith("labgen-ctest-")]
    assert running_lab.exec("nginx", "systemctl", "is-active", "nginx").stdout.strip() == "active"


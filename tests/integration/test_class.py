"""A class of three students on real containers: each student's names validate through the lab
root from their own workstation; students reach no other student's web server; the scoreboard
shows every student, and one student's broken nginx lowers only their row; ds: student leaves a
delegation insecure until the trainer takes the DS in (a wrong DS is refused); down removes the
class and nothing of the single test lab beside it.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from test_verify import page_text

from labgen.classroom.spec import ACCESS_ON_STUDENT_NET as ON_STUDENT_NET
from labgen.classroom.rootzone import class_hosts, class_student_lab, root_container
from labgen.classroom.forwarder import FIRST_BYTE_LIMIT
from labgen.classroom.spec import load_class
from labgen.engine import Engine
from labgen.exercises import catalogue
from labgen.exercises.faults import run_steps
from labtest import run

# The students' SSH ports on loopback only (2201-2203): tests never use the machine's uplink.
CLASS = {"name": "ctest", "students": 3, "network": {"ipv4": "10.130.0.0/16", "ipv6": "2001:db8:130::/48"},
         "exercises": ["hsts-one-day", "stale-tlsa"], "access": {"listen": "127.0.0.1", "password": True}}


# A stand-in for a trainer machine's own service (its sshd, a web server): on every address.
TRAINER_PORT = 2399
LISTENER = f"""
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", {TRAINER_PORT})); s.listen()
while True:
    s.accept()[0].close()
"""
# Run on a student's workstation: garbage, huge bodies and heads, and a hundred requests a second.
BAD_INPUT = """
import json, socket, time
def send(data):
    c = socket.create_connection(("@WHERE@", 80), timeout=15)
    c.sendall(data)
    c.shutdown(socket.SHUT_WR)
    got = b""
    while chunk := c.recv(65536):
        got += chunk
    return got.decode("utf-8", "replace")
out = {"garbage": send(bytes(range(256)) * 4 + b"\\r\\n\\r\\n"),
       "huge_body": send(b"POST /ds HTTP/1.1\\r\\nContent-Length: 10000000\\r\\n\\r\\n"),
       "huge_head": send(b"GET /status HTTP/1.1\\r\\nX: " + b"y" * 20000 + b"\\r\\n\\r\\n")}
time.sleep(3)
codes, refusal = [], ""
for _ in range(100):
    got = send(b"GET /exercises HTTP/1.1\\r\\n\\r\\n")
    codes.append(int(got.split()[1]) if got else 0)
    refusal = got if codes[-1] == 429 else refusal
    time.sleep(0.01)
out["burst"], out["refusal"] = codes, refusal
print(json.dumps(out))
"""


def labgen(config: Path, *args: str, timeout: int = 900):
    return run([sys.executable, "-m", "labgen", *args, "-c", str(config)], timeout=timeout)


def class_up(folder: Path, data: dict):
    """A class fixture's class, up; down at the end (what an interrupted session left removed
    first). Yields (class file, Class, class up's output)."""
    config = folder / "class.yml"
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    labgen(config, "class", "down")
    up = labgen(config, "class", "up")
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr
    yield config, load_class(config), up.stdout
    labgen(config, "class", "down")


@pytest.fixture(scope="module")
def klass(running_lab, tmp_path_factory):
    yield from class_up(tmp_path_factory.mktemp("class"), CLASS)


def client(klass, student: str, script: str):
    _, model, _ = klass
    lab = model.student(student).lab
    return Engine("podman").exec(lab.container(lab.role("client")), "sh", "-c", script)


def resolver_started(klass, student: str) -> str:
    """When the student's Unbound last started (systemd's monotonic clock)."""
    _, model, _ = klass
    lab = model.student(student).lab
    return Engine("podman").exec(lab.container(lab.role("resolver")), "systemctl", "show", "-p",
                                 "ActiveEnterTimestampMonotonic", "unbound").stdout.strip()


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


def with_password(folder: Path, password: str, known: str, port: int):
    """ssh as a student without the key file types their password (SSH_ASKPASS types it here)."""
    askpass = folder / "askpass"
    askpass.write_text(f"#!/bin/sh\necho '{password}'\n")
    askpass.chmod(0o700)
    return run(["setsid", "ssh", "-o", f"UserKnownHostsFile={folder / known}_known_hosts", "-o", "BatchMode=no",
                "-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password",
                "-o", "NumberOfPasswordPrompts=1", "-o", "ConnectTimeout=10", "-p", str(port),
                "root@127.0.0.1", "hostname -f"], timeout=60, stdin=subprocess.DEVNULL,
               env={**os.environ, "SSH_ASKPASS": str(askpass), "SSH_ASKPASS_REQUIRE": "force"})


def test_each_student_enters_their_own_lab_by_ssh_and_nothing_else(klass, tmp_path):
    config, model, _ = klass
    assert labgen(config, "class", "handouts", str(tmp_path)).returncode == 0
    s01, s02 = model.students[0], model.students[1]
    # the student's key opens their workstation, and from there their servers by name
    inside = ssh(tmp_path, "s01", "s01", model.port(s01),
                 "hostname -f; ssh ns1 hostname -f; ssh nginx hostname -f; ssh apache hostname -f")
    assert inside.returncode == 0, inside.stderr
    assert inside.stdout.split() == [f"{h}.{s01.lab.domain}" for h in ("client", "ns1", "nginx", "apache")]
    # with student A's key, B's port refuses; so does A's password
    refused = ssh(tmp_path, "s01", "s02", model.port(s02), "hostname")
    assert refused.returncode == 255 and "Permission denied (publickey,password)" in refused.stderr
    folder = config.parent / "build" / model.name / "access"
    password = (folder / "s01" / "password").read_text().strip()
    assert f"**{password}**" in (tmp_path / "s01.md").read_text()
    assert (tmp_path / "s01.md").stat().st_mode & 0o777 == 0o600
    for port, expected in ((model.port(s01), 0), (model.port(s02), 255)):
        typed = with_password(tmp_path, password, "s01" if expected == 0 else "s02", port)
        assert typed.returncode == expected, typed.stderr
        assert typed.stdout == (f"client.{s01.lab.domain}\n" if expected == 0 else "")
    # the hash reached the workstation through the deploy's no_log option: in its inventory (a
    # 0700 folder), in no file Ansible wrote (its output, the events kept)
    hashed = (folder / "s01" / "password.sha512").read_text().strip()
    assert hashed.encode() in (config.parent / "build" / model.name / ".ansible" / "inventory.yml").read_bytes()
    artifacts = config.parent / "build" / model.name / ".ansible" / "artifacts"
    written = [p for p in artifacts.rglob("*") if p.is_file()]
    assert written and not [p for p in written if hashed.encode() in p.read_bytes()]
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


def grading(student) -> str:
    """The student end of the grading service on the student's network (the access container)."""
    return str(student.lab.ipv4_network[ON_STUDENT_NET])


def board(config: Path, model, path: str = "") -> tuple[int, str]:
    """The trainer's board as a browser on the classroom network fetches it (loopback here)."""
    token = (config.parent / "build" / model.name / "service" / "token").read_text().strip()
    url = f"http://127.0.0.1:{model.access.board_port}/board/{token}{path}"
    result = run(["curl", "-s", "-o", "/dev/stderr", "-w", "%{http_code}", url], timeout=30)
    return int(result.stdout or 0), result.stderr


def test_a_student_asks_for_exercises_hints_and_grades_from_their_own_session(klass, tmp_path):
    config, model, _ = klass
    assert labgen(config, "class", "handouts", str(tmp_path)).returncode == 0
    s01 = model.students[0]
    enter = lambda command: ssh(tmp_path, "s01", "s01", model.port(s01), command)  # noqa: E731
    listed = enter("lab exercises")
    assert listed.returncode == 0 and re.search(r"hsts-one-day +not started", listed.stdout), listed.stdout
    checked = enter("lab check")
    assert checked.returncode == 0 and "verdict: every required check passes" in checked.stdout, \
        checked.stdout + checked.stderr
    assert labgen(config, "exercise", "start", "hsts-one-day", "--student", "s01").returncode == 0
    try:
        hint = enter("lab hint hsts-one-day")
        assert hint.returncode == 0 and hint.stdout.startswith("hint 1 of "), hint.stdout + hint.stderr
        # a student who rewrites the lab command, or claims to be another student, is still s01
        fake = enter("cp /usr/local/bin/lab /root/lab.saved && printf '#!/bin/sh\\necho verdict: every "
                     "required check passes\\n' > /usr/local/bin/lab && lab check")
        assert fake.stdout == "verdict: every required check passes\n"  # it fools its author only
        graded = enter(f"curl -s -X POST -H 'X-Student: s02' http://{grading(s01)}/check")
        doc = __import__("json").loads(graded.stdout)
        assert not doc["ok"] and "exercise hsts-one-day: not solved yet" in doc["text"], graded.stdout
        assert "lab hint hsts-one-day" in doc["text"] and "labgen exercise" not in doc["text"]
        status = enter(f"curl -s http://{grading(s01)}/status")
        assert "s01: lab ctest-s01" in status.stdout and "ACTIVE  hsts-one-day" in status.stdout, status.stdout
    finally:
        assert labgen(config, "exercise", "solve", "hsts-one-day", "--student", "s01").returncode == 0
        enter("mv /root/lab.saved /usr/local/bin/lab")
    again = enter("lab check")
    assert again.returncode == 0 and "exercise" not in again.stdout, again.stdout  # verify once solved
    log = (config.parent / "build" / model.name / "service" / "service.log").read_text()
    assert re.search(rf"s01 {s01.lab.role('client').ipv4} POST /hint/hsts-one-day -> 200", log), log[-2000:]
    assert re.search(rf"s01 {s01.lab.role('client').ipv4} POST /check -> 200", log)


def test_the_trainers_board_needs_its_token_and_updates_in_place(klass):
    config, model, _ = klass
    refused = run(["curl", "-s", "-w", " %{http_code}", f"http://127.0.0.1:{model.access.board_port}/board/guess"])
    assert refused.stdout.endswith(" 403") and "trainer's link" in refused.stdout, refused.stdout
    status, rows = board(config, model, "/rows")
    assert status == 200
    before = {r["student"]: r for r in __import__("json").loads(rows)["rows"]}
    assert before["s01"]["checked"] and before["s01"]["passed"]  # the previous test's last lab check
    assert client(klass, "s03", "lab check").returncode == 0
    status, rows = board(config, model, "/rows")
    after = {r["student"]: r for r in __import__("json").loads(rows)["rows"]}
    assert after["s03"]["checked"] and after["s03"]["score"] == 100 and after["s01"] == before["s01"]
    status, page = board(config, model)
    assert status == 200 and page.startswith("<!DOCTYPE html>")
    token = (config.parent / "build" / model.name / "service" / "token").read_text().strip()
    # headless Chromium, its scripts run (the rows come from rows), every name but loopback unresolvable
    shown = run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=4000",
                 "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1", "--dump-dom",
                 f"http://127.0.0.1:{model.access.board_port}/board/{token}"], timeout=120)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", shown.stdout))
    assert "Class ctest: 3 students under class.example" in text, text
    assert re.search(r"s03 100% (\d+/\d+ )+0 \d{4}-\d\d-\d\d", text), text
    assert "students pass every required check" in text


def flood(port: int, count: int) -> list[socket.socket]:
    """count connections to a published port on loopback that never say a word."""
    opened = []
    for _ in range(count):
        try:
            opened.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        except OSError:
            pass
    return opened


def test_idle_connections_lock_no_classmate_out_and_leave_the_board_answering(klass, tmp_path):
    """120 silent connections to s02's SSH port and 64 to the board: the access container closes
    each within FIRST_BYTE_LIMIT seconds, so the student gets in and the board answers."""
    config, model, _ = klass
    assert labgen(config, "class", "handouts", str(tmp_path)).returncode == 0
    s02 = model.students[1]
    opened = flood(model.port(s02), 120) + flood(model.access.board_port, 64)
    try:
        time.sleep(FIRST_BYTE_LIMIT + 2)
        for sock in opened:  # every one was closed from the far end: recv sees the end
            sock.settimeout(5)
            assert sock.recv(1) == b""
        inside = ssh(tmp_path, "s02", "s02", model.port(s02), "hostname -f")
        assert inside.returncode == 0 and inside.stdout.strip() == f"client.{s02.lab.domain}", inside.stderr
        assert board(config, model, "/rows")[0] == 200
    finally:
        for sock in opened:
            sock.close()
    # of the grading service's folder, the student-facing access container holds the socket alone
    # (the board's token, the results and the log stay on the trainer's side)
    mounted = Engine("podman").exec(f"labgen-{model.name}-access", "ls", "-A", "/run/labgen").stdout.split()
    assert mounted == ["grading.sock"], mounted


def test_nothing_crosses_from_a_students_hosts(klass):
    """A listener on every address of the trainer's machine, the lab root's ports but DNS, the
    engine's socket, a mount, a capability, another student's key or the root's: none reachable."""
    _, model, _ = klass
    s01, s02 = model.students[0], model.students[1]
    server = subprocess.Popen([sys.executable, "-c", LISTENER])
    try:
        mine = [a for a in run(["hostname", "-I"]).stdout.split() if ":" not in a]
        addresses = [str(s01.lab.ipv4_network[1]), str(s02.lab.ipv4_network[1]), *mine]
        targets = [f"{a}:{TRAINER_PORT}" for a in addresses] + [
            f"{s01.lab.ipv4_network[5]}:{port}" for port in (22, 80, 443, 953, 8080)]
        script = ("for t in " + " ".join(targets) + "; do h=${t%:*}; p=${t#*:}; "
                  "if timeout 3 bash -c \"exec 3<>/dev/tcp/$h/$p\" 2>/dev/null; then echo \"$t open\"; "
                  "else echo \"$t closed\"; fi; done")
        for host in (s01.lab.role("client"), s01.lab.web[0]):  # the workstation and a server
            seen = Engine("podman").exec(s01.lab.container(host), "sh", "-c", script).stdout
            assert seen.split("\n")[:-1] == [f"{t} closed" for t in targets], f"{host.name}: {seen}"
        door = client(klass, "s01", f"timeout 3 bash -c 'exec 3<>/dev/tcp/{grading(s01)}/80'")
        dns = client(klass, "s01", f"dig +short +tcp SOA class.example @{s01.lab.ipv4_network[5]}")
        assert door.returncode == 0 and "class.example" in dns.stdout  # what may cross does
    finally:
        server.kill()
    folder = klass[0].parent / "build" / model.name
    # another student's entry key, the lab root's zone key, another student's zone key
    # (the second line of a key's body: the first starts with a header every such key shares)
    secrets = [(folder / p).read_text().splitlines()[2] for p in ("access/s02/id_ed25519",
                                                                  "root/pki/root-ecdsap256sha256.key")]
    secrets += [p.read_text().split("PrivateKey: ")[1].split()[0]
                for p in (folder / "students" / s02.lab.name).rglob("*.private")]
    assert len(secrets) >= 3
    for host in s01.lab.hosts:
        name = s01.lab.container(host)
        info = __import__("json").loads(run(["podman", "inspect", name]).stdout)[0]
        assert info["Mounts"] == [] and not info["HostConfig"]["Privileged"], name
        assert not set(info["HostConfig"]["CapAdd"] or []), name
        found = Engine("podman").exec(name, "sh", "-c", "ls /run/podman /var/run/docker.sock 2>/dev/null; "
                                      "grep -rlF -e " + " -e ".join(secrets) +
                                      " /etc /root /home /var /usr/local /srv /opt /run /tmp 2>/dev/null")
        assert found.stdout.strip() == "", f"{name}: {found.stdout}"


def test_bad_input_to_the_grading_service_gets_a_clear_refusal_and_loses_nothing(klass):
    _, model, _ = klass
    s02 = model.students[1]
    where = grading(s02)
    script = BAD_INPUT.replace("@WHERE@", where)
    seen = __import__("json").loads(client(klass, "s02", f"python3 -c '{script}'").stdout)
    assert seen["garbage"].startswith("HTTP/1.1 400") and "not an HTTP request" in seen["garbage"]
    assert seen["huge_body"].startswith("HTTP/1.1 413") and "under 4096 bytes" in seen["huge_body"]
    assert seen["huge_head"].startswith("HTTP/1.1 413"), seen["huge_head"]
    codes = seen["burst"]
    assert len(codes) == 100 and set(codes) == {200, 429} and codes.count(200) >= 10, codes
    assert "too many requests; ask again in" in seen["refusal"]
    root = Engine("podman").exec(f"labgen-{model.name}-root", "curl", "-s", "-w", " %{http_code}",
                                 f"http://{where}/status").stdout
    assert root.endswith(" 403") and "is not one of s02's hosts" in root, root
    import time
    time.sleep(3)  # the bucket refills: nothing was lost, the service answers as before
    status = client(klass, "s02", "lab status")
    assert status.returncode == 0 and status.stdout.startswith("s02: lab ctest-s02"), status.stdout


def test_a_second_up_changes_nothing_and_a_killed_root_is_repaired(klass):
    config, model, _ = klass
    again = labgen(config, "class", "up")
    assert again.returncode == 0, again.stderr
    # one ansible-playbook run for every student's lab and the root: nothing changed
    assert re.findall(r"deploy: (\d+) change", again.stdout) == ["0"], again.stdout
    assert f"one ansible-playbook run on {sum(len(class_hosts(s.lab).hosts) for s in model.students) + 1} hosts" \
        in again.stdout, again.stdout
    # a line per student, and only what changed or failed as the run goes (no 'ok' lines)
    assert all(f"ctest-{s.name}: 0 changes" in again.stdout for s in model.students), again.stdout
    assert not re.search(r"^\s+ctest-s01-\S+\s+ok\s", again.stdout, re.M), again.stdout
    assert "container: running" in again.stdout
    run(["podman", "kill", "labgen-ctest-root"])
    repaired = labgen(config, "class", "up")
    assert repaired.returncode == 0 and "container: started" in repaired.stdout, repaired.stdout[-2000:]
    answer = client(klass, "s01", "dig +dnssec nginx.s02.class.example A").stdout
    assert re.search(r"flags: [a-z ]*\bad\b", answer), answer


def test_a_student_whose_deploy_fails_is_named_and_the_others_come_up(klass):
    """One run for the class: a host that fails (here s02's nginx, whose checker refuses a
    changed site) stops only itself; class up names it, finishes every other lab, and exits
    non-zero."""
    config, model, _ = klass
    lab = model.student("s02").lab
    nginx = next(h for h in lab.web if h.software == "nginx")
    engine = Engine("podman")
    site = lab.container(nginx)
    broken = engine.exec(site, "sh", "-c", "mv /usr/sbin/nginx /root/nginx.real && "
                                           "printf '#!/bin/sh\nexit 1\n' > /usr/sbin/nginx && chmod 755 /usr/sbin/nginx && "
                                           f"echo '# changed' >> /etc/nginx/conf.d/{nginx.fqdn}.conf")
    assert broken.returncode == 0, broken.stderr
    try:
        up = labgen(config, "class", "up")
        assert up.returncode != 0 and "the deploy failed for ctest-s02 (nginx: task" in up.stderr, up.stdout + up.stderr
        assert "every other student's lab is up" in up.stderr and "s01: ssh " in up.stdout, up.stdout
        assert "ctest-s02: FAILED, nginx: task" in up.stdout and "ctest-s01: 0 changes" in up.stdout, up.stdout
        status = labgen(config, "class", "status").stdout
        assert re.search(r"^s01 .* (\d+)/\1 healthy$", status, re.M) and re.search(r"^s03 .* (\d+)/\1 healthy$", status, re.M), status
    finally:
        engine.exec(site, "sh", "-c", "mv /root/nginx.real /usr/sbin/nginx")
    assert labgen(config, "class", "up").returncode == 0


def test_ds_student_leaves_a_delegation_insecure_until_its_ds_is_taken_in(klass):
    config, model, _ = klass
    data = {**CLASS, "ds": "student"}
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    try:
        assert labgen(config, "class", "up").returncode == 0
        answer = client(klass, "s01", "dig +dnssec nginx.s02.class.example A").stdout
        assert "NOERROR" in answer and not re.search(r"flags: [a-z ]*\bad\b", answer), answer
        wrong = labgen(config, "class", "ds", "s02", "--ds", "12345 13 2 " + "ab" * 32)
        assert wrong.returncode == 2 and "matches no DNSKEY of s02.class.example" in wrong.stderr
        # the student submits it from their own workstation: a wrong one, then their zone's own
        wrong = client(klass, "s02", "lab ds submit 12345 13 2 " + "cd" * 32)
        assert wrong.returncode == 2 and "matches no DNSKEY of s02.class.example" in wrong.stdout, wrong.stdout
        taken = client(klass, "s02", "lab ds submit")
        assert taken.returncode == 0 and "the lab root now publishes the DS of s02.class.example" \
            in taken.stdout, taken.stdout + taken.stderr
        answer = client(klass, "s01", "dig +dnssec nginx.s02.class.example A").stdout
        assert re.search(r"flags: [a-z ]*\bad\b", answer), answer  # secure once the DS is in
        # the same DS again changes nothing: no redeploy of the lab root
        again = client(klass, "s02", "lab ds submit")
        assert again.returncode == 0 and "nothing was redeployed" in again.stdout, again.stdout + again.stderr
        started = {name: resolver_started(klass, name) for name in ("s01", "s03")}
        # two DS at once, as a KSK roll needs: here the zone's KSK by SHA-256 and by SHA-384
        two = client(klass, "s02", "set -- $(dig +noall +answer s02.class.example DNSKEY | grep -w 257 | "
                                   "dnssec-dsfromkey -f - -a SHA-256 -a SHA-384 s02.class.example | "
                                   "cut -d' ' -f4-7 | tr ' ' _); lab ds submit \"$(echo $1 | tr _ ' ')\" "
                                   "\"$(echo $2 | tr _ ' ')\"")
        assert two.returncode == 0 and two.stdout.count(" 13 ") == 2, two.stdout + two.stderr
        published = client(klass, "s01", "dig +short DS s02.class.example").stdout
        assert len(published.splitlines()) == 2 and " 13 4 " in published, published
        # s02's DS changed (a redeploy of the root): its classmates' resolvers were flushed of
        # s02's zone (the DS above is the new set), not restarted
        assert {name: resolver_started(klass, name) for name in started} == started
    finally:
        config.write_text(yaml.safe_dump(CLASS), encoding="utf-8")
        labgen(config, "class", "up")


def test_a_huge_student_zone_is_refused_by_the_lab_root_which_serves_the_rest(klass):
    """6,000 records more in s03's zone (the root takes at most STUDENT_ZONE_LIMITS' max-records):
    the root keeps its last copy of s03's zone, says why in its log, and serves every other zone."""
    config, model, _ = klass
    s03 = model.student("s03")
    ns, domain, root = s03.lab.role("authdns"), s03.lab.domain, root_container(model)
    engine = Engine("podman")

    def root_serial(zone: str) -> str:
        return engine.exec(root, "dig", "+short", "@127.0.0.1", zone, "SOA").stdout.split()[2]

    before = root_serial(domain)
    grow = (f"f=$(ls /etc/bind/labgen/db.{domain}) && s={before} && sed -i \"s/ $s / $((s+100)) /\" $f && "
            f"seq 6000 | sed 's/.*/big& 60 IN TXT x/' >> $f && rndc reload {domain} >/dev/null && "
            f"sleep 1 && rndc notify {domain} >/dev/null")
    result = engine.exec(s03.lab.container(ns), "sh", "-c", grow)
    assert result.returncode == 0, result.stderr
    try:
        deadline = time.monotonic() + 30
        while "too many records" not in (log := engine.exec(root, "journalctl", "-u", "named", "-o", "cat",
                                                            "--no-pager", "-n", "200").stdout):
            assert time.monotonic() < deadline, log[-2000:]
            time.sleep(2)
        assert domain in log and root_serial(domain) == before
        assert engine.exec(root, "systemctl", "is-active", "named").stdout.strip() == "active"
        assert root_serial(model.student("s01").lab.domain)  # every other zone still served
    finally:
        assert labgen(config, "class", "up").returncode == 0


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


def serials(klass, student: str) -> tuple[str, str]:
    """The SOA serial of the student's zone on their ns1 and on the lab root's copy."""
    config, model, _ = klass
    lab = class_student_lab(model, model.student(student), config.parent / "build" / model.name)
    # dig's own ";; communications error" lines (a root busy reloading) are not a serial
    ask = "dig +norec +short +tries=6 @{} " + lab.domain + " SOA | grep -v '^;;' | cut -d' ' -f3"
    return (client(klass, student, ask.format(lab.role("authdns").ipv4)).stdout.strip(),
            client(klass, student, ask.format(lab.parent.ns_ipv4)).stdout.strip())


def test_a_secondary_left_behind_is_caught_and_the_student_fix_reaches_it(klass):
    """secondary-left-behind: NOTIFY off and a serial gone backwards leave the lab root's copy
    behind (dnssec.secondary_current); the student's fix reaches it; up puts the lab back, the
    root's copy included, though its serial was higher than the rendered zone's."""
    config, model, _ = klass
    exercise = catalogue()["secondary-left-behind"]
    before = serials(klass, "s01")
    assert before[0] == before[1] and before[0], before
    assert labgen(config, "exercise", "start", exercise.id, "--student", "s01").returncode == 0
    try:
        checked = labgen(config, "exercise", "check", exercise.id, "--student", "s01")
        assert checked.returncode == 1 and "a secondary never takes a lower serial" in checked.stdout, checked.stdout
        folder = config.parent / "build" / model.name
        lab = class_student_lab(model, model.student("s01"), folder)
        run_steps(lab, folder / "students" / lab.name, Engine("podman"), exercise, exercise.student)
        checked = labgen(config, "exercise", "check", exercise.id, "--student", "s01")
        assert checked.returncode == 0 and "solved in" in checked.stdout, checked.stdout + checked.stderr
        fixed = serials(klass, "s01")
        assert fixed[0] == fixed[1] and int(fixed[0]) > int(before[0]), fixed
    finally:
        back = labgen(config, "up", "--student", "s01")
    assert back.returncode == 0 and "the lab root's copy of s01.class.example: transferred again" in back.stdout, \
        back.stdout + back.stderr
    assert serials(klass, "s01") == before


def test_down_removes_the_class_and_nothing_else(klass, running_lab):
    config, _, _ = klass
    down = labgen(config, "class", "down")
    assert down.returncode == 0 and "class ctest is down: removed 1 service, 20 containers, 4 networks, 1 firewall table" \
        in down.stdout, down.stdout
    left = run(["podman", "ps", "-a", "--format", "{{.Names}}"]).stdout.split()
    assert not [name for name in left if name.startswith("labgen-ctest-")], left
    assert not [n for n in run(["podman", "network", "ls", "--format", "{{.Name}}"]).stdout.split()
                if n.startswith("labgen-ctest-")]
    assert running_lab.exec("nginx", "systemctl", "is-active", "nginx").stdout.strip() == "active"


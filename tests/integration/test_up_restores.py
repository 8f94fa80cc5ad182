"""`labgen up` restores for real, and the lab is pinned at `exercise start`, on the live lab.

- After config-broken (a stray Include in Apache's conf-enabled) and a student's own leftovers
  in the other servers' include folders, `up` moves every file labgen does not own into
  /var/backups/labgen/<UTC time>/<its path> on its host (nothing deleted), names each one,
  counts it as a change, makes a replaced image link again, and verify's host.config_test
  passes; a second `up` moves nothing.
- Editing the lab file after `exercise start` to match the fault (the foreign CA of
  caa-foreign as the CAA issuer, `http3: false` under alt-svc-without-quic) is refused with
  exit 2 naming the key, and the exercise stays active and unsolved.
"""

from __future__ import annotations

import json
import re
import sys

import yaml
from conftest import RunningLab

from labtest import run

BACKUP = "/var/backups/labgen"
# host -> (path, content) a student leaves in the server's include folders.
LEFTOVERS = {
    "nginx": ("/etc/nginx/conf.d/zz-student.conf", "# tried something here\n"),
    "resolver": ("/etc/unbound/unbound.conf.d/zz-student.conf", "# server:\n"),
    "ns1": ("/etc/bind/named.conf.student", "// notes of the student\n"),
}


def labgen(lab: RunningLab, *args: str):
    return run([sys.executable, "-m", "labgen", *args, "-c", str(lab.config)], timeout=600)


def sh(lab: RunningLab, host: str, script: str):
    result = lab.exec(host, "sh", "-c", script)
    assert result.returncode == 0, f"{host}: {script}: {result.stderr}"
    return result.stdout


def outcomes(lab: RunningLab, tmp_path, check_id: str) -> dict:
    report = tmp_path / "verify.json"
    result = labgen(lab, "verify", "--json", str(report))
    assert result.returncode in (0, 1), result.stderr
    doc = json.loads(report.read_text())
    return {(t["name"], v["variant"]): v["passed"] for t in doc["targets"] for c in t["checks"]
            if c["id"] == check_id for v in c["variants"] if v["applicable"]}


def test_up_moves_aside_what_labgen_does_not_own_and_a_second_up_moves_nothing(running_lab, tmp_path):
    lab = running_lab
    start = labgen(lab, "exercise", "start", "config-broken")
    assert start.returncode == 0, start.stderr
    for host, (path, content) in LEFTOVERS.items():
        sh(lab, host, f"printf '{content}' > {path}")
    # On Apache also a module the lab does not use, and an image link replaced by a file.
    sh(lab, "apache", "a2enmod -q rewrite && rm /etc/apache2/conf-enabled/security.conf && "
                      "echo 'ServerTokens Full' > /etc/apache2/conf-enabled/security.conf")
    assert not outcomes(lab, tmp_path, "host.config_test")[("apache", "")]

    up = labgen(lab, "up")
    assert up.returncode == 0, up.stdout + up.stderr
    moved = {(m[0], m[1]): m[2] for m in re.findall(
        r"^  (\S+)\s+moved\s+(\S+): labgen does not own it; now (\S+)$", up.stdout, re.M)}
    expected = {("apache", "/etc/apache2/conf-enabled/zz-local.conf"),
                ("apache", "/etc/apache2/conf-enabled/security.conf"),
                ("apache", "/etc/apache2/mods-enabled/rewrite.load")}
    expected |= {(host, path) for host, (path, _) in LEFTOVERS.items()}
    assert set(moved) == expected, up.stdout
    stamp = re.fullmatch(rf"{BACKUP}/(\d{{8}}T\d{{6}}Z)/etc/apache2/conf-enabled/zz-local.conf",
                         moved[("apache", "/etc/apache2/conf-enabled/zz-local.conf")])
    assert stamp, moved
    for (host, path), dest in moved.items():  # moved, not deleted: the same content, kept
        assert re.fullmatch(rf"{BACKUP}/\d{{8}}T\d{{6}}Z{re.escape(path)}", dest), dest
        assert sh(lab, host, f"test ! -e {path} || test -L {path}; echo ok").strip() == "ok"
        assert sh(lab, host, f"test -e {dest} || test -L {dest}; stat -c %a {BACKUP}") == "700\n"
    assert sh(lab, "apache", f"cat {moved[('apache', '/etc/apache2/conf-enabled/zz-local.conf')]}") \
        == "NoSuchDirective on\n"
    for host, (path, content) in LEFTOVERS.items():
        assert sh(lab, host, f"cat {moved[(host, path)]}") == content
    # The image's link is back; the module the lab does not use is off again.
    assert sh(lab, "apache", "readlink /etc/apache2/conf-enabled/security.conf") == \
        "../conf-available/security.conf\n"
    assert sh(lab, "apache", "ls /etc/apache2/mods-enabled | grep -c '^rewrite' || true") == "0\n"
    deploy = re.search(r"deploy: (\d+) changes?; (\d+) files? labgen does not own moved aside into "
                       rf"{BACKUP}/ on apache, nginx, ns1, resolver", up.stdout)
    assert deploy and int(deploy.group(1)) >= 4 and int(deploy.group(2)) == len(expected), up.stdout
    assert "exercise config-broken ended: labgen up brought the lab back" in up.stdout

    assert all(outcomes(lab, tmp_path, "host.config_test").values())
    again = labgen(lab, "up")
    assert again.returncode == 0, again.stderr
    assert " moved " not in again.stdout and "labgen does not own" not in again.stdout, again.stdout
    assert "deploy: 0 changes" in again.stdout, again.stdout


def _edit(config, change: dict) -> bytes:
    before = config.read_bytes()
    data = yaml.safe_load(before) or {}
    for key, value in change.items():
        if isinstance(value, dict):
            data.setdefault(key, {}).update(value)
        else:
            data[key] = value
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    return before


def test_a_lab_file_edited_to_match_the_fault_is_refused_and_the_exercise_stays_unsolved(running_lab):
    lab = running_lab
    for exercise_id, change, key in (("caa-foreign", {"caa": {"issuer": "ca.other.example"}}, "caa.issuer"),
                                     ("alt-svc-without-quic", {"http3": False}, "http3")):
        # the shared lab's history may already hold a solved run of this exercise (test_exercises)
        solved_before = len(re.findall(rf"SOLVED\s+{exercise_id}\s", labgen(lab, "exercise", "status").stdout))
        start = labgen(lab, "exercise", "start", exercise_id)
        assert start.returncode == 0, start.stderr
        before = _edit(lab.config, change)
        try:
            for args in (("check", exercise_id), ("check",)):
                refused = labgen(lab, "exercise", *args)
                assert refused.returncode == 2, refused.stdout + refused.stderr
                assert (f"changed since exercise {exercise_id} started: {key} differs from the lab "
                        "the exercise is graded against") in refused.stderr
                assert "solved" not in refused.stdout
            status = labgen(lab, "exercise", "status").stdout
            assert re.search(rf"ACTIVE\s+{exercise_id}\s", status), status
            assert f"the lab file changed since it started ({key})" in status
        finally:
            lab.config.write_bytes(before)  # the same bytes: up does not render again
        graded = labgen(lab, "exercise", "check", exercise_id)  # the pinned lab: graded again
        assert graded.returncode == 1 and f"exercise {exercise_id}: not solved yet" in graded.stdout, \
            graded.stdout + graded.stderr
        solved = labgen(lab, "exercise", "solve", exercise_id)
        assert solved.returncode == 0, solved.stderr
        assert len(re.findall(rf"SOLVED\s+{exercise_id}\s", labgen(lab, "exercise", "status").stdout)) \
            == solved_before  # ended by the trainer, never solved

"""Grades a trainer can trust, tried on the live lab as a student who wants the point without
the fix would: interrupts, the student's own tools and configuration, a stalled server, text
served to the trainer's terminal, pytest's options from the environment.

Each test leaves the shared lab as it found it.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time

import pytest
from conftest import RunningLab

from labtest import run, stall_script, unstall_script

from labgen.render import host_paths

LABGEN = [sys.executable, "-m", "labgen"]


def labgen(lab: RunningLab, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return run([*LABGEN, *args, "-c", str(lab.config)], timeout=600, env=env)


def sh(lab: RunningLab, host: str, script: str) -> subprocess.CompletedProcess:
    result = lab.exec(host, "sh", "-c", script)
    assert result.returncode == 0, f"{host}: {script}: {result.stderr}"
    return result


def interrupted(lab: RunningLab, sig: int, *args: str, after: float = 2.5) -> subprocess.CompletedProcess:
    """labgen ... with sig sent after a few seconds (the checks are then half-way)."""
    proc = subprocess.Popen([*LABGEN, *args, "-c", str(lab.config)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    time.sleep(after)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def active(lab: RunningLab) -> list[str]:
    state = json.loads((lab.build / "exercises.json").read_text())
    return list(state["active"])


@pytest.fixture
def config_broken(running_lab):
    """The exercise config-broken, active; solved by the trainer afterwards if still active."""
    assert labgen(running_lab, "exercise", "start", "config-broken").returncode == 0
    yield running_lab
    if "config-broken" in active(running_lab):
        assert labgen(running_lab, "exercise", "solve", "config-broken").returncode == 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_verify_exits_130_and_prints_no_verdict(running_lab, sig):
    result = interrupted(running_lab, sig, "verify")
    assert result.returncode == 130, result.stdout[-500:] + result.stderr
    assert "verdict" not in result.stdout and "interrupted" in result.stderr


def test_an_interrupted_check_records_nothing(config_broken):
    result = interrupted(config_broken, signal.SIGINT, "exercise", "check", "config-broken")
    assert result.returncode == 130, result.stdout + result.stderr
    assert "solved" not in result.stdout
    assert active(config_broken) == ["config-broken"]
    result = labgen(config_broken, "exercise", "check", "config-broken")
    assert result.returncode == 1 and "not solved yet" in result.stdout, result.stdout


def test_a_fake_config_test_on_path_or_in_place_of_the_real_one_solves_nothing(config_broken):
    lab = config_broken
    sh(lab, "apache", "printf '#!/bin/sh\\nexit 0\\n' > /usr/local/sbin/apache2ctl; "
                      "chmod +x /usr/local/sbin/apache2ctl; cp /usr/sbin/apache2ctl /root/apache2ctl.orig")
    try:
        result = labgen(lab, "exercise", "check", "config-broken")
        assert result.returncode == 1 and "apache2ctl configtest fails" in result.stdout, result.stdout
        sh(lab, "apache", "cp /usr/local/sbin/apache2ctl /usr/sbin/apache2ctl")
        result = labgen(lab, "exercise", "check", "config-broken")
        assert result.returncode == 1 and "not solved yet" in result.stdout, result.stdout
        result = labgen(lab, "verify")
        assert result.returncode == 1
        assert "the tools the grader runs on apache are not the lab image's: /usr/sbin/apache2ctl" \
            in result.stdout
        assert "NOT RUN  The server's own config test passes" in result.stdout
    finally:
        sh(lab, "apache", "cp /root/apache2ctl.orig /usr/sbin/apache2ctl; rm -f /usr/local/sbin/apache2ctl "
                          "/root/apache2ctl.orig")
    assert active(lab) == ["config-broken"]


def test_the_students_workstation_configuration_changes_no_grade(running_lab):
    """A ~/.curlrc that sends every request to another server, /etc/hosts entries and a fake
    curl on the workstation: the grader does not run there."""
    lab, apache = running_lab, running_lab.lab.web[1]
    sh(lab, "client", f"cp /etc/hosts /root/hosts.orig; echo 'connect-to = ::{apache.ipv4}:' > /root/.curlrc; "
                      f"echo '{apache.ipv4} {lab.lab.web[0].fqdn}' >> /etc/hosts; "
                      "printf '#!/bin/sh\\necho HTTP/1.1 200 OK\\n' > /usr/local/bin/curl; chmod +x /usr/local/bin/curl")
    try:
        result = labgen(lab, "verify")
        assert result.returncode == 0, result.stdout[-2000:]
    finally:
        # /etc/hosts is the engine's bind mount: written in place, not replaced
        sh(lab, "client", "rm -f /root/.curlrc /usr/local/bin/curl; cat /root/hosts.orig > /etc/hosts; "
                          "rm /root/hosts.orig")


def test_pytest_options_from_the_environment_change_nothing(running_lab, tmp_path):
    report = tmp_path / "verify.json"
    env = {**os.environ, "PYTEST_ADDOPTS": "-k no_such_check --maxfail=1 --deselect labgen/checks",
           "PYTEST_PLUGINS": "no_such_plugin"}
    result = labgen(running_lab, "verify", "--json", str(report), env=env)
    assert result.returncode == 0, result.stdout[-1000:] + result.stderr
    doc = json.loads(report.read_text())
    ran = {(c["id"], t["name"], v["variant"]) for t in doc["targets"] for c in t["checks"]
           for v in c["variants"]}
    from labgen import verify
    assert ran == verify.expected(running_lab.lab)


def test_a_stalled_server_costs_seconds_and_is_named(running_lab):
    """nginx replaced by a listener that accepts on 80 and 443 and never answers."""
    lab = running_lab
    sh(lab, "nginx", stall_script("nginx"))
    try:
        result = labgen(lab, "verify")  # bench/bench_verify.py --stalled times it
        assert result.returncode == 1
        nginx = lab.lab.web[0]
        assert f"nginx does not answer on {nginx.ipv4} port 443: no answer in" in result.stdout
        assert "ROOT CAUSES" in result.stdout and "verdict: " in result.stdout
    finally:
        sh(lab, "nginx", unstall_script("nginx"))


def test_text_a_server_sends_is_escaped_for_the_terminal(running_lab):
    """An escape sequence in the security.txt a student's server serves (curl refuses control
    characters in headers, not in a body) reaches the scorecard as text, not as a command to
    the trainer's terminal."""
    lab, nginx = running_lab, running_lab.lab.web[0]
    path = host_paths(lab.lab, nginx)["security_txt"]
    edit = ("import sys; p = sys.argv[1]; lines = open(p).read().split('\\n'); "
            "i = next(n for n, l in enumerate(lines) if l.startswith('Contact:')); "
            "lines[i] += '\\x1b]0;owned\\x07\\x1b[2J'; open(p, 'w').write('\\n'.join(lines))")
    sh(lab, "nginx", f"cp {path} /root/security.txt.orig; python3 -c {shlex.quote(edit)} {path}")
    try:
        result = labgen(lab, "verify")
        assert result.returncode == 1
        assert "\x1b" not in result.stdout and "\x07" not in result.stdout
        assert "\\x1b]0;owned\\x07\\x1b[2J" in result.stdout, result.stdout[-3000:]
    finally:
        sh(lab, "nginx", f"cp /root/security.txt.orig {path}; rm /root/security.txt.orig")


def test_a_fix_that_breaks_another_check_is_not_solved(config_broken):
    lab = config_broken
    sh(lab, "apache", "rm /etc/apache2/conf-enabled/zz-local.conf")
    sh(lab, "nginx", "systemctl stop nginx")  # the student's "fix" took nginx down with it
    try:
        result = labgen(lab, "exercise", "check", "config-broken")
        assert result.returncode == 1, result.stdout
        assert "also failing, and not part of this exercise (something else broke)" in result.stdout
        assert "not run: nginx does not answer on" in result.stdout
        assert active(lab) == ["config-broken"]
    finally:
        sh(lab, "nginx", "systemctl start nginx")
    result = labgen(lab, "exercise", "check", "config-broken")
    assert result.returncode == 0 and "config-broken: solved" in result.stdout, result.stdout


def test_a_check_that_cannot_run_during_grading_is_no_pass(config_broken):
    """The fix is in place but Apache is down: its checks are not run, so nothing is solved."""
    lab = config_broken
    sh(lab, "apache", "rm /etc/apache2/conf-enabled/zz-local.conf; systemctl stop apache2")
    try:
        result = labgen(lab, "exercise", "check", "config-broken")
        assert result.returncode == 1 and "not solved yet" in result.stdout, result.stdout
        assert "not run: apache does not answer on" in result.stdout
    finally:
        sh(lab, "apache", "systemctl start apache2")


def test_a_failure_another_active_exercise_explains_is_no_regression(config_broken):
    lab = config_broken
    assert labgen(lab, "exercise", "start", "tls-old-versions").returncode == 0
    try:
        sh(lab, "apache", "rm /etc/apache2/conf-enabled/zz-local.conf && apache2ctl configtest")
        result = labgen(lab, "exercise", "check", "config-broken")
        assert result.returncode == 0 and "config-broken: solved" in result.stdout, result.stdout
        assert active(lab) == ["tls-old-versions"]
        result = labgen(lab, "exercise", "check")  # every active one: tls-old-versions is not fixed
        assert result.returncode == 1 and "tls-old-versions: not solved yet" in result.stdout
    finally:
        assert labgen(lab, "exercise", "solve", "tls-old-versions").returncode == 0

"""A student is root in their own hosts: what comes back out of a container is hostile input to
the trainer's side (issue 33). Each route a root student has is tried here on a live lab and
shown refused; the lab is put back (and proven healthy) after each.

The deploy: labgen_tree's module runs on the host's own python3, which such a student can
replace. Its answer once made the controller pack any file of the trainer's machine (a path
with ../) and write the archive through a link inside the container (podman mount).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time

import pytest
from conftest import lab_up
from test_grading_trust import labgen, sh

from labgen import lifecycle

RED_LAB = {"name": "itestred", "servers": [{"name": "nginx", "software": "nginx"}],
           "network": {"ipv4": "10.84.0.0/24", "ipv6": "2001:db8:84::/64"}}


@pytest.fixture(scope="module")
def red_lab(tmp_path_factory):
    yield from lab_up(tmp_path_factory, RED_LAB)


def hostile_python(lab, host: str, answer: dict) -> None:
    """The host's python3 answers every module call with `answer`, whatever it is asked."""
    encoded = base64.b64encode(json.dumps(answer).encode()).decode()
    sh(lab, host, f"echo {encoded} | base64 -d > /root/.answer.json && "
                  "real=$(readlink -f /usr/bin/python3) && cp -a \"$real\" /usr/bin/python3.labgen-real && "
                  "rm /usr/bin/python3 && printf '#!/bin/sh\\ncat >/dev/null\\ncat /root/.answer.json\\n' "
                  "> /usr/bin/python3 && chmod 755 /usr/bin/python3")


def restore_python(lab, host: str) -> None:
    sh(lab, host, "mv /usr/bin/python3.labgen-real /usr/bin/python3")
    # The next deploy must send what the hostile answer kept back: make one file differ.
    sh(lab, host, f"echo changed >> {a_manifest_file(lab, host)}")
    result = labgen(lab, "up")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert all(r.healthy for r in lifecycle.status(lab.lab, lab.engine))


def a_manifest_file(lab, host: str) -> str:
    manifest = json.loads((lab.build / "manifests" / f"{host}.json").read_text())
    return sorted(manifest["files"])[0]


def test_a_host_cannot_make_the_deploy_read_a_file_of_the_trainer(red_lab, tmp_path):
    secret = tmp_path / f"trainer-secret-{secrets.token_hex(4)}"
    secret.write_text(marker := secrets.token_hex(16))
    escape = "/" + "../" * 12 + str(secret).lstrip("/")
    hostile_python(red_lab, "nginx", {"changed": False, "files": [escape], "dirs": [], "stage": "/root/loot",
                                      "service": "", "moved": []})
    try:
        result = labgen(red_lab, "up")
        assert result.returncode != 0, result.stdout[-2000:]
        assert "asked for 1 path(s) outside its manifest" in result.stderr and "nothing was sent" in result.stderr
        assert "nginx" in result.stderr
        found = red_lab.exec("nginx", "sh", "-c", f"grep -rl {marker} /root /tmp /var/tmp 2>/dev/null")
        assert found.stdout == "", f"the trainer's file reached the container: {found.stdout}"
    finally:
        restore_python(red_lab, "nginx")


def test_a_host_cannot_make_the_deploy_write_through_its_link(red_lab, tmp_path):
    target = tmp_path / "trainer-folder"
    target.mkdir()
    sh(red_lab, "nginx", f"mkdir -p /root/stage && ln -sfn {target} /root/evil && "
                         f"ln -sfn {target} /root/stage/link")
    wanted = a_manifest_file(red_lab, "nginx")
    hostile_python(red_lab, "nginx", {"changed": False, "files": [wanted], "dirs": [], "stage": "/root/evil",
                                      "service": "", "moved": []})
    try:
        labgen(red_lab, "up")  # whatever it says: the trainer's folder must stay untouched
        assert list(target.iterdir()) == [], "the deploy wrote on the trainer's machine through a link"
    finally:
        restore_python(red_lab, "nginx")
        sh(red_lab, "nginx", "rm -rf /root/evil /root/stage")


def test_an_escape_sequence_in_a_deploy_answer_reaches_no_terminal(red_lab):
    hostile_python(red_lab, "nginx", {"failed": True, "msg": "\x1b]0;owned\x07\x1b[2Jboom\rover"})
    try:
        result = labgen(red_lab, "up")
        assert result.returncode != 0
        shown = result.stdout + result.stderr
        assert "\x1b" not in shown and "\x07" not in shown and "\r" not in shown
        assert "\\x1b]0;owned\\x07\\x1b[2Jboom over" in result.stderr, result.stderr
    finally:
        restore_python(red_lab, "nginx")


@pytest.mark.parametrize("stand_in", ["mkfifo /usr/sbin/nginx", "truncate -s 2G /usr/sbin/nginx"],
                         ids=["fifo", "huge-file"])
def test_a_fifo_or_a_huge_file_at_a_tool_path_is_named_not_waited_for(red_lab, stand_in):
    """The grader reads its tools from outside without blocking and at most 64 MiB of each: a
    FIFO once hung `labgen verify` for more than 300 s."""
    sh(red_lab, "nginx", f"cp -a /usr/sbin/nginx /root/nginx.orig && rm /usr/sbin/nginx && {stand_in}")
    try:
        started = time.monotonic()
        result = labgen(red_lab, "verify")
        took = time.monotonic() - started
        assert result.returncode == 1, result.stdout[-2000:]
        assert "the tools the grader runs on nginx are not the lab image's: /usr/sbin/nginx" in result.stdout
        assert took < 120, f"verify took {took:.0f} s"
    finally:
        sh(red_lab, "nginx", "rm -f /usr/sbin/nginx && mv /root/nginx.orig /usr/sbin/nginx")


def test_a_fork_bomb_stops_at_its_own_container(red_lab):
    """Every lab container has a pids and a memory limit (engine.LIMITS): a student's 2,000
    processes stop at 1,024 tasks in their own host, and the rest of the lab keeps answering."""
    client = red_lab.lab.container(red_lab.lab.role("client"))
    red_lab.exec("client", "sh", "-c", "n=0; while [ $n -lt 2000 ]; do sleep 15 & n=$((n+1)); done")
    # counted from outside (the container's cgroup): inside, not even pgrep could start now
    tasks = int(red_lab.engine.run("stats", "--no-stream", "--format", "{{.PIDs}}", client).stdout.strip())
    assert 900 < tasks <= 1024, f"{tasks} tasks in the client"
    deadline = time.monotonic() + 60
    while int(red_lab.engine.run("stats", "--no-stream", "--format", "{{.PIDs}}", client).stdout.strip()) > 100:
        assert time.monotonic() < deadline, "the client's processes did not end"
        time.sleep(2)
    assert all(r.healthy for r in lifecycle.status(red_lab.lab, red_lab.engine))
    for name in ("client", "probe", "nginx"):
        limits = red_lab.engine.run("inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}}",
                                    red_lab.lab.container(red_lab.lab.role(name) if name != "nginx"
                                                          else red_lab.lab.web[0])).stdout.split()
        assert limits == ["1073741824", "1024"], (name, limits)


# A DNS proxy for the resolver's port 53: every answer of the real (non-validating) Unbound,
# moved to port 5353, gets the AD flag; every name with a "bogus" label gets SERVFAIL.
AD_PROXY = r"""
import socket, threading
def serve(family, address):
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((address, 53))
    while True:
        query, peer = s.recvfrom(4096)
        labels, i = [], 12
        while query[i]:
            labels.append(query[i + 1:i + 1 + query[i]].lower()); i += 1 + query[i]
        if b"bogus" in labels:
            answer = query[:2] + bytes([0x80 | (query[2] & 0x79), 0x82]) + b"\0\1\0\0\0\0\0\0" + query[12:i + 5]
        else:
            up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); up.settimeout(10)
            up.sendto(query, ("127.0.0.1", 5353))
            answer = bytearray(up.recv(65535)); answer[3] |= 0x20; answer = bytes(answer)
        s.sendto(answer, peer)
threading.Thread(target=serve, args=(socket.AF_INET6, "::"), daemon=True).start()
serve(socket.AF_INET, "0.0.0.0")
"""


# On ns1: one byte of the CAA set's signature changed in the signed zone: the data are right,
# their signature is not.
BREAK_CAA_SIGNATURE = r"""
import re, sys
path = sys.argv[1]
lines = open(path).read().split("\n")
for i, line in enumerate(lines):
    if re.search(r"\sRRSIG\s+CAA\s", line):
        head, sig = line.rsplit(" ", 1)
        lines[i] = head + " " + ("B" if sig[0] == "A" else "A") + sig[1:]
open(path, "w").write("\n".join(lines))
"""


def test_a_resolver_that_claims_ad_for_everything_solves_nothing(red_lab):
    """The grader's DNS truth is its own resolver on the probe, from labgen's trust anchor: with
    the CAA set's signature broken on ns1, an Unbound with validation off behind a proxy that
    sets AD on every answer (and refuses every 'bogus' name) makes the workstation see valid,
    authenticated CAA data, and caa.issuer still fails."""
    lab = red_lab
    conf, zone = "/etc/unbound/unbound.conf", f"/etc/bind/labgen/db.{lab.lab.domain}"
    proxy = base64.b64encode(AD_PROXY.encode()).decode()
    breaker = base64.b64encode(BREAK_CAA_SIGNATURE.encode()).decode()
    try:
        sh(lab, "ns1", f"cp {zone} /root/zone.orig && echo {breaker} | base64 -d | python3 - {zone} && "
                       "systemctl restart named")
        sh(lab, "resolver", f"cp {conf} /root/unbound.conf.orig && "
                            f"sed -i 's/^server:/server:\\n    port: 5353\\n    module-config: \"iterator\"/' {conf} && "
                            f"systemctl restart unbound && echo {proxy} | base64 -d > /root/proxy.py && "
                            "(setsid python3 /root/proxy.py >/dev/null 2>&1 &) && sleep 1")
        claimed = sh(lab, "client", f"dig +dnssec CAA {lab.lab.domain}").stdout
        assert "status: NOERROR" in claimed and re.search(r"flags: [a-z ]*\bad\b", claimed), claimed
        assert re.search(r"CAA\s+0 issue", claimed), claimed
        result = labgen(lab, "verify")
        assert result.returncode == 1, result.stdout[-2000:]
        assert re.search(r"FAIL  CAA exists and names the lab CA  \[caa.issuer", result.stdout), result.stdout[-3000:]
    finally:
        sh(lab, "resolver", f"pkill -f 'python3 /root/[p]roxy.py'; cp /root/unbound.conf.orig {conf}; "
                            "systemctl restart unbound")
        sh(lab, "ns1", f"cp /root/zone.orig {zone} && systemctl restart named")
    assert labgen(lab, "verify").returncode == 0


def test_a_trust_anchor_swapped_on_the_resolver_solves_nothing(red_lab):
    """On a single lab the resolver's trust anchor is the student's: swapped for the DS of the key
    that broke the zone, the resolver validates again, and the grade stays failing."""
    lab = red_lab
    assert labgen(lab, "exercise", "start", "algorithm-flag-day").returncode == 0
    anchor = f"/etc/unbound/labgen/{lab.lab.domain}.ds"
    try:
        sh(lab, "resolver", f"cp {anchor} /root/anchor.orig && dig +cd +noall +answer "
                            f"@{lab.lab.role('authdns').ipv4} {lab.lab.domain} DNSKEY | grep -w 257 | "
                            f"dnssec-dsfromkey -f - {lab.lab.domain} > {anchor} && systemctl restart unbound")
        validated = sh(lab, "client", f"dig +dnssec {lab.lab.web[0].fqdn} A").stdout
        assert re.search(r"flags: [a-z ]*\bad\b", validated), validated  # the resolver is fooled
        result = labgen(lab, "exercise", "check", "algorithm-flag-day")
        assert result.returncode == 1 and "not solved yet" in result.stdout, result.stdout
    finally:
        sh(lab, "resolver", f"cp /root/anchor.orig {anchor} && systemctl restart unbound")
        assert labgen(lab, "exercise", "solve", "algorithm-flag-day").returncode == 0
    assert labgen(lab, "verify").returncode == 0

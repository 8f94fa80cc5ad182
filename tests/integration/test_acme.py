"""Certificates from the lab's own ACME CA (certificates: acme) on a live lab, at the test pace:
the lab comes up with pebble's certificates, fetched by certbot over HTTP-01, and verifies; a
renewal keeps the key; a key roll publishes the next key's TLSA a TTL ahead and the probe's watch,
taking each server's key in a TLS handshake every second, records no DANE failure; a renewal that
takes a new key is caught by the watch and put right by labgen up; every ACME exercise breaks what
it says and its model student fix solves it; the TLS key roll drill is graded by the probe."""

from __future__ import annotations

import json
import re
import subprocess
import time

import pytest
from conftest import lab_up

from labgen import acme, signing
from labgen.exercises import catalogue
from labgen.exercises.faults import run_steps
from labtest import until_solved
from test_grading_trust import LABGEN, labgen, sh

ACME_LAB = {"name": "itacme", "dnssec": {"signer": "bind", "pace": "test"},
            "certificates": {"issuer": "acme", "lifetime": "test"},
            "network": {"ipv4": "10.81.0.0/24", "ipv6": "2001:db8:81::/64"}}
EXERCISES = [e for e in catalogue().values() if "acme" in e.requires and not e.drill]
DRILL = next(e for e in catalogue().values() if e.drill == "tls")
DRILL_LIMIT = 120  # seconds the TLS key roll drill may take at the test pace (about 30)
SPKI = ("openssl s_client -connect {ip}:443 -servername {fqdn} </dev/null 2>/dev/null | openssl x509 -noout "
        "-pubkey | openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1")


@pytest.fixture(scope="module")
def acme_lab(tmp_path_factory):
    yield from lab_up(tmp_path_factory, ACME_LAB)


def served(lab, web) -> str:
    return sh(lab, "probe", SPKI.format(ip=web.ipv4, fqdn=web.fqdn)).stdout.strip()


def tlsa(lab, web) -> set[str]:
    out = sh(lab, "probe", f"dig +norec +short @{lab.lab.role('authdns').ipv4} _443._tcp.{web.fqdn} TLSA").stdout
    return {"".join(line.split()[3:]).lower() for line in out.splitlines() if line.split()[:3] == ["3", "1", "1"]}


def watching(lab, tmp_path, seconds: int) -> subprocess.Popen:
    return subprocess.Popen([*LABGEN, "watch", "--seconds", str(seconds), "--json", str(tmp_path / "watch.json"),
                             "-c", str(lab.config)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_the_lab_comes_up_with_the_acme_cas_certificates_and_verifies(acme_lab):
    lab = acme_lab
    for web in lab.lab.web:
        text = sh(lab, "probe", f"openssl s_client -connect {web.ipv4}:443 -servername {web.fqdn} </dev/null "
                                "2>/dev/null | openssl x509 -noout -issuer -startdate -enddate -dateopt iso_8601").stdout
        assert "Pebble Intermediate CA" in text, text
        start, end = (re.search(rf"{k}=(\S+ \S+)", text).group(1) for k in ("notBefore", "notAfter"))
        life = time.mktime(time.strptime(end, "%Y-%m-%d %H:%M:%SZ")) - time.mktime(time.strptime(start, "%Y-%m-%d %H:%M:%SZ"))
        assert 0 < life <= acme.LIFETIMES["test"], text
        # the TLSA record names the served key and a next key, and nothing else
        names = tlsa(lab, web)
        assert served(lab, web) in names and len(names) == 2, names
        keys = sh(lab, web.name, f"stat -c '%a %U %n' /etc/labgen/acme/*.key {acme.CERTS_STATE}/*.key "
                                 "/etc/ssl/labgen/private/*.key").stdout.split("\n")
        assert all(line.startswith("600 root ") for line in keys if line), keys
    assert sh(lab, "ns1", f"stat -c '%a %U %G' {signing.TSIG_WORK}").stdout.strip() == "640 root bind"
    result = labgen(lab, "verify")
    assert result.returncode == 0, result.stdout[-3000:]
    for check in ("dane.next_key", "https.lifetime", "host.renewal_timer", "host.served_current",
                  "https.acme_challenge"):
        assert re.search(rf"PASS .*\[{re.escape(check)};", result.stdout), check
    # the student's workstation trusts the ACME CA's root, and a key may change only its own TLSA
    assert sh(lab, "client", f"curl -sS -o /dev/null -w '%{{http_code}}' https://{lab.lab.web[0].fqdn}/").stdout == "200"
    other = lab.lab.web[1]
    refused = lab.exec(lab.lab.web[0].name, "sh", "-c", (
        f"printf 'server {lab.lab.role('authdns').ipv4}\\nzone {lab.lab.domain}\\nupdate add _443._tcp.{other.fqdn}. "
        f"10 TLSA 3 1 1 {'00' * 32}\\nsend\\n' | nsupdate -k {acme.tsig_path(lab.lab.web[0])}"))
    assert refused.returncode != 0 and "REFUSED" in refused.stdout + refused.stderr, refused.stdout + refused.stderr
    # a re-up changes nothing: no file, no certificate, no trust store
    again = labgen(lab, "up")
    assert again.returncode == 0 and not re.search(r"^\s+\S+\s+changed\s", again.stdout, re.M), again.stdout


def test_a_renewal_keeps_the_key_and_a_roll_changes_it_with_no_dane_failure(acme_lab, tmp_path):
    lab = acme_lab
    nginx, apache = lab.lab.web
    watch = watching(lab, tmp_path, 60)
    time.sleep(3)
    before = served(lab, nginx)
    serial = sh(lab, "probe", f"openssl s_client -connect {nginx.ipv4}:443 </dev/null 2>/dev/null | openssl x509 -noout -serial").stdout
    renewed = sh(lab, "nginx", "labgen-certs renew --force").stdout
    assert "(same key)" in renewed and served(lab, nginx) == before, renewed
    assert sh(lab, "probe", f"openssl s_client -connect {nginx.ipv4}:443 </dev/null 2>/dev/null | openssl x509 -noout -serial").stdout != serial
    upcoming = tlsa(lab, nginx) - {before}
    rolled = sh(lab, "nginx", "labgen-certs roll").stdout
    assert "now serving the next key" in rolled, rolled
    now = served(lab, nginx)
    assert {now} == upcoming and before not in tlsa(lab, nginx) and now in tlsa(lab, nginx) and len(tlsa(lab, nginx)) == 2
    # two rolls in a row: the second waits until the new next key's record has been out for its TTL
    sh(lab, "apache", "labgen-certs roll")
    begun = time.monotonic()
    second = sh(lab, "apache", "labgen-certs roll").stdout
    assert "waiting" in second and time.monotonic() - begun >= acme.publish_wait(lab.lab) - 5, second
    out, err = watch.communicate(timeout=120)
    assert watch.returncode == 0, out + err
    doc = json.loads((tmp_path / "watch.json").read_text())
    dane = [q for q in doc["questions"] if q.endswith(" DANE")]
    assert len(dane) == 2 and not doc["failures"] and doc["rounds"] >= 40, doc["failures"][:3]
    served_bars = [b["label"] for b in doc["bars"] if b["label"].startswith("served nginx ")]
    assert len(served_bars) == 2, served_bars  # the old key, then the new one


def test_a_renewal_with_a_new_key_is_caught_by_the_watch_and_up_puts_it_right(acme_lab, tmp_path):
    lab = acme_lab
    nginx = lab.lab.web[0]
    watch = watching(lab, tmp_path, 25)
    time.sleep(3)
    sh(lab, "nginx", "labgen-certs renew --new-key")
    out, err = watch.communicate(timeout=90)
    assert watch.returncode == 1 and "DANE MISMATCH" in out and nginx.fqdn in out, out + err
    assert served(lab, nginx) not in tlsa(lab, nginx)
    up = labgen(lab, "up")
    assert up.returncode == 0, up.stdout + up.stderr
    assert served(lab, nginx) in tlsa(lab, nginx)
    result = labgen(lab, "verify")
    assert result.returncode == 0, result.stdout[-3000:]


@pytest.mark.parametrize("exercise_id", [e.id for e in EXERCISES])
def test_an_acme_exercise_breaks_what_it_says_and_the_student_fix_solves_it(acme_lab, exercise_id):
    lab, exercise = acme_lab, catalogue()[exercise_id]
    started = labgen(lab, "exercise", "start", exercise.id)
    assert started.returncode == 0, started.stdout + started.stderr
    checked = labgen(lab, "exercise", "check", exercise.id)
    assert checked.returncode == 1 and "not solved yet" in checked.stdout, checked.stdout + checked.stderr
    for selector in exercise.breaks:
        assert selector.check in checked.stdout, checked.stdout
    run_steps(lab.lab, lab.build, lab.engine, exercise, exercise.student)
    deadline = time.monotonic() + 30  # a DANE fix is seen once the resolver's TLSA TTL (10 s) passed
    while True:
        checked = labgen(lab, "exercise", "check", exercise.id)
        if checked.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert checked.returncode == 0 and "solved in" in checked.stdout, checked.stdout + checked.stderr


@pytest.mark.parametrize("exercise_id", ["renewal-new-key", "renewal-stopped"])
def test_solve_puts_an_acme_fault_right(acme_lab, exercise_id):
    lab = acme_lab
    assert labgen(lab, "exercise", "start", exercise_id).returncode == 0
    solved = labgen(lab, "exercise", "solve", exercise_id)
    assert solved.returncode == 0, solved.stdout + solved.stderr
    time.sleep(11)  # the resolver's TLSA TTL
    result = labgen(lab, "verify")
    assert result.returncode == 0, result.stdout[-3000:]


def test_the_tls_key_roll_drill_done_by_the_book_is_solved_with_no_failure_recorded(acme_lab):
    lab = acme_lab
    started = labgen(lab, "exercise", "start", DRILL.id)
    assert started.returncode == 0, started.stdout + started.stderr
    first = labgen(lab, "exercise", "check", DRILL.id)
    assert first.returncode == 1 and "to serve a new key" in first.stdout, first.stdout
    checked = None
    try:
        run_steps(lab.lab, lab.build, lab.engine, DRILL, DRILL.student)
        checked, took = until_solved(lambda: labgen(lab, "exercise", "check", DRILL.id), DRILL_LIMIT, 5)
    finally:  # a drill left running would fail the next test's start as well
        if checked is None or checked.returncode != 0:
            labgen(lab, "exercise", "solve", DRILL.id)
    assert checked.returncode == 0 and "solved in" in checked.stdout, checked.stdout + checked.stderr
    print(f"{DRILL.id}: solved {took:.0f} s after the roll began")


def test_a_tls_roll_that_takes_a_fresh_key_fails_the_drill(acme_lab):
    lab = acme_lab
    assert labgen(lab, "exercise", "start", DRILL.id).returncode == 0
    try:
        sh(lab, "nginx", "labgen-certs renew --new-key && sleep 4")
        checked = labgen(lab, "exercise", "check", DRILL.id)
        assert checked.returncode == 1 and "answers were not secure" in checked.stdout \
            and "dane mismatch" in checked.stdout, checked.stdout
    finally:
        assert labgen(lab, "exercise", "solve", DRILL.id).returncode == 0
        assert labgen(lab, "up").returncode == 0

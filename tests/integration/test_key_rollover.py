"""BIND signing the zone on a live lab (dnssec.signer: bind, at the test pace): the lab comes up
signed by BIND with the keys labgen made and verifies; every drill of the catalogue, done with
its model student steps, is solved with no answer recorded that was not secure; a botched roll is
caught by the probe's watch; a re-up after a roll leaves BIND's keys alone."""

from __future__ import annotations

import json
import re
import subprocess
import time

import pytest
from conftest import lab_up

from labgen import signing
from labgen.exercises import catalogue, drill
from labgen.exercises.faults import run_steps
from labtest import until_solved
from test_grading_trust import LABGEN, labgen, sh
from test_verify import page_text

# The DNSKEY set outlives the other records in the caches (30 s against 10 s), so a ZSK used
# before its DNSKEY reached them is met by validators for 20 s at least: the botched roll shows.
ONLINE_LAB = {"name": "itestroll", "dnssec": {"signer": "bind", "pace": "test", "timings": {"dnskey_ttl": 30}},
              "network": {"ipv4": "10.78.0.0/24", "ipv6": "2001:db8:78::/64"}}
# One combined key, NSEC3 and Ed25519: the CSK drill's lab.
CSK_LAB = {"name": "itestcsk", "dnssec": {"signer": "bind", "pace": "test", "keys": "csk",
                                          "algorithm": "ED25519", "denial": "nsec3"},
           "network": {"ipv4": "10.79.0.0/24", "ipv6": "2001:db8:79::/64"}}
ONLINE = [e for e in catalogue().values() if "online_signing" in e.requires and "acme" not in e.requires]
DRILLS = [e for e in ONLINE if e.drill]
DRILL_LIMIT = 300  # seconds a drill may take at the test pace (a ZSK roll takes about 80)
WATCH = 100  # seconds labgen watch draws the KSK roll for (it takes about 60)


@pytest.fixture(scope="module")
def online_lab(tmp_path_factory):
    yield from lab_up(tmp_path_factory, ONLINE_LAB)


@pytest.fixture(scope="module")
def csk_lab(tmp_path_factory):
    yield from lab_up(tmp_path_factory, CSK_LAB)


def status(lab) -> str:
    return sh(lab, "ns1", f"rndc dnssec -status {lab.lab.domain}").stdout


def tags(text: str, role: str) -> set[str]:
    return set(re.findall(rf"^key: (\d+) \(\w+\), {role}$", text, re.M))


def test_bind_signs_with_labgens_keys_and_the_lab_verifies(online_lab):
    lab = online_lab
    rendered = {p.name for p in (lab.build / "hosts/ns1/etc/bind/labgen/keys").glob("*.key")}
    now = status(lab)
    assert {f"K{lab.lab.domain}.+013+{int(t):05d}.key" for t in tags(now, "KSK") | tags(now, "ZSK")} == rendered
    assert "dnssec-policy: labgen" in now and now.count("No rollover scheduled") == 2
    # BIND signs: the signatures are its own (fresh, at the test pace's validity), by the ZSK
    soa = sh(lab, "probe", f"dig +dnssec +norec @ns1.{lab.lab.domain} {lab.lab.domain} SOA").stdout
    rrsig = re.search(r"RRSIG\s+SOA \d+ \d+ \d+ (\d{14}) (\d{14}) (\d+) ", soa)
    assert rrsig and rrsig.group(3) in tags(now, "ZSK"), soa
    keys = sh(lab, "ns1", f"stat -c '%a %U %n' {signing.WORK_KEYS}/*.private").stdout.split("\n")
    assert all(line.startswith("600 bind ") for line in keys if line), keys
    result = labgen(lab, "verify")
    assert result.returncode == 0, result.stdout[-3000:]


@pytest.mark.parametrize("exercise_id", [e.id for e in DRILLS if e.drill != "algorithm"])
def test_a_drill_done_by_the_book_is_solved_with_no_failure_recorded(request, tmp_path, exercise_id):
    drill_by_the_book(request, tmp_path, exercise_id)


def drill_by_the_book(request, tmp_path, exercise_id: str) -> None:
    exercise = catalogue()[exercise_id]
    lab = request.getfixturevalue("csk_lab" if "csk" in exercise.requires else "online_lab")
    started = labgen(lab, "exercise", "start", exercise.id)
    assert started.returncode == 0 and exercise.title in started.stdout, started.stdout + started.stderr
    first = labgen(lab, "exercise", "check", exercise.id)
    assert first.returncode == 1 and "expected a new " in first.stdout, first.stdout + first.stderr
    # beside the drill's own record, labgen watch draws the KSK roll: both keys and both DS as bars
    watching = None
    if exercise.drill == "ksk":
        page = tmp_path / "roll.html"
        watching = subprocess.Popen([*LABGEN, "watch", "--seconds", str(WATCH), "--json", str(tmp_path / "roll.json"),
                                     "--html", str(page), "-c", str(lab.config)],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_steps(lab.lab, lab.build, lab.engine, exercise, exercise.student)
    checked, took = until_solved(lambda: labgen(lab, "exercise", "check", exercise.id), DRILL_LIMIT, 10,
                                 never=("not secure", "did not run the whole time"))
    assert checked.returncode == 0 and re.search(rf"exercise {exercise.id}: solved in .* with 0 hints",
                                                 checked.stdout), checked.stdout + checked.stderr
    print(f"{exercise.id}: solved {took:.0f} s after the roll began")
    # the parent's DS names the key-signing key now in the DNSKEY set, and nothing else
    ds = sh(lab, "probe", f"dig +norec +short @{lab.lab.parent.ns_ipv4} {lab.lab.domain} DS").stdout
    ksk = {str(k["tag"]) for k in drill.keys(lab.lab, lab.engine) if k["flags"] == 257}
    assert {line.split()[0] for line in ds.splitlines()} == ksk and ksk, ds
    if watching:
        out, err = watching.communicate(timeout=WATCH + 60)
        assert watching.returncode == 0, out + err
        doc = json.loads((tmp_path / "roll.json").read_text())
        bars = {b["label"]: b for b in doc["bars"]}
        new, = ksk
        old = [label.split()[1] for label in bars if label.endswith(" KSK") and label.split()[1] != new]
        assert len(old) == 1 and {f"DNSKEY {new} KSK", f"DS {new}", f"DS {old[0]}"} <= set(bars), bars
        # the old DS went before the old key, and the new key was there before its DS
        assert bars[f"DS {old[0]}"]["to"] <= bars[f"DNSKEY {old[0]} KSK"]["to"], bars
        assert bars[f"DNSKEY {new} KSK"]["from"] <= bars[f"DS {new}"]["from"], bars
        assert page.read_text().count('<rect class="ds"') == 2 and "Keys and DS" in page_text(page)
    # the watch on the probe stopped with the drill
    assert sh(lab, "probe", f"systemctl is-active labgen-drill-{exercise.id} || true").stdout.strip() != "active"


# A ZSK roll that skips the waits: BIND starts it, then the key states are forced so the new
# key signs at once and the old one goes at once, while the resolver still holds the old
# DNSKEY set ("a ZSK used before its DNSKEY propagated").
BOTCHED_ZSK_ROLL = r"""set -e
cd {keys}
old=$(dig +norec +dnssec @127.0.0.1 {domain} SOA | awk '$4 == "RRSIG" && $5 == "SOA" {{print $11; exit}}')
rndc dnssec -rollover -key $old {domain} >/dev/null
sleep 1
new=$(grep -l '^ZSK: yes' K*.state | xargs grep -L '^ZRRSIGState: omnipresent' | head -n 1)
oldfile=$(ls K*+$(printf %05d $old).key)
dnssec-settime -s -g OMNIPRESENT -k OMNIPRESENT now -z OMNIPRESENT now "${{new%.state}}" >/dev/null
dnssec-settime -s -g HIDDEN -k HIDDEN now -z HIDDEN now "${{oldfile%.key}}" >/dev/null
chown bind:bind K*
rndc loadkeys {domain} >/dev/null
"""


# The student hides the botched roll from the lab resolver: flushed every second while it runs.
FLUSHING = ("for i in $(seq 90); do unbound-control flush_zone {domain}; unbound-control flush_bogus; "
            "unbound-control flush_infra all; sleep 1; done >/dev/null 2>&1 &")


def test_a_botched_roll_is_caught_by_the_probe_even_when_the_lab_resolver_is_flushed(online_lab):
    lab = online_lab
    drill = next(e for e in DRILLS if e.drill == "zsk")
    assert labgen(lab, "exercise", "start", drill.id).returncode == 0
    try:
        sh(lab, "resolver", FLUSHING.format(domain=lab.lab.domain))
        sh(lab, "ns1", BOTCHED_ZSK_ROLL.format(keys=signing.WORK_KEYS, domain=lab.lab.domain))
        deadline = time.monotonic() + 60
        while True:
            checked = labgen(lab, "exercise", "check", drill.id)
            if "not secure" in checked.stdout or time.monotonic() > deadline:
                break
            time.sleep(5)
        assert checked.returncode == 1 and "answers were not secure while the drill ran" in checked.stdout, \
            checked.stdout + checked.stderr
        assert re.search(r"SERVFAIL|insecure|no answer", checked.stdout), checked.stdout
        # while the lab's own resolver, flushed, has nothing to show
        answer = sh(lab, "client", f"dig +dnssec {lab.lab.domain} SOA").stdout
        assert "status: NOERROR" in answer and " ad" in answer.split("flags:")[1].split(";")[0], answer
    finally:
        assert labgen(lab, "exercise", "solve", drill.id).returncode == 0
        # the resolver remembers the failures (val-bogus-ttl): the next tests start clean
        sh(lab, "resolver", f"unbound-control flush_bogus && unbound-control flush_zone {lab.lab.domain}")


def test_a_re_up_leaves_bind_its_keys_and_their_state(online_lab):
    lab = online_lab
    before = status(lab)
    result = labgen(lab, "up")
    assert result.returncode == 0, result.stdout + result.stderr
    after = status(lab)
    assert tags(after, "ZSK") == tags(before, "ZSK") and tags(after, "KSK") == tags(before, "KSK")
    assert labgen(lab, "verify").returncode == 0


@pytest.mark.parametrize("exercise_id", [e.id for e in DRILLS if e.drill == "algorithm"])
def test_an_algorithm_roll_by_the_book_is_solved_with_no_failure_recorded(request, tmp_path, exercise_id):
    """Last: it leaves the lab on another algorithm than its lab file's."""
    drill_by_the_book(request, tmp_path, exercise_id)
    lab = request.getfixturevalue("online_lab")
    assert {k["algorithm"] for k in drill.keys(lab.lab, lab.engine)} == {15}


GOING_INSECURE = 120  # seconds the parent may take to drop the DS at the test pace
AFTER_DROP = 30  # seconds the answers are watched after it did


def test_a_zone_going_insecure_has_the_parent_drop_its_ds_and_never_fails(csk_lab):
    """RFC 8078: with dnssec-policy insecure, BIND publishes the delete CDS; the parent checks it
    through the DS it holds and removes the DS. Every answer through the resolver meanwhile is
    NOERROR, never SERVFAIL; once the resolver lets go of the keys it cached (BIND's insecure
    policy publishes them for an hour; here it is told to), the answers are insecure."""
    lab, domain = csk_lab, csk_lab.lab.domain
    web = lab.lab.web[0].fqdn
    sh(lab, "ns1", "sed -i 's/dnssec-policy \"labgen\";/dnssec-policy insecure;/' /etc/bind/named.conf "
                   "&& rndc reconfig")
    begun, statuses, dropped = time.monotonic(), set(), None
    while time.monotonic() - begun < GOING_INSECURE + AFTER_DROP:
        answer = sh(lab, "client", f"dig +dnssec +time=2 +tries=1 {web} AAAA").stdout
        statuses.add(re.search(r"status: (\w+)", answer).group(1) if "status:" in answer else "no answer")
        ds = sh(lab, "probe", f"dig +norec +short @{lab.lab.parent.ns_ipv4} {domain} DS").stdout.strip()
        if not ds and dropped is None:
            dropped = time.monotonic() - begun
        if dropped is None and time.monotonic() - begun > GOING_INSECURE or \
                dropped is not None and time.monotonic() - begun > dropped + AFTER_DROP:
            break
        time.sleep(2)
    print(f"the parent dropped the DS {dropped} s after the zone went insecure")
    assert dropped is not None, f"the parent still publishes the DS of {domain} after {GOING_INSECURE} s"
    assert statuses == {"NOERROR"}, statuses
    scan = sh(lab, "parent", "journalctl -u labgen-cds-scan --no-pager -o cat").stdout
    assert f"{domain}: the DS set is gone: the child asked with a delete CDS (RFC 8078)" in scan, scan[-2000:]
    sh(lab, "resolver", f"unbound-control flush_zone {domain}")
    answer = sh(lab, "client", f"dig +dnssec {web} AAAA").stdout
    assert "status: NOERROR" in answer and not re.search(r"flags: [a-z ]*\bad\b", answer), answer

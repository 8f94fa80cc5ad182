"""labgen verify's reports (scorecard, JSON, HTML) from made-up outcomes, and the one check no
real server can be broken for (RFC 5746 renegotiation), judged on canned s_client output."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from testinfra.backend.base import CommandResult

from labgen import verify
from labgen.checks import Check
from labgen.checks.test_tls import test_secure_renegotiation as renegotiation_check
from labgen.spec import parse

NOW = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.timezone.utc)
LAB = parse({})


def check(id: str, level: str = "required") -> Check:
    return Check(id, f"title of {id}", "RFC 0000", level, f"why {id}", f"fix {id}")


OUTCOMES = [
    verify.Outcome(check("https.hsts"), "nginx", "ipv4", True, ""),
    verify.Outcome(check("https.hsts"), "nginx", "ipv6", False, "no HSTS header <b>"),
    verify.Outcome(check("https.h2", "recommended"), "nginx", "ipv4", False, "no h2"),
    verify.Outcome(check("ipv6.aaaa"), "nginx", "", True, ""),
    verify.Outcome(check("dnssec.signed"), "lab", "", True, ""),
    verify.Outcome(check("ipv6.aaaa"), "apache", "", True, ""),
]


def test_scores_count_required_checks_and_a_warning_does_not_fail():
    report = verify.targets(OUTCOMES)
    assert [t.name for t in report] == ["lab", "apache", "nginx"]
    nginx = report[2]
    assert nginx.score == 50  # hsts fails, ipv6.aaaa passes; h2 is only recommended
    assert {r.check.id: r.status for r in nginx.results} == {
        "https.h2": "warn", "https.hsts": "fail", "ipv6.aaaa": "pass"}
    assert not verify.all_required_pass(report)
    assert verify.all_required_pass(verify.targets([o for o in OUTCOMES if o.check.id != "https.hsts"]))


def test_the_scorecard_shows_why_and_fix_under_each_failure_only():
    text = verify.scorecard(verify.targets(OUTCOMES))
    assert "nginx: 50%  (1 of 2 required checks pass)" in text
    assert "    FAIL  title of https.hsts  [https.hsts; RFC 0000]" in text
    assert "failed (ipv6): no HSTS header <b>" in text
    assert "why: why https.hsts" in text and "fix: fix https.hsts" in text
    assert "    WARN  title of https.h2" in text
    assert "why ipv6.aaaa" not in text
    assert text.endswith("verdict: 1 required check fail")


def test_json_carries_every_variant_and_the_verdict():
    doc = json.loads(verify.as_json(LAB, verify.targets(OUTCOMES), NOW))
    assert doc["passed"] is False and doc["checked_at"] == "2026-01-15T12:00:00Z"
    nginx = next(t for t in doc["targets"] if t["name"] == "nginx")
    hsts = next(c for c in nginx["checks"] if c["id"] == "https.hsts")
    assert hsts["status"] == "fail" and hsts["level"] == "required" and hsts["why"] == "why https.hsts"
    assert [v["passed"] for v in hsts["variants"]] == [True, False]


def test_the_html_page_is_self_contained_and_escapes_messages():
    page = verify.as_html(LAB, verify.targets(OUTCOMES), NOW)
    assert not re.search(r"<script|<link|<img|<iframe|src=|url\(|@import|https?://", page)
    assert "no HSTS header &lt;b&gt;" in page
    assert 'data-check="https.hsts"' in page and "A required check fails." in page


class Canned:
    """A testinfra-like host whose every command prints the same output."""

    def __init__(self, out: str):
        self.out = out

    def run(self, command: str) -> CommandResult:
        return CommandResult(None, 0, command.encode(), self.out.encode(), b"")


@pytest.mark.parametrize("out,ok", [
    ("Protocol: TLSv1.2\nSecure Renegotiation IS supported\n", True),
    ("Protocol: TLSv1.2\nSecure Renegotiation IS NOT supported\n", False),
])
def test_the_renegotiation_check_fails_without_rfc5746(out, ok):
    lab = parse({"profile": "intermediate"})  # TLS 1.2: renegotiation exists
    if ok:
        renegotiation_check(Canned(out), lab.web[0], "ipv4", lab)
    else:
        with pytest.raises(AssertionError, match="RFC 5746"):
            renegotiation_check(Canned(out), lab.web[0], "ipv4", lab)


def test_renegotiation_is_not_applicable_under_tls13_only():
    meta = renegotiation_check.labgen_check
    assert meta.not_applicable(LAB, LAB.web[0]) == ("the modern profile offers TLS 1.3 only, and "
                                                    "this exists only in TLS 1.2")
    assert meta.not_applicable(parse({"profile": "intermediate"}), LAB.web[0]) is None


def test_every_assertion_in_a_check_says_what_was_expected_and_seen():
    """A student reads the assertion's message, never pytest's repr of the condition."""
    import ast
    from pathlib import Path

    import labgen.checks

    bare = []
    for path in sorted(Path(labgen.checks.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Assert) and node.msg is None:
                bare.append(f"{path.name}:{node.lineno}")
    assert not bare, f"assertions without a message: {bare}"


@pytest.mark.parametrize("exc,message", [
    (AssertionError("expected nosniff; saw nothing\nassert '' == 'nosniff'"), "expected nosniff; saw nothing"),
    (AssertionError("assert '' == 'nosniff'"), "the check's condition does not hold"),
    (RuntimeError("lost the shell in c: is the lab up?\nmore"), "could not judge: lost the shell in c: is the lab up?"),
])
def test_failure_messages_are_sentences_without_pytest_internals(exc, message):
    assert verify.failure_message(exc) == message


def test_a_server_that_does_not_answer_is_named_once_and_its_checks_are_not_run():
    from labgen.checks.prerequisites import Cause

    down = Cause("nginx does not answer on 198.51.100.20 port 443: connection refused", "Start nginx.")
    outcomes = OUTCOMES + [
        verify.Outcome(check("https.tls13"), "nginx", "ipv4", False, f"not run: {down.text}", down),
        verify.Outcome(check("https.tls12"), "nginx", "ipv4", False, f"not run: {down.text}", down),
        verify.Outcome(check("https.renegotiation", "informational"), "apache", "ipv4", True,
                       "not applicable: TLS 1.3 only", applicable=False)]
    report = verify.targets(outcomes)
    nginx = report[2]
    assert {r.check.id: r.status for r in nginx.results}["https.tls13"] == "not run"
    assert nginx.score == 25 and not verify.all_required_pass(report)
    assert verify.root_causes(report) == [(down, ["https.tls12 (ipv4)", "https.tls13 (ipv4)"])]
    text = verify.scorecard(report)
    assert text.count(down.text) == 1  # once, as the root cause; its checks point to it
    assert "    NOT RUN  title of https.tls13  [https.tls13; RFC 0000]\n          not run (ipv4): see " \
        "root cause 1" in text
    assert text.index("ROOT CAUSES") < text.index("FAILURES") < text.index("PASSING")
    assert f"  1. {down.text}\n      fix: Start nginx.\n      not run: 2 checks (https.tls12 (ipv4), https.tls13 (ipv4))" in text
    assert "fix fix https.tls13" not in text  # no fix per consequence
    assert "    N/A  title of https.renegotiation" in text and "not applicable: TLS 1.3 only" in text
    assert text.endswith("verdict: 3 required checks fail")
    assert "NOT TESTED IN THE LAB" in text and "RPKI" in text
    doc = json.loads(verify.as_json(LAB, report, NOW))
    assert doc["root_causes"] == [{"text": down.text, "fix": "Start nginx.",
                                   "not_run": ["https.tls12 (ipv4)", "https.tls13 (ipv4)"]}]


# ---------------------------------------------------------------- a verdict counts only what ran


def test_the_matrix_names_every_check_target_and_family():
    keys = verify.expected(LAB)
    assert ("https.hsts", "nginx", "ipv4") in keys and ("https.hsts", "apache", "ipv6") in keys
    assert ("host.dns_service", "lab", "authdns") in keys  # parametrized by role
    assert ("dnssec.validated", "nginx", "TLSA") in keys  # a parametrize mark on the check
    assert {k[1] for k in keys} == {"lab", "nginx", "apache"}


def test_a_check_that_produced_no_outcome_is_not_run_and_fails_the_verdict():
    ran = [verify.Outcome(fn.labgen_check, t, v, True, "") for fn in verify.registry()
           for (c, t, v) in sorted(verify.expected(LAB)) if c == fn.labgen_check.id]
    assert verify.all_required_pass(verify.targets(verify.complete(ran, LAB)))
    dropped = [o for o in ran if (o.check.id, o.target, o.variant) != ("https.hsts", "nginx", "ipv6")]
    report = verify.targets(verify.complete(dropped, LAB))
    assert not verify.all_required_pass(report)
    nginx = next(t for t in report if t.name == "nginx")
    hsts = next(r for r in nginx.results if r.check.id == "https.hsts")
    assert hsts.status == "not run" and hsts.failed[0].variant == "ipv6"
    text = verify.scorecard(report)
    assert "some checks produced no result" in text and "https.hsts (ipv6)" in text
    assert text.endswith("verdict: 1 required check fail")


def test_only_narrows_the_matrix():
    keys = verify.expected(LAB, lambda c: c.id == "https.hsts")
    assert {k[0] for k in keys} == {"https.hsts"} and len(keys) == 4


def test_live_text_is_escaped_and_cut():
    from labgen.text import printable
    assert printable("Server: nginx\x1b]0;owned\x07\x1b[2J") == "Server: nginx\\x1b]0;owned\\x07\\x1b[2J"
    assert printable("a\u202eb") == "a\\u202eb"
    long = printable("x" * 5000)
    assert len(long) < 450 and long.endswith("(5000 characters)")


def test_a_stuck_student_is_a_timed_out_row_and_the_board_goes_on(monkeypatch, tmp_path):
    import subprocess

    from labgen.classroom import scoreboard

    def stuck(*args, **kwargs):
        raise subprocess.TimeoutExpired(args[0], kwargs.get("timeout"))

    monkeypatch.setattr(scoreboard.subprocess, "run", stuck)
    assert scoreboard._verify(tmp_path / "class.yml", "s01", tmp_path) == \
        f"timed out (no verdict in {scoreboard.VERIFY_LIMIT} s)"


class SilentProbe:
    """A probe whose every handshake ends below TLS: the server stopped answering (a reset, a
    timeout) after the prerequisite probe had found it up."""

    def __init__(self, out: str, rc: int):
        self.out, self.rc = out, rc

    def run(self, command: str) -> CommandResult:
        return CommandResult(None, self.rc, self.out.encode(), b"", command)


@pytest.mark.parametrize("out,rc", [("connect:errno=111\nConnection refused", 1), ("", 124)],
                         ids=["refused", "timed-out"])
@pytest.mark.parametrize("name", ["no_dhe", "kex_hash", "rsa_size"])
def test_a_refusal_check_fails_when_the_server_is_silent(monkeypatch, name, out, rc):
    """Silence is no refusal: https.no_dhe, the second half of https.kex_hash and https.rsa_size
    on an ECDSA-only profile fail when the server stops answering."""
    from labgen.checks import netutil, test_certificate, test_tls

    monkeypatch.setattr(netutil.time, "sleep", lambda _: None)
    probe, server = SilentProbe(out, rc), LAB.web[0]
    if name == "kex_hash":  # its first half reads a good handshake; the weak offer meets silence
        good = "Protocol version: TLSv1.3\nSignature type: ecdsa_secp256r1_sha256\n"
        monkeypatch.setattr(test_tls, "handshake", lambda *a, **k: good)
    check = {"no_dhe": lambda: test_tls.test_no_finite_field_dhe(probe, server, "ipv4"),
             "kex_hash": lambda: test_tls.test_key_exchange_hash(probe, server, "ipv4", LAB),
             "rsa_size": lambda: test_certificate.test_rsa_key_size(probe, server, "ipv4", LAB)}[name]
    with pytest.raises(AssertionError, match="did not answer the handshake"):
        check()

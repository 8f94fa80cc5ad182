"""labgen watch on the shared lab: every answer secure while nothing is wrong; a signer that
stopped (zone-expired) recorded as SERVFAIL with the resolver's Extended DNS Error for every
name, a resolver that stopped validating as insecure; secure again once fixed."""

from __future__ import annotations

import json

from test_grading_trust import labgen
from test_verify import page_text


def watch(lab, tmp_path, seconds: int = 3):
    report = tmp_path / "watch.json"
    result = labgen(lab, "watch", "--seconds", str(seconds), "--json", str(report),
                    "--html", str(tmp_path / "watch.html"))
    return result, json.loads(report.read_text()) if report.exists() else None


def test_a_healthy_lab_answers_securely_every_round(running_lab, tmp_path):
    result, doc = watch(running_lab, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert doc["secure"] and doc["rounds"] >= 2 and doc["answers"] == 9 * doc["rounds"] and not doc["failures"]
    assert "0 not secure" in result.stdout and result.stdout.endswith("verdict: every answer was secure\n")


def test_an_expired_zone_and_a_resolver_that_does_not_validate_are_recorded(running_lab, tmp_path):
    for exercise, outcome, seen in (("zone-expired", "servfail", "SERVFAIL (EDE 7 (Signature Expired)"),
                                    ("resolver-not-validating", "insecure", " without the AD flag")):
        assert labgen(running_lab, "exercise", "start", exercise).returncode == 0
        try:
            result, doc = watch(running_lab, tmp_path)
        finally:
            assert labgen(running_lab, "exercise", "solve", exercise).returncode == 0
        assert result.returncode == 1 and not doc["secure"], result.stdout
        asked = {f["question"] for f in doc["failures"]}
        assert "lab.example DNSKEY" in asked and "_443._tcp.nginx.lab.example TLSA" in asked
        assert "labgen-watch-nx.lab.example A" in asked  # the denial of a missing name too
        assert {f["outcome"] for f in doc["failures"]} == {outcome}, doc["failures"][:3]
        assert all(seen in f["detail"] for f in doc["failures"]), doc["failures"][:3]
        assert f"{outcome.upper():<12} lab.example SOA:" in result.stdout
        # the page as a browser shows it: a red mark for every answer that was not secure
        assert f"Lab itest: 0 of {doc['answers']} answers secure" in page_text(tmp_path / "watch.html")
        assert (tmp_path / "watch.html").read_text().count('class="fail"') == len(doc["failures"])
    result, doc = watch(running_lab, tmp_path, seconds=2)
    assert result.returncode == 0 and doc["secure"], result.stdout  # fixed: secure again at once

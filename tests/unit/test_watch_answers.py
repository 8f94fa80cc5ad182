"""labgen watch's reading of dig's answers: secure only with the expected status and the AD
flag; SERVFAIL keeps the resolver's Extended DNS Error; a missing answer is a failure too."""

from __future__ import annotations

from labgen import watch
from labgen.exercises import drill
from labgen.spec import parse

LAB = parse({"name": "w"}, "lab.yml")
HEAD = ";; ->>HEADER<<- opcode: QUERY, status: {status}, id: 1\n;; flags: {flags}; QUERY: 1, ANSWER: 1\n"


def answer(status: str, flags: str, extra: str = "") -> str:
    return HEAD.format(status=status, flags=flags) + extra


def test_each_outcome_and_what_is_shown():
    soa, nx = watch.Question("lab.example", "SOA"), watch.Question("x.lab.example", "A", "NXDOMAIN")
    assert watch.judge(soa, answer("NOERROR", "qr rd ra ad")) == ("secure", "NOERROR")
    assert watch.judge(nx, answer("NXDOMAIN", "qr rd ra ad")) == ("secure", "NXDOMAIN")
    assert watch.judge(soa, answer("NOERROR", "qr rd ra")) == ("insecure", "NOERROR without the AD flag")
    assert watch.judge(soa, answer("NXDOMAIN", "qr rd ra ad")) == ("wrong status", "expected NOERROR, saw NXDOMAIN")
    ede = "; EDE: 6 (DNSSEC Bogus): (validation failure \x1b[31m)\n"
    outcome, seen = watch.judge(soa, answer("SERVFAIL", "qr rd ra", ede))
    assert outcome == "servfail" and seen.startswith("SERVFAIL (EDE 6 (DNSSEC Bogus)") and "\x1b" not in seen
    assert watch.judge(soa, ";; communications error to 10.0.0.11#53: timed out\n") == (
        "no answer", ";; communications error to 10.0.0.11#53: timed out")
    assert watch.judge(soa, "") == ("no answer", "no reply")


def test_a_timeline_counts_rounds_and_keeps_only_failures():
    asked = watch.questions(LAB)
    assert [q.label for q in asked][:2] == ["lab.example SOA", "lab.example DNSKEY"]
    assert asked[-1] == watch.Question("labgen-watch-nx.lab.example", "A", "NXDOMAIN")
    blocks = []
    for stamp in ("100.0", "101.5"):
        for i, q in enumerate(asked):
            bad = stamp == "101.5" and i == 1
            blocks.append(f"{watch.MARK} {stamp} {q.label}\n"
                          + answer("SERVFAIL" if bad else q.status, "qr rd ra" if bad else "qr rd ra ad"))
    timeline = watch.parse(LAB, "".join(blocks), 2)
    assert (timeline.rounds, timeline.answers, len(timeline.failures)) == (2, 2 * len(asked), 1)
    failure = timeline.failures[0]
    assert (failure.at, failure.question, failure.outcome) == (1.5, "lab.example DNSKEY", "servfail")
    text = watch.summary(timeline)
    assert "2 rounds, 18 answers, 1 not secure" in text and "SERVFAIL     lab.example DNSKEY: 1 times" in text
    assert text.endswith("verdict: some answers were not secure")
    empty = watch.parse(LAB, "", 2)
    assert not empty.secure and "no answer was recorded" in watch.summary(empty)


def test_the_page_marks_each_answer_and_escapes_what_was_seen():
    asked = watch.questions(LAB)
    blocks = "".join(f"{watch.MARK} {stamp} {q.label}\n" + (answer("SERVFAIL", "qr rd ra", "; EDE: 6 (DNSSEC Bogus): (<b>)\n")
                                                       if (stamp, i) == ("101.0", 0) else answer(q.status, "qr rd ra ad"))
                     for stamp in ("100.0", "101.0") for i, q in enumerate(asked))
    page = watch.html(watch.parse(LAB, blocks, 2))
    assert page.count('class="fail"') == 1 and page.count('class="ok"') == 2 * len(asked) - 1
    assert "<title>1.0 s: servfail: SERVFAIL (EDE 6 (DNSSEC Bogus): (&lt;b&gt;))</title>" in page
    assert "<b>" not in page and "17 of 18 answers secure" in page


def test_the_keys_and_the_ds_seen_each_round_become_bars():
    lab = parse({"name": "w", "dnssec": {"signer": "bind"}}, "lab.yml")
    asked = watch.questions(lab)
    dnskey, ds = asked.index(watch.Question("lab.example", "DNSKEY")), asked.index(watch.Question("lab.example", "DS"))
    ksk = "lab.example. 60 IN DNSKEY 257 3 13 6LfgatIHCN6ZddmesfrvaC7xErFa4mg/2aJwWHqIT0kUhCtrKUDSG0Hm 0HaNJpDdNJrD32bQ6VtDtcNuJVA/cQ==\n"
    zsk = "lab.example. 60 IN DNSKEY 256 3 13 JWiyYWkD5R7QBBLQ4tHn1FB/sdGdnmMgOtPGkWnYU/jCyL1VUcTtzXpe pKXJ/96FWkgvVm64oDffOWVSSO0jow==\n"
    ds_line = "lab.example. 60 IN DS 62807 13 2 C889958770BFF0456227BBA77672FE08E0482436C9ACEFF237E3922E 1FB4AAF1\n"
    blocks = []
    for stamp, keys in (("100.0", ksk + zsk), ("101.0", ksk + zsk), ("102.0", ksk)):
        for i, q in enumerate(asked):
            extra = keys if i == dnskey else ds_line if i == ds else ""
            blocks.append(f"{watch.MARK} {stamp} {q.label}\n" + answer(q.status, "qr rd ra ad", extra))
    timeline = watch.parse(lab, "".join(blocks), 3)
    assert timeline.secure
    assert {b["label"]: (b["from"], b["to"]) for b in timeline.bars} == {
        "DNSKEY 62807 KSK": (0.0, 2.0), "DNSKEY 27296 ZSK": (0.0, 1.0), "DS 62807": (0.0, 2.0)}
    page = watch.html(timeline)
    assert page.count('<rect class="key"') == 2 and page.count('<rect class="ds"') == 1 and "DNSKEY 27296 ZSK: 0.0 s to 1.0 s" in page


def test_a_drill_is_graded_only_once_the_probes_cache_holds_what_ns1_and_the_parent_serve():
    timeline = watch.Timeline("w", 3, rounds=3, round_times=[0.0, 1.0, 2.0], bars=[
        {"label": "DNSKEY 62807 KSK", "from": 0.0, "to": 2.0}, {"label": "DNSKEY 27296 ZSK", "from": 0.0, "to": 2.0},
        {"label": "DNSKEY 11111 ZSK", "from": 0.0, "to": 1.0}, {"label": "DS 62807", "from": 0.0, "to": 2.0}])
    served = [{"tag": 62807, "flags": 257, "algorithm": 13}, {"tag": 27296, "flags": 256, "algorithm": 13}]
    assert drill.settled_problems(timeline, served, [62807]) == []
    assert drill.settled_problems(timeline, served, None) == []
    # a key on its way out may linger in the cache: ns1 no longer serves the ZSK 27296
    assert drill.settled_problems(timeline, served[:1], [62807]) == []
    # ns1 serves a new ZSK the cache has not seen yet; the parent a DS it has not seen yet
    late = drill.settled_problems(timeline, [*served, {"tag": 4242, "flags": 256, "algorithm": 13}], [62807, 9])
    assert len(late) == 2 and "the probe's cache answers 27296, 62807; ns1 serves 4242, 27296, 62807" in late[0]
    assert "DS TTL" in late[1]
    # a last round without a DNSKEY answer (a failure) holds nothing
    assert drill.settled_problems(watch.Timeline("w", 1, rounds=1, round_times=[0.0]), served, None)

"""labgen watch: a continuous validating probe. Every interval, from the lab's probe (which no
student enters) and through the lab's validating, caching resolver (what every client of the lab
sees), it asks the lab's names: the zone's SOA and DNSKEY, each web server's A, AAAA and TLSA, and
a name that must not exist. Every answer that is not secure is recorded with its time, what was
seen (SERVFAIL, insecure, a wrong status, no answer) and the resolver's Extended DNS Error
(RFC 8914). A key roll, a DS change or a signer that stopped is gap-free only if nothing is.
In a lab with certificates: acme, where a web server's key changes at a roll, each round also
takes each web server's key in a TLS handshake: a key that the TLSA record the resolver gives in
the same round does not name is a DANE failure (what every DANE client would refuse).

The questions go out in parallel each round, each with a one-second limit, so a stalled resolver
costs a round, not the watch.
"""

from __future__ import annotations

import re
import shlex

import dns.dnssec
import dns.rdata
from dataclasses import asdict, dataclass, field

from .checks.netutil import spki_digest
from .engine import Engine
from .spec import Lab
from .text import printable
from .vantage import CLEAN_ENV, PROBE

NXNAME = "labgen-watch-nx"  # <NXNAME>.<domain> must not exist: its denial must validate too
MARK = "@@labgen-watch"
ROUND_END = "@@labgen-watch-round-end"  # after each whole round: a reader may cut there


@dataclass(frozen=True)
class Question:
    name: str
    rtype: str
    status: str = "NOERROR"  # the status a secure answer has

    @property
    def label(self) -> str:
        return f"{self.name} {self.rtype}"


# Questions whose answers the timeline also reads: which keys and which DS were seen, each round.
BARS = ("DNSKEY", "DS")
DANE = "DANE"  # the key a web server serves, against its TLSA record (not a DNS question)


def questions(lab: Lab) -> list[Question]:
    asked = [Question(lab.domain, "SOA"), Question(lab.domain, "DNSKEY")]
    if lab.parent:  # the DS at the parent: what the chain of trust runs through
        asked.append(Question(lab.domain, "DS"))
    for web in lab.web:
        asked += [Question(web.fqdn, "A"), Question(web.fqdn, "AAAA"), Question(f"_443._tcp.{web.fqdn}", "TLSA")]
        if lab.certificates.acme:
            asked.append(Question(web.fqdn, DANE, "match"))
    return asked + [Question(f"{NXNAME}.{lab.domain}", "A", "NXDOMAIN")]


def ask(lab: Lab, q: Question, server: str) -> str:
    """The shell command for one question: dig, or for DANE the served key's SHA-256 (SPKI)."""
    if q.rtype == DANE:
        web = next(h for h in lab.web if h.fqdn == q.name)
        return (f"timeout 2 openssl s_client -connect {web.ipv4}:443 -servername {q.name} </dev/null "
                "2>/dev/null | openssl x509 -noout -pubkey 2>/dev/null | openssl pkey -pubin -outform DER "
                "2>/dev/null | sha256sum")
    answer = " +answer" if q.rtype in BARS or (q.rtype == "TLSA" and lab.certificates.acme) else ""
    return (f"/usr/bin/dig +dnssec +time=1 +tries=1 +noall +comments{answer} {server} "
            f"{shlex.quote(q.name)} {q.rtype} 2>&1")


def script(lab: Lab, seconds: int, interval: float, server: str | None = None) -> str:
    """The probe's loop: each round, every question in parallel; one block of dig's header per
    answer, after a line naming the round's time and the question. The questions go to the lab
    resolver, or to server (dig's "@address -p port")."""
    server = server or f"@{lab.role('resolver').ipv4}"
    digs = "\n".join(
        f"  ( out=$({ask(lab, q, server)}); printf '{MARK} %s {q.label}\\n%s\\n' \"$t\" \"$out\" "
        f"> \"$d/{i}\" ) &" for i, q in enumerate(questions(lab)))
    # Each run its own folder: a drill's watch and labgen watch may run side by side.
    return (f"end=$(( $(date +%s) + {int(seconds)} ))\nd=$(mktemp -d)\n"
            "while [ \"$(date +%s)\" -lt \"$end\" ]; do\n"
            "  t=$(date +%s.%N)\n"
            f"{digs}\n"
            "  wait\n"
            f"  cat \"$d\"/* && rm -f \"$d\"/* && echo {ROUND_END}\n"
            f"  sleep {interval}\n"
            "done\nrm -rf \"$d\"\n")


@dataclass
class Answer:
    at: float  # seconds since the watch began
    question: str
    outcome: str  # secure, servfail, insecure, wrong status, no answer
    detail: str = ""  # the status and the resolver's EDE, as dig shows them


@dataclass
class Timeline:
    lab: str
    seconds: int
    rounds: int = 0
    answers: int = 0
    failures: list[Answer] = field(default_factory=list)
    questions: list[str] = field(default_factory=list)  # in the order asked
    round_times: list[float] = field(default_factory=list)  # seconds since the watch began
    # What was seen of the keys and the DS, as bars: label ("DNSKEY 12345 KSK", "DS 12345"),
    # from and to (seconds since the watch began, the first and last round it was seen in).
    bars: list[dict] = field(default_factory=list)
    began: float = 0.0  # when the first round was asked (seconds since the epoch)

    @property
    def secure(self) -> bool:
        return self.answers > 0 and not self.failures

    def as_dict(self) -> dict:
        return {**asdict(self), "secure": self.secure}


def judge(question: Question, text: str) -> tuple[str, str]:
    """The outcome of one answer from dig's header lines, and what to show of it."""
    status = re.search(r"status: ([A-Z]+)", text)
    if not status:
        return "no answer", printable(text.strip().splitlines()[-1] if text.strip() else "no reply", 200,
                                      keep_newlines=False)
    flags = re.search(r";; flags: ([a-z ]*);", text)
    ede = "; ".join(printable(e, 200, keep_newlines=False) for e in re.findall(r"; EDE: (.*)", text))
    seen = status.group(1) + (f" (EDE {ede})" if ede else "")
    if status.group(1) == "SERVFAIL":
        return "servfail", seen
    if status.group(1) != question.status:
        return "wrong status", f"expected {question.status}, saw {seen}"
    if not flags or "ad" not in flags.group(1).split():
        return "insecure", f"{seen} without the AD flag"
    return "secure", seen


def whole_rounds(output: str) -> str:
    """A log still being written, cut after its last whole round."""
    cut = output.rfind(ROUND_END + "\n")
    return output[:cut + len(ROUND_END) + 1] if cut >= 0 else ""


def parse(lab: Lab, output: str, seconds: int) -> Timeline:
    asked = questions(lab)
    timeline = Timeline(lab.name, seconds, questions=[q.label for q in asked])
    output = output.replace(f"{ROUND_END}\n", "")
    blocks = re.split(rf"^{MARK} ", output, flags=re.M)[1:]
    start, rounds, spans = None, set(), {}
    by_label = {q.label: q for q in asked}
    served, named = {}, {}  # (round, web server) -> the key it served; the keys its TLSA names
    for block in blocks:
        head, _, text = block.partition("\n")
        stamp, name, rtype = head.split()
        at = float(stamp)
        start = at if start is None else min(start, at)
        rounds.add(stamp)
        if rtype == DANE:  # judged below, against the same round's TLSA answer
            served[(stamp, name)] = spki_digest(text)
            continue
        # Named in the record, not numbered: a record made by another labgen still reads right.
        question = by_label.get(f"{name} {rtype}") or Question(name, rtype)
        outcome, detail = judge(question, text)
        if question.rtype in BARS:
            for label in seen(question.rtype, text):
                spans.setdefault(label, []).append(at)
        if question.rtype == "TLSA":
            named[(stamp, name.removeprefix("_443._tcp."))] = tlsa_digests(text)
        timeline.answers += 1
        if outcome != "secure":
            timeline.failures.append(Answer(at, question.label, outcome, detail))
    for (stamp, name), key in sorted(served.items()):
        at, tlsa = float(stamp), named.get((stamp, name), set())
        timeline.answers += 1
        if key:
            spans.setdefault(f"served {name.split('.')[0]} {key[:8]}", []).append(at)
        for digest in tlsa:
            spans.setdefault(f"TLSA {name.split('.')[0]} {digest[:8]}", []).append(at)
        if not key:
            timeline.failures.append(Answer(at, f"{name} {DANE}", "no answer", "no certificate in a TLS handshake"))
        elif key not in tlsa:
            timeline.failures.append(Answer(
                at, f"{name} {DANE}", "dane mismatch",
                f"served key {key[:16]}... is not in the TLSA record ("
                f"{', '.join(d[:16] + '...' for d in sorted(tlsa)) or 'no 3 1 1 record'})"))
    timeline.failures.sort(key=lambda a: a.at)
    for failure in timeline.failures:
        failure.at = round(failure.at - (start or 0), 1)
    timeline.began = start or 0.0
    timeline.round_times = sorted(round(float(r) - (start or 0), 1) for r in rounds)
    timeline.rounds = len(rounds)
    timeline.bars = [{"label": label, "from": round(min(t) - (start or 0), 1), "to": round(max(t) - (start or 0), 1)}
                     for label, t in sorted(spans.items(), key=lambda item: (min(item[1]), item[0]))]
    return timeline


ROLES = {257: "KSK", 256: "ZSK"}


def tlsa_digests(text: str) -> set[str]:
    """The keys (SHA-256 of the SPKI, lower case) the 3 1 1 records of a TLSA answer name."""
    found = set()
    for line in text.splitlines():
        fields = line.split()
        if not line.startswith(";") and fields[3:7] == ["TLSA", "3", "1", "1"]:
            found.add("".join(fields[7:]).lower())
    return found


def seen(rtype: str, text: str) -> list[str]:
    """The keys (DNSKEY tag and role) or DS (key tag) an answer holds."""
    labels = []
    for line in text.splitlines():
        fields = line.split()
        if line.startswith(";") or fields[3:4] != [rtype]:
            continue
        try:
            rdata = dns.rdata.from_text("IN", rtype, " ".join(fields[4:]))
        except Exception:  # noqa: BLE001 - a line cut short is not a record
            continue
        if rtype == "DNSKEY":
            labels.append(f"DNSKEY {dns.dnssec.key_id(rdata)} {ROLES.get(rdata.flags, rdata.flags)}")
        else:
            labels.append(f"DS {rdata.key_tag}")
    return labels


def watch(lab: Lab, engine: Engine, seconds: int, interval: float = 1.0) -> Timeline:
    result = engine.exec(lab.container(lab.role(PROBE)), *CLEAN_ENV, "sh", "-c",
                         script(lab, seconds, interval), timeout=seconds + 30)
    return parse(lab, result.stdout, seconds)


def html(timeline: Timeline) -> str:
    """The timeline as one self-contained page: a row per question, time across, each round's
    answer a mark (green secure, red not, what was seen on hover)."""
    from .render import environment

    failed = {(f.question, f.at): f for f in timeline.failures}
    span = max([timeline.seconds, *timeline.round_times, 1])
    rows = [{"question": q, "marks": [{"at": at, "x": round(100 * at / span, 2),
                                       "failure": failed.get((q, at))} for at in timeline.round_times]}
            for q in timeline.questions]
    bars = [{**bar, "x": round(100 * bar["from"] / span, 2),
             "width": max(0.8, round(100 * (bar["to"] - bar["from"]) / span, 2))} for bar in timeline.bars]
    return environment().get_template("report/watch.html.j2").render(
        timeline=timeline, rows=rows, span=span, text=summary(timeline), bars=bars)


def summary(timeline: Timeline) -> str:
    """Each kind of failure once per question: how often, from when to when, what was seen."""
    lines = [f"watched lab {timeline.lab} for {timeline.seconds} s: {timeline.rounds} rounds, "
             f"{timeline.answers} answers, {len(timeline.failures)} not secure"]
    groups: dict[tuple[str, str, str], list[Answer]] = {}
    for failure in timeline.failures:
        groups.setdefault((failure.question, failure.outcome, failure.detail), []).append(failure)
    for (question, outcome, detail), seen in groups.items():
        lines.append(f"  {outcome.upper():<12} {question}: {len(seen)} times from {seen[0].at} s to "
                     f"{seen[-1].at} s: {detail}")
    if timeline.answers == 0:
        lines.append("  no answer was recorded: is the probe running?")
    lines.append("verdict: every answer was secure" if timeline.secure else
                 "verdict: some answers were not secure")
    return "\n".join(lines)

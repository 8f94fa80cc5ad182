"""Drills: a key roll the student does on the live lab, graded by the probe.

At the start labgen notes the zone's keys (the DNSKEY set ns1 serves) and starts, on the probe, a
validating cache of its own and the continuous watch (labgen/watch.py) asking through it, as
systemd units writing to a log there: no student enters the probe, so neither the watch, nor its
record, nor the cache it asks can be stopped, edited or flushed by one. (The lab resolver is the
student's: flushing it in the middle of a roll would hide what the roll did to caches.)
The drill is done when the roll is complete (the keys it replaces are gone from the DNSKEY set,
their successors sign, the rest is unchanged), the probe's cache holds every key served (so a roll
that skipped a wait has met a validator), and the watch, running since the start without a gap,
recorded no answer that was not secure.
"""

from __future__ import annotations

import shlex
import time

import dns.dnssec
import dns.rdata

from .. import watch
from ..checks.netutil import spki_digest
from ..engine import Engine
from ..spec import Lab
from ..vantage import CLEAN_ENV, GRADER_CACHE, GRADER_CACHE_PORT, PROBE

ROLLS = ("zsk", "ksk", "csk", "algorithm", "tls")  # tls: every web server's key (labgen.acme)
LOG_DIR = "/var/lib/labgen/drills"
MAX_SECONDS = 4 * 3600  # a drill's watch stops by itself after this
GAP = 15  # seconds between two rounds of the watch beyond which the record has a hole
SEP = 1  # the DNSKEY flag of a key-signing key


CACHE = f"@127.0.0.1 -p {GRADER_CACHE_PORT}"  # dig's way to the probe's own cache
PRIMED = 10  # seconds the probe's new cache may take to answer its first question


def unit(exercise_id: str) -> str:
    return f"labgen-drill-{exercise_id}"


def cache_unit(exercise_id: str) -> str:
    return f"labgen-drill-{exercise_id}-cache"


def log_path(exercise_id: str) -> str:
    return f"{LOG_DIR}/{exercise_id}.log"


def _probe(lab: Lab, engine: Engine, script: str, timeout: int = 30):
    return engine.exec(lab.container(lab.role(PROBE)), *CLEAN_ENV, "sh", "-c", script, timeout=timeout)


def keys(lab: Lab, engine: Engine) -> list[dict]:
    """The DNSKEY set ns1 serves, asked from the probe: key tag, flags and algorithm of each."""
    ns = lab.role("authdns")
    out = _probe(lab, engine, f"dig +norec +short +time=2 +tries=2 @{ns.ipv4} "
                              f"{shlex.quote(lab.domain)} DNSKEY").stdout
    found = []
    for line in out.splitlines():
        try:
            rdata = dns.rdata.from_text("IN", "DNSKEY", line.strip())
        except Exception:  # noqa: BLE001 - dig's comments and errors are no keys
            continue
        found.append({"tag": dns.dnssec.key_id(rdata), "flags": rdata.flags,
                      "algorithm": int(rdata.algorithm)})
    return sorted(found, key=lambda k: (k["flags"], k["tag"]))


def ds_at_parent(lab: Lab, engine: Engine) -> list[int] | None:
    """The key tags the parent's DS set names for the lab's zone, asked from the probe; None
    when the lab has no parent zone (its DS is the trust anchor itself)."""
    if lab.parent is None:
        return None
    out = _probe(lab, engine, f"dig +norec +short +time=2 +tries=2 @{lab.parent.ns_ipv4} "
                              f"{shlex.quote(lab.domain)} DS").stdout
    return sorted(int(line.split()[0]) for line in out.splitlines() if line.split()[:1] and line.split()[0].isdigit())


def served_keys(lab: Lab, engine: Engine) -> dict[str, str]:
    """Each web server's key as a TLS handshake from the probe shows it (SHA-256 of the SPKI,
    what a TLSA 3 1 1 record names); '' when it sent none."""
    found = {}
    for web in lab.web:
        question = watch.Question(web.fqdn, watch.DANE)
        found[web.name] = spki_digest(_probe(lab, engine, watch.ask(lab, question, "")).stdout)
    return found


def tlsa_at_ns1(lab: Lab, engine: Engine) -> dict[str, set[str]]:
    """The keys each web server's TLSA record names on ns1 (3 1 1 digests)."""
    ns = lab.role("authdns")
    found = {}
    for web in lab.web:
        out = _probe(lab, engine, f"dig +norec +noall +answer +time=2 +tries=2 @{ns.ipv4} "
                                  f"_443._tcp.{web.fqdn} TLSA").stdout
        found[web.name] = watch.tlsa_digests(out)
    return found


def begin(lab: Lab, engine: Engine, exercise_id: str) -> dict:
    """Note the keys and start the probe's watch; what check needs is returned."""
    before = keys(lab, engine)
    if not before:
        raise RuntimeError(f"ns1 serves no DNSKEY set for {lab.domain}: the zone must be signed "
                           "before a key can be rolled")
    name, cache, log = unit(exercise_id), cache_unit(exercise_id), log_path(exercise_id)
    script = watch.script(lab, MAX_SECONDS, 1.0, CACHE)
    domain = shlex.quote(lab.domain)
    # The cache starts empty and is primed with the zone's keys and SOA before the watch starts:
    # from then on it holds what any validator in the world would.
    started = _probe(lab, engine, (
        f"systemctl stop {name} {cache} 2>/dev/null; mkdir -p {LOG_DIR} && : > {log} && "
        f"systemd-run --quiet --collect --unit {cache} -p RuntimeMaxSec={MAX_SECONDS} "
        f"/usr/sbin/unbound -d -p -c {GRADER_CACHE} && "
        f"for i in $(seq {PRIMED}); do sleep 1; /usr/bin/dig +time=1 +tries=1 {CACHE} {domain} DNSKEY "
        f">/dev/null && /usr/bin/dig +time=1 +tries=1 {CACHE} {domain} SOA >/dev/null && break; "
        f"[ $i -lt {PRIMED} ] || {{ echo 'its cache did not answer' >&2; exit 1; }}; done && "
        f"systemd-run --quiet --collect --unit {name} -p StandardOutput=append:{log} "
        f"-p StandardError=append:{log} /bin/sh -c {shlex.quote(script)}"), timeout=PRIMED + 30)
    if started.returncode != 0:
        end(lab, engine, exercise_id)
        raise RuntimeError(f"the probe could not start its watch: {started.stderr.strip()}")
    return {"keys": before, "served": served_keys(lab, engine), "since": time.time()}


def end(lab: Lab, engine: Engine, exercise_id: str) -> None:
    _probe(lab, engine, f"systemctl stop {unit(exercise_id)} {cache_unit(exercise_id)} 2>/dev/null; true")


def roll_problems(roll: str, before: list[dict], now: list[dict], ds: list[int] | None = None) -> list[str]:
    """What keeps the roll from being complete, comparing the DNSKEY set now with the start,
    and (when the lab has a parent) the DS set there with the key-signing keys now."""
    def tags(found, ksk):
        return {k["tag"] for k in found if bool(k["flags"] & SEP) == ksk}

    if roll == "algorithm":
        return algorithm_problems(before, now, ds)
    if not now:
        return ["ns1 serves no DNSKEY set: the zone is not signed"]
    # (name, key-signing?) of the key rolled, and the roles that must stay as they were
    name, ksk = {"zsk": ("ZSK", False), "ksk": ("KSK", True), "csk": ("CSK", True)}[roll]
    kept = {"zsk": [True], "ksk": [False], "csk": []}[roll]
    problems = []
    old, current = tags(before, ksk), tags(now, ksk)
    if not current - old:
        problems.append(f"expected a new {name} in the DNSKEY set; it still holds only "
                        f"{', '.join(map(str, sorted(current))) or 'none'} (start the roll: "
                        f"rndc dnssec -rollover -key <tag> <zone>)")
    elif current & old:
        problems.append(f"the roll is under way: the old {name} {', '.join(map(str, sorted(current & old)))} "
                        f"is still in the DNSKEY set (rndc dnssec -status shows when it goes)")
    if ds is not None and not problems and set(ds) != tags(now, True):
        problems.append(f"expected the parent's DS set to name the key-signing key now in use "
                        f"({', '.join(map(str, sorted(tags(now, True))))}); it names "
                        f"{', '.join(map(str, ds)) or 'none'} (the parent follows the zone's CDS)")
    for role in kept:
        if tags(now, role) != tags(before, role):
            problems.append(f"expected the {'KSK' if role else 'ZSK'} to stay as it was "
                            f"({sorted(tags(before, role))}); the DNSKEY set now has {sorted(tags(now, role))}")
    return problems


def tls_problems(before: dict[str, str], now: dict[str, str], tlsa: dict[str, set[str]]) -> list[str]:
    """A TLS key roll is complete when every web server serves a key other than at the start,
    its TLSA record names that key and no longer the old one."""
    problems = []
    for name, old in sorted(before.items()):
        served = now.get(name, "")
        if not served:
            problems.append(f"{name} sent no certificate in a TLS handshake")
        elif served == old:
            problems.append(f"expected {name} to serve a new key; it still serves {old[:16]}... "
                            "(on the server: labgen-certs status, then labgen-certs roll)")
        elif served not in tlsa.get(name, set()):
            problems.append(f"{name} serves {served[:16]}..., which its TLSA record on ns1 does not name")
        elif old in tlsa.get(name, set()):
            problems.append(f"the roll on {name} is under way: the old key's TLSA record ({old[:16]}...) is "
                            "still published (it goes once the new key is served)")
    return problems


def algorithm_problems(before: list[dict], now: list[dict], ds: list[int] | None) -> list[str]:
    """An algorithm roll is complete when no key of the old algorithm is left, keys of a new one
    sign (a key-signing key among them), and the parent's DS names those alone."""
    old = {k["algorithm"] for k in before}
    if not now:
        return ["ns1 serves no DNSKEY set: the zone is not signed"]
    left = sorted(k["tag"] for k in now if k["algorithm"] in old)
    new = [k for k in now if k["algorithm"] not in old]
    if not new:
        return [f"expected a new algorithm's keys in the DNSKEY set; it holds only algorithm "
                f"{', '.join(map(str, sorted(old)))} (change the algorithm in the dnssec-policy of "
                "named.conf, then rndc reconfig)"]
    if left:
        return [f"the roll is under way: the keys {', '.join(map(str, left))} of the old algorithm are "
                "still in the DNSKEY set (rndc dnssec -status shows when they go)"]
    ksk = {k["tag"] for k in new if k["flags"] & SEP}
    if ds is not None and set(ds) != ksk:
        return [f"expected the parent's DS set to name the new key-signing key ({', '.join(map(str, sorted(ksk)))}); "
                f"it names {', '.join(map(str, ds)) or 'none'} (the parent follows the zone's CDS)"]
    return []


def watch_problems(timeline: watch.Timeline, running: bool, since: float, now: float) -> list[str]:
    """What the probe's record says against the drill: answers that were not secure, a hole
    (from the start to the first round, between two rounds, or from the last round to now)."""
    problems = []
    if timeline.failures:
        first = timeline.failures[0]
        problems.append(f"{len(timeline.failures)} answers were not secure while the drill ran, the "
                        f"first {first.at:.0f} s after the start: {first.question}: {first.outcome}, "
                        f"{first.detail} (a gap-free roll has none: labgen exercise solve, then start "
                        "it again)")
    times = [since, *(timeline.began + t for t in timeline.round_times), now]
    holes = [b - a for a, b in zip(times, times[1:]) if b - a > GAP]
    if not running or not timeline.rounds or holes:
        problems.append("the probe's watch did not run the whole time, so the drill cannot be graded "
                        "(labgen exercise solve, then start it again)")
    return problems


def settled_tls(timeline: watch.Timeline, lab: Lab, now: dict[str, str]) -> list[str]:
    """The probe's cache, in the watch's last round, gave a TLSA record naming each served key."""
    last = timeline.round_times[-1] if timeline.round_times else None
    held = {tuple(bar["label"].split()[1:3]) for bar in timeline.bars
            if bar["to"] == last and bar["label"].startswith("TLSA ")}
    waiting = [name for name, key in sorted(now.items()) if key and (name, key[:8]) not in held]
    return [f"caches still hold the TLSA record of {', '.join(waiting)} without the key served now: a DANE "
            "client keeps it for the record's TTL, and the drill is graded once the probe's cache has the new one"
            ] if waiting else []


def settled_problems(timeline: watch.Timeline, now: list[dict], ds: list[int] | None) -> list[str]:
    """A roll is over only when caches hold its result: the probe's cache answered, in the
    watch's last round, every key ns1 serves now (and every DS the parent does); a key on its way
    out may linger there. Before, a roll that used a key before caches knew it may not have met
    a validator yet: it is graded once it has. A roll done by the book waits for nothing here."""
    last = timeline.round_times[-1] if timeline.round_times else None
    held: dict[str, set[int]] = {"DNSKEY": set(), "DS": set()}
    for bar in timeline.bars:
        kind = bar["label"].split()[0]
        if bar["to"] == last and kind in held:
            held[kind].add(int(bar["label"].split()[1]))
    problems = []
    served = {k["tag"] for k in now}
    if served - held["DNSKEY"]:
        problems.append(f"the roll is done on ns1, but caches still hold another DNSKEY set (the probe's cache "
                        f"answers {', '.join(map(str, sorted(held['DNSKEY']))) or 'none'}; ns1 serves "
                        f"{', '.join(map(str, sorted(served)))}): a validator keeps it for the DNSKEY TTL, and "
                        "the drill is graded once the probe's cache holds the new keys")
    if ds is not None and set(ds) - held["DS"]:
        problems.append(f"the parent's DS set changed, but caches still hold the old one (the probe's cache "
                        f"answers {', '.join(map(str, sorted(held['DS']))) or 'none'}): the drill is graded "
                        "once it holds the new set, after the DS TTL")
    return problems


def grade(lab: Lab, engine: Engine, exercise_id: str, roll: str, entry: dict) -> list[str]:
    """Every reason the drill is not done yet; none: done."""
    name, log = unit(exercise_id), log_path(exercise_id)
    found = _probe(lab, engine, f"systemctl is-active --quiet {name} && systemctl is-active --quiet "
                                f"{cache_unit(exercise_id)} && echo running; cat {log}",
                   timeout=60).stdout
    running = found.startswith("running\n")
    now = time.time()
    timeline = watch.parse(lab, watch.whole_rounds(found), int(now - entry["since"]))
    if roll == "tls":
        served = served_keys(lab, engine)
        problems = tls_problems(entry["served"], served, tlsa_at_ns1(lab, engine))
        return (problems or settled_tls(timeline, lab, served)) + watch_problems(timeline, running, entry["since"], now)
    served, ds = keys(lab, engine), ds_at_parent(lab, engine)
    problems = roll_problems(roll, entry["keys"], served, ds)
    return ((problems or settled_problems(timeline, served, ds))
            + watch_problems(timeline, running, entry["since"], now))

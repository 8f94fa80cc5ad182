"""labgen verify: run labgen's checks (pytest + testinfra) on the live lab and report.

The checks run in-process through pytest.main with a small plugin that collects each check's
outcome per server and address family. Score per server, like internet.nl: the share of
required checks that pass. Reports: the terminal scorecard, JSON, one self-contained HTML
page, and pytest's own JUnit XML.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

from .checks import Check
from .checks.prerequisites import Cause, NotRun
from .checks.untestable import NOT_TESTED
from .render import environment

CHECKS_DIR = Path(__file__).parent / "checks"
LAB = "lab"  # the target of lab-wide checks (zone, resolver, name server)


@dataclass(frozen=True)
class Outcome:
    check: Check
    target: str  # a web server's name, or LAB for lab-wide checks
    variant: str  # ipv4 / ipv6 / a record type ...; "" when none
    passed: bool
    message: str
    cause: Cause | None = None  # set when the check was not run: its missing prerequisite
    applicable: bool = True  # False: the property does not exist in this lab (message says why)


# A check's status over its variants; "not run" and "fail" of a required check fail the verdict.
STATUS_ORDER = ("fail", "not run", "warn", "n/a", "pass")


@dataclass
class CheckResult:
    """One check on one target, over all its variants."""

    check: Check
    outcomes: list[Outcome]

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.passed]

    @property
    def status(self) -> str:
        failed = self.failed
        if failed and all(o.cause for o in failed):
            return "not run"
        if failed:
            return "fail" if self.check.level == "required" else "warn"
        return "pass" if any(o.applicable for o in self.outcomes) else "n/a"

    @property
    def blocks_verdict(self) -> bool:
        return self.check.level == "required" and self.status in ("fail", "not run")


@dataclass
class Target:
    name: str
    results: list[CheckResult]  # sorted by group, then id

    @property
    def required(self) -> list[CheckResult]:
        """The required checks that apply to this lab: what the score counts."""
        return [r for r in self.results if r.check.level == "required" and r.status != "n/a"]

    @property
    def score(self) -> int:
        required = self.required
        return round(100 * sum(r.status == "pass" for r in required) / len(required)) if required else 100

    @property
    def title(self) -> str:
        return "the lab" if self.name == LAB else self.name

    def counts(self, group: str | None = None) -> dict[str, int]:
        """How many checks (of one standard, or all) are in each status."""
        found = defaultdict(int)
        for r in self.results:
            if group is None or r.check.group == group:
                found[r.status] += 1
        return {status: found[status] for status in STATUS_ORDER if found[status]}


class Collector:
    """A pytest plugin: each labgen check's outcome, per target and variant."""

    def __init__(self):
        self.outcomes: list[Outcome] = []

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        report = (yield).get_result()
        meta = getattr(getattr(item, "function", None), "labgen_check", None)
        if meta is None or report.when == "teardown":
            return
        if report.when == "setup" and report.passed:
            item.user_properties.append(("check", meta.id))  # shows in the JUnit XML
            return
        params = getattr(item, "callspec", None)
        params = params.params if params else {}
        server = params.get("server")
        variant = "/".join(str(params[k]) for k in sorted(params) if k != "server")
        outcome = dict(check=meta, target=server.name if server else LAB, variant=variant,
                       passed=report.passed, message="")
        if report.skipped:
            outcome.update(passed=True, applicable=False, message=_reason(report))
        elif report.failed and call.excinfo and call.excinfo.errisinstance(NotRun):
            outcome.update(message=f"not run: {call.excinfo.value}", cause=call.excinfo.value.cause)
        elif report.failed:
            outcome.update(message=failure_message(call.excinfo.value if call.excinfo else None))
        self.outcomes.append(Outcome(**outcome))


def _reason(report) -> str:
    """A skipped check's reason (pytest keeps it as (file, line, 'Skipped: reason'))."""
    longrepr = report.longrepr
    text = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return text.removeprefix("Skipped: ")


def failure_message(exc: BaseException | None) -> str:
    """The sentence a check failed with: its assertion's message without pytest's repr of the
    condition, or what stopped it from judging."""
    if isinstance(exc, AssertionError):
        text = str(exc).split("\nassert ")[0].strip()
        return text if text and not text.startswith("assert ") else "the check's condition does not hold"
    first = str(exc).strip().splitlines()[0] if exc and str(exc).strip() else type(exc).__name__
    return f"could not judge: {first}"[:400]


class Only:
    """A pytest plugin: run only the checks a predicate keeps (exercise check)."""

    def __init__(self, keep):
        self.keep = keep

    def pytest_collection_modifyitems(self, config, items):
        kept, dropped = [], []
        for item in items:
            meta = getattr(getattr(item, "function", None), "labgen_check", None)
            (kept if meta is None or self.keep(meta) else dropped).append(item)
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = kept


def run_checks(config: Path, junitxml: Path | None = None, only=None,
               student: str | None = None) -> tuple[int, list[Outcome]]:
    """Run the checks (those `only(check)` keeps, when given) and collect their outcomes; with
    student, config is a class file and the checks judge that student's lab."""
    collector = Collector()
    args = [str(CHECKS_DIR), "-p", "labgen.checks.plugin", "--lab-file", str(config),
            "-p", "no:cacheprovider", "--rootdir", str(CHECKS_DIR),
            "-p", "no:terminal"]
    if junitxml:
        args.append(f"--junitxml={junitxml}")
    if student:
        args += ["--student", student]
    code = pytest.main(args, plugins=[collector] + ([Only(only)] if only else []))
    return int(code), collector.outcomes


def targets(outcomes: list[Outcome]) -> list[Target]:
    """Outcomes grouped by target (the lab first, then the servers) and check."""
    grouped: dict[str, dict[str, list[Outcome]]] = defaultdict(lambda: defaultdict(list))
    for o in outcomes:
        grouped[o.target][o.check.id].append(o)
    result = []
    for name in sorted(grouped, key=lambda t: (t != LAB, t)):
        checks = grouped[name]
        ids = sorted(checks, key=lambda c: (checks[c][0].check.group, c))
        result.append(Target(name, [CheckResult(checks[c][0].check, checks[c]) for c in ids]))
    return result


def all_required_pass(report: list[Target]) -> bool:
    return not any(r.blocks_verdict for t in report for r in t.results)


def root_causes(report: list[Target]) -> list[tuple[Cause, list[str]]]:
    """Each missing prerequisite once, with the checks it kept from running ('id (variant)')."""
    found: dict[Cause, list[str]] = defaultdict(list)
    for t in report:
        for r in t.results:
            for o in r.failed:
                if o.cause:
                    found[o.cause].append(f"{r.check.id}" + (f" ({o.variant})" if o.variant else ""))
    return list(found.items())


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {status}" for status, n in counts.items())


def _row(r: CheckResult, indent: str, numbers: dict[Cause, int]) -> list[str]:
    lines = [f"{indent}{r.status.upper()}  {r.check.title}  [{r.check.id}; {r.check.standard}]"]
    detail = indent + "      "
    for o in r.failed:
        where = f" ({o.variant})" if o.variant else ""
        lines.append(f"{detail}not run{where}: see root cause {numbers[o.cause]}" if o.cause else
                     f"{detail}failed{where}: {o.message.splitlines()[0] if o.message else ''}")
    if r.status in ("fail", "warn"):  # a check that was only not run has no fix of its own
        lines += [f"{detail}why: {r.check.why}", f"{detail}fix: {r.check.fix}"]
    if r.status == "n/a":
        lines.append(f"{detail}{r.outcomes[0].message}")
    return lines


def scorecard(report: list[Target]) -> str:
    """The terminal report, most useful first: a summary per target and standard, the root
    causes (a server that does not answer, a name that does not resolve) each named once, the
    failures with why and fix, then the passing checks."""
    lines = ["SUMMARY"]
    for target in report:
        passing = sum(r.status == "pass" for r in target.required)
        lines.append(f"  {target.title}: {target.score}%  ({passing} of {len(target.required)} "
                     f"required checks pass)")
        groups = sorted({r.check.group for r in target.results})
        lines.append("      " + " · ".join(f"{g.upper()} {_counts(target.counts(g))}" for g in groups))
    causes = root_causes(report)
    numbers = {cause: n for n, (cause, _) in enumerate(causes, 1)}
    if causes:
        lines.append("ROOT CAUSES: fix these first; the checks that depend on them were not run")
        for cause, checks in causes:
            lines += [f"  {numbers[cause]}. {cause.text}", f"      fix: {cause.fix}",
                      f"      not run: {len(checks)} check{'s' if len(checks) != 1 else ''} "
                      f"({', '.join(checks[:6])}{', ...' if len(checks) > 6 else ''})"]
    problems = [(t, [r for r in t.results if r.status in ("fail", "warn", "not run")]) for t in report]
    if any(rows for _, rows in problems):
        lines.append("FAILURES")
        for target, rows in problems:
            if rows:
                lines.append(f"  {target.title}")
                for r in sorted(rows, key=lambda r: STATUS_ORDER.index(r.status)):
                    lines += _row(r, "    ", numbers)
    lines.append("PASSING")
    for target in report:
        lines.append(f"  {target.title}")
        group = ""
        for r in (r for r in target.results if r.status in ("pass", "n/a")):
            if r.check.group != group:
                group = r.check.group
                lines.append(f"    {group.upper()}")
            lines += _row(r, "      ", numbers)
    lines.append("NOT TESTED IN THE LAB: what internet.nl also judges, and why a closed lab cannot")
    lines += [f"  {test}: {reason}" for test, reason in NOT_TESTED]
    failing = sum(r.blocks_verdict for t in report for r in t.results)
    lines.append("verdict: every required check passes" if not failing else
                 f"verdict: {failing} required check{'s' if failing > 1 else ''} fail")
    return "\n".join(lines)


def as_json(lab, report: list[Target], now: dt.datetime) -> str:
    doc = {"lab": lab.name, "domain": lab.domain, "profile": lab.profile.name,
           "checked_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "passed": all_required_pass(report),
           "root_causes": [{**asdict(c), "not_run": checks} for c, checks in root_causes(report)],
           "not_tested": [{"test": test, "reason": reason} for test, reason in NOT_TESTED],
           "targets": [{"name": t.name, "score": t.score,
                        "checks": [{**r.check.as_dict(), "status": r.status,
                                    "variants": [{"variant": o.variant, "passed": o.passed,
                                                  "applicable": o.applicable, "message": o.message,
                                                  "cause": asdict(o.cause) if o.cause else None}
                                                 for o in r.outcomes]}
                                   for r in t.results]} for t in report]}
    return json.dumps(doc, indent=1) + "\n"


def as_html(lab, report: list[Target], now: dt.datetime) -> str:
    """One self-contained page: inline CSS, no script, nothing fetched."""
    causes = root_causes(report)
    return environment().get_template("report/verify.html.j2").render(
        lab=lab, report=report, passed=all_required_pass(report),
        checked_at=now.strftime("%Y-%m-%d %H:%M UTC"),
        groups=sorted({r.check.group for t in report for r in t.results}),
        causes=causes, not_tested=NOT_TESTED, numbers={cause: n for n, (cause, _) in enumerate(causes, 1)},
        failing=[(t, [r for r in t.results if r.status in ("fail", "not run", "warn")]) for t in report],
        passing=[(t, [r for r in t.results if r.status in ("pass", "n/a")]) for t in report])

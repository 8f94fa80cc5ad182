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
        if not self.failed:
            return "pass"
        return "fail" if self.check.level == "required" else "warn"


@dataclass
class Target:
    name: str
    results: list[CheckResult]  # sorted by group, then id

    @property
    def required(self) -> list[CheckResult]:
        return [r for r in self.results if r.check.level == "required"]

    @property
    def score(self) -> int:
        required = self.required
        return round(100 * sum(r.status == "pass" for r in required) / len(required)) if required else 100

    @property
    def title(self) -> str:
        return "the lab" if self.name == LAB else self.name


class Collector:
    """A pytest plugin: each labgen check's outcome, per target and variant."""

    def __init__(self):
        self.outcomes: list[Outcome] = []

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        report = (yield).get_result()
        meta = getattr(getattr(item, "function", None), "labgen_check", None)
        if meta is None or report.when == "teardown" or report.skipped:
            return  # a skipped check does not apply to this server (HTTP/3 on Apache)
        if report.when == "setup" and report.passed:
            item.user_properties.append(("check", meta.id))  # shows in the JUnit XML
            return
        params = getattr(item, "callspec", None)
        params = params.params if params else {}
        server = params.get("server")
        variant = "/".join(str(params[k]) for k in sorted(params) if k != "server")
        message = ""
        if report.failed:
            crash = getattr(report.longrepr, "reprcrash", None)
            message = (crash.message if crash else str(report.longrepr)).strip()[:400]
        self.outcomes.append(Outcome(meta, server.name if server else LAB, variant,
                                     report.passed, message))


def run_checks(config: Path, junitxml: Path | None = None) -> tuple[int, list[Outcome]]:
    collector = Collector()
    args = [str(CHECKS_DIR), "-p", "labgen.checks.plugin", "--lab-file", str(config),
            "-p", "no:cacheprovider", "--rootdir", str(CHECKS_DIR),
            "-p", "no:terminal"]
    if junitxml:
        args.append(f"--junitxml={junitxml}")
    code = pytest.main(args, plugins=[collector])
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
    return all(r.status != "fail" for t in report for r in t.results)


def scorecard(report: list[Target]) -> str:
    """The terminal report: per target a score, then each check by standard, with why and
    fix under each failure."""
    lines = []
    for target in report:
        lines.append(f"{target.title}: {target.score}%  ({sum(r.status == 'pass' for r in target.required)}"
                     f" of {len(target.required)} required checks pass)")
        group = ""
        for r in target.results:
            if r.check.group != group:
                group = r.check.group
                lines.append(f"  {group.upper()}")
            lines.append(f"    {r.status.upper()}  {r.check.title}  [{r.check.id}; {r.check.standard}]")
            for o in r.failed:
                where = f" ({o.variant})" if o.variant else ""
                lines.append(f"          failed{where}: {o.message.splitlines()[0] if o.message else ''}")
            if r.failed:
                lines.append(f"          why: {r.check.why}")
                lines.append(f"          fix: {r.check.fix}")
    failing = sum(r.status == "fail" for t in report for r in t.results)
    lines.append("verdict: every required check passes" if not failing else
                 f"verdict: {failing} required check{'s' if failing > 1 else ''} fail")
    return "\n".join(lines)


def as_json(lab, report: list[Target], now: dt.datetime) -> str:
    doc = {"lab": lab.name, "domain": lab.domain, "profile": lab.profile.name,
           "checked_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "passed": all_required_pass(report),
           "targets": [{"name": t.name, "score": t.score,
                        "checks": [{**asdict(r.check), "status": r.status,
                                    "variants": [{"variant": o.variant, "passed": o.passed,
                                                  "message": o.message} for o in r.outcomes]}
                                   for r in t.results]} for t in report]}
    return json.dumps(doc, indent=1) + "\n"


def as_html(lab, report: list[Target], now: dt.datetime) -> str:
    """One self-contained page: inline CSS, no script, nothing fetched."""
    return environment().get_template("report/verify.html.j2").render(
        lab=lab, report=report, passed=all_required_pass(report),
        checked_at=now.strftime("%Y-%m-%d %H:%M UTC"))

"""labgen verify: run labgen's checks (pytest + testinfra) on the live lab and report.

The checks run in-process through pytest.main with a small plugin that collects each check's
outcome per server and address family. Score per server, like internet.nl: the share of
required checks that pass. Reports: the terminal scorecard, JSON, one self-contained HTML
page, and pytest's own JUnit XML.
"""

from __future__ import annotations

import datetime as dt
import importlib
import inspect
import itertools
import json
import os
import pkgutil
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

from . import checks as checks_package
from .checks import NOT_APPLICABLE, Check
from .checks.plugin import FAMILIES, LAB_KEY
from .checks.prerequisites import Cause, NotRun
from .checks.untestable import NOT_TESTED
from .errors import LabgenError
from .render import environment
from .spec import Lab
from .text import printable

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
        self.interrupted = False
        self.errors: list[str] = []

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
        variant = _variant(params)
        outcome = dict(check=meta, target=server.name if server else LAB, variant=variant,
                       passed=report.passed, message="")
        if report.skipped and _reason(report).startswith(NOT_APPLICABLE):
            outcome.update(passed=True, applicable=False, message=_reason(report))
        elif report.skipped:  # only a check's own `applies` makes it N/A: any other skip fails
            outcome.update(passed=False, message=printable(f"skipped: {_reason(report)}"))
        elif report.failed and call.excinfo and call.excinfo.errisinstance(NotRun):
            cause = call.excinfo.value.cause
            cause = Cause(printable(cause.text), cause.fix)  # live text (OpenSSL's words)
            outcome.update(message=f"not run: {cause.text}", cause=cause)
        elif report.failed:
            outcome.update(message=printable(failure_message(call.excinfo.value if call.excinfo else None)))
        self.outcomes.append(Outcome(**outcome))

    def pytest_keyboard_interrupt(self, excinfo):
        self.interrupted = True

    def pytest_collectreport(self, report):
        if report.failed:
            self.errors.append(printable(str(report.longrepr).strip().splitlines()[-1]
                                         if str(report.longrepr).strip() else report.nodeid))


def _variant(params: dict) -> str:
    """A check's variant: its parameters but the server ('ipv4', 'TLSA', 'authdns')."""
    return "/".join(str(params[k]) for k in sorted(params) if k != "server")


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


class GivenLab:
    """A pytest plugin: the checks judge this Lab (the one the caller loaded or pinned), and the
    lab file is not read again."""

    def __init__(self, lab: Lab):
        self.lab = lab

    def pytest_configure(self, config):
        config.stash[LAB_KEY] = self.lab


# What pytest reads from the environment: a verdict must not depend on the shell it runs in.
PYTEST_VARIABLES = ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTEST_DEBUG", "PYTEST_XDIST_AUTO_NUM_WORKERS")


@contextmanager
def _controlled_environment():
    saved = {k: os.environ.pop(k) for k in PYTEST_VARIABLES if k in os.environ}
    autoload = os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # only labgen's plugin, none installed
    try:
        yield
    finally:
        os.environ.update(saved)
        if autoload is None:
            del os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"]
        else:
            os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = autoload


def registry() -> list:
    """Every check function of labgen's check modules (the test_* modules of labgen.checks)."""
    found = []
    for info in pkgutil.iter_modules(checks_package.__path__):
        if info.name.startswith("test_"):
            module = importlib.import_module(f"{checks_package.__name__}.{info.name}")
            found += [fn for _, fn in inspect.getmembers(module, inspect.isfunction)
                      if getattr(fn, "labgen_check", None) and fn.__module__ == module.__name__]
    return found


def expected(lab: Lab, keep=None) -> set[tuple[str, str, str]]:
    """The full matrix a run must produce: (check id, target, variant) for every check (that
    keep keeps), every web server and address family it is parametrized over."""
    keys = set()
    for fn in registry():
        meta = fn.labgen_check
        if keep and not keep(meta):
            continue
        names = set(inspect.signature(fn).parameters)
        axes: list[list[dict]] = []
        if "server" in names:
            axes.append([{"server": s.name} for s in lab.web])
        if "family" in names:
            axes.append([{"family": f} for f in FAMILIES])
        for mark in getattr(fn, "pytestmark", []):
            if mark.name == "parametrize":
                argnames, values = mark.args[0], mark.args[1]
                argnames = [a.strip() for a in argnames.split(",")] if isinstance(argnames, str) else list(argnames)
                axes.append([dict(zip(argnames, v if len(argnames) > 1 else (v,))) for v in values])
        for combo in itertools.product(*axes):
            params = {k: v for part in combo for k, v in part.items()}
            keys.add((meta.id, params.get("server", LAB), _variant(params)))
    return keys


# What a check that produced no result is reported with: it fails the verdict, named.
NO_RESULT = Cause("some checks produced no result (the run was cut short, or a check was left out)",
                  "Run labgen verify again; a check that never reports is a defect of labgen.")


def run_checks(config: Path, junitxml: Path | None = None, only=None,
               student: str | None = None, lab: Lab | None = None) -> tuple[int, list[Outcome]]:
    """Run the checks (those `only(check)` keeps, when given) and collect their outcomes; with
    student, config is a class file and the checks judge that student's lab. Given lab, the
    checks judge it without reading the file again.

    A verdict counts only what ran: every (check, target, variant) of the registry's matrix
    that produced no outcome is reported as not run. An interrupt (Ctrl-C, SIGTERM) raises
    KeyboardInterrupt, so the caller records nothing."""
    collector = Collector()
    args = [str(CHECKS_DIR), "-c", str(CHECKS_DIR / "pytest.ini"), "--rootdir", str(CHECKS_DIR),
            "-p", "labgen.checks.plugin", "--lab-file", str(config),
            "-p", "no:cacheprovider", "-p", "no:terminal", "-p", "no:stepwise"]
    if junitxml:
        args.append(f"--junitxml={junitxml}")
    if student:
        args += ["--student", student]
    plugins = [collector] + ([Only(only)] if only else []) + ([GivenLab(lab)] if lab else [])
    with _controlled_environment():
        code = pytest.main(args, plugins=plugins)
    if collector.interrupted:
        raise KeyboardInterrupt
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        detail = collector.errors[0] if collector.errors else f"pytest exit status {int(code)}"
        raise LabgenError(f"the checks could not run: {detail}")
    if lab is None:
        from .labfile import lab_for
        lab = lab_for(str(config), student)
    return int(code), complete(collector.outcomes, lab, only)


def complete(outcomes: list[Outcome], lab: Lab, only=None) -> list[Outcome]:
    """The outcomes, and a not-run failure for each part of the registry's matrix that has none."""
    seen = {(o.check.id, o.target, o.variant) for o in outcomes}
    checks = {fn.labgen_check.id: fn.labgen_check for fn in registry()}
    return outcomes + [Outcome(checks[c], target, variant, False, f"not run: {NO_RESULT.text}", NO_RESULT)
                       for c, target, variant in sorted(expected(lab, only) - seen)]


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

"""labgen verify: run labgen's checks (pytest + testinfra) on the live lab and print a scorecard.

The checks run in-process through pytest.main with a small plugin that collects each check's
outcome per server and address family. Score per server, like internet.nl: the share of
required checks that pass.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

from .checks import Check

CHECKS_DIR = Path(__file__).parent / "checks"


@dataclass(frozen=True)
class Outcome:
    check: Check
    target: str  # a web server's name, or "lab" for lab-wide checks
    variant: str  # ipv4 / ipv6 / a record type ...; "" when none
    passed: bool
    message: str


class Collector:
    def __init__(self):
        self.outcomes: list[Outcome] = []

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        report = (yield).get_result()
        meta = getattr(getattr(item, "function", None), "labgen_check", None)
        if meta is None or (report.when != "call" and report.passed):
            return
        if report.when == "teardown" or report.skipped:
            return  # a skipped check does not apply to this server (HTTP/3 on Apache)
        params = getattr(item, "callspec", None)
        params = params.params if params else {}
        server = params.get("server")
        variant = "/".join(str(params[k]) for k in sorted(params) if k != "server")
        message = ""
        if report.failed:
            crash = getattr(report.longrepr, "reprcrash", None)
            message = (crash.message if crash else str(report.longrepr)).splitlines()[0][:200]
        self.outcomes.append(Outcome(meta, server.name if server else "lab", variant,
                                     report.passed, message))


def run_checks(config: Path, out: Path, extra: list[str] | None = None) -> tuple[int, list[Outcome]]:
    collector = Collector()
    args = [str(CHECKS_DIR), "-p", "labgen.checks.plugin", "--lab-file", str(config),
            "--lab-build", str(out), "-p", "no:cacheprovider", "--rootdir", str(CHECKS_DIR),
            "-p", "no:terminal", *(extra or [])]
    code = pytest.main(args, plugins=[collector])
    return int(code), collector.outcomes


def scorecard(outcomes: list[Outcome]) -> tuple[str, bool]:
    """The terminal report and whether every required check passed."""
    by_target: dict[str, dict[str, list[Outcome]]] = defaultdict(lambda: defaultdict(list))
    for o in outcomes:
        by_target[o.target][o.check.id].append(o)
    lines, ok = [], True
    for target in sorted(by_target, key=lambda t: (t != "lab", t)):
        checks = by_target[target]
        required = [cid for cid, os_ in checks.items() if os_[0].check.level == "required"]
        passed = [cid for cid in required if all(o.passed for o in checks[cid])]
        score = round(100 * len(passed) / len(required)) if required else 100
        lines.append(f"{'the lab' if target == 'lab' else target}: {score}%  "
                     f"({len(passed)} of {len(required)} required checks pass)")
        group = ""
        for cid in sorted(checks, key=lambda c: (checks[c][0].check.group, c)):
            variants = checks[cid]
            meta = variants[0].check
            if meta.group != group:
                group = meta.group
                lines.append(f"  {group.upper()}")
            failed = [o for o in variants if not o.passed]
            mark = "PASS" if not failed else ("FAIL" if meta.level == "required" else "WARN")
            ok &= not (failed and meta.level == "required")
            lines.append(f"    {mark}  {meta.title}  [{meta.id}; {meta.standard}]")
            for o in failed:
                where = f" ({o.variant})" if o.variant else ""
                lines.append(f"          failed{where}: {o.message}")
            if failed:
                lines.append(f"          why: {meta.why}")
                lines.append(f"          fix: {meta.fix}")
    return "\n".join(lines), ok

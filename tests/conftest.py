"""Shared fixtures. Integration tests need root, the Debian 12 servers on the machine and
debootstrap; .ci/run installs them, so in CI nothing is skipped."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from labgen import render, spec

def pytest_addoption(parser):
    parser.addoption("--update-goldens", action="store_true",
                     help="rewrite tests/golden/ from the current templates instead of comparing")


def pytest_sessionfinish(session, exitstatus):
    """In CI every test must run: a skipped test is a failure of .ci/run."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if os.environ.get("CI") and skipped and exitstatus == 0:
        reporter.write_line(f"CI: {len(skipped)} test(s) skipped; every test must run in CI", red=True)
        session.exitstatus = 1


@pytest.fixture
def render_lab(tmp_path):
    """Render a lab dict into a fresh folder; returns (Lab, build path)."""

    def _render(data: dict | None = None, *, out: Path | None = None, now=None):
        lab = spec.parse(data or {}, "lab.yml")
        return lab, render.render(lab, out or tmp_path / "build", now=now)

    return _render

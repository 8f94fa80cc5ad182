"""Shared fixtures. Integration tests need root, the Debian 12 servers on the machine and
debootstrap; .ci/run installs them, so in CI nothing is skipped."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from labgen import render, spec

# A fixed clock for renders whose bytes are compared (security.txt Expires, zone serial).
FIXED_NOW = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.timezone.utc)


def pytest_addoption(parser):
    parser.addoption("--update-goldens", action="store_true",
                     help="rewrite tests/golden/ from the current templates instead of comparing")


@pytest.fixture
def render_lab(tmp_path):
    """Render a lab dict into a fresh folder; returns (Lab, build path)."""

    def _render(data: dict | None = None, *, out: Path | None = None, now=None):
        lab = spec.parse(data or {}, "lab.yml")
        return lab, render.render(lab, out or tmp_path / "build", now=now)

    return _render

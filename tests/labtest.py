"""Helpers shared by the test tiers (a plain module: conftest names collide across folders)."""

from __future__ import annotations

import datetime as dt
import subprocess

# A fixed clock for renders whose bytes are compared (security.txt Expires, zone serial).
FIXED_NOW = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.timezone.utc)


def run(cmd: list[str] | str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, shell=isinstance(cmd, str), **kwargs)

"""Helpers shared by the test tiers (a plain module: conftest names collide across folders)."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import yaml

# A fixed clock for renders whose bytes are compared (security.txt Expires, zone serial).
FIXED_NOW = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.timezone.utc)


def run(cmd: list[str] | str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, shell=isinstance(cmd, str), **kwargs)


def write_lab(folder: Path, data: dict) -> Path:
    """Write a lab file (a dict) into folder/lab.yml."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "lab.yml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path

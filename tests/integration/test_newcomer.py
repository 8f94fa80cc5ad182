"""The installed `labgen` command as a newcomer meets it (issue 31): a fresh virtual environment
with the newest releases pip picks today, not the lock, so CI fails the day a future release of
any dependency puts its own words (a warning, a notice) before labgen's.

CI's "newest releases" step makes that environment once and names it in LABGEN_NEWEST_VENV;
without it the fixture makes its own (about a minute, with pip's cache).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from labtest import run
from unit.test_hostile import BAD, YAML

ROOT = Path(__file__).resolve().parents[2]
# One line of Python's warnings machinery: "<file>:<line>: <Category>Warning: <message>".
WARNING_LINE = re.compile(r"^\S.*:\d+: \w*Warning: ", re.MULTILINE)
NEWCOMER_ENV = {"HOME": os.environ.get("HOME", "/root"),
                "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}


@pytest.fixture(scope="module")
def newest_labgen(tmp_path_factory) -> Path:
    """The `labgen` command of a virtual environment holding the newest releases."""
    named = os.environ.get("LABGEN_NEWEST_VENV")
    venv = Path(named) if named else tmp_path_factory.mktemp("newest") / "venv"
    if not named:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = run([str(venv / "bin/python"), "-m", "pip", "install", "-q", "--upgrade", str(ROOT)])
        assert pip.returncode == 0, f"pip install of the newest releases failed:\n{pip.stderr[-3000:]}"
    command = venv / "bin/labgen"
    assert command.is_file(), f"{command} is missing: LABGEN_NEWEST_VENV names no labgen install"
    return command


def _render(labgen: Path, lab: Path) -> subprocess.CompletedProcess:
    return run([str(labgen), "render", "-c", str(lab)], env=NEWCOMER_ENV, cwd=lab.parent)


def test_a_bad_lab_file_gets_one_line_on_stderr_and_nothing_written(newest_labgen, tmp_path):
    lab = tmp_path / "lab.yml"
    lab.write_text("name: demo\nservers:\n  - software: nginxx\n")
    result = _render(newest_labgen, lab)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"labgen: error: {lab}: servers[0].software: 'nginxx' is not one of nginx, apache "
        "(did you mean 'nginx'?)"], "stderr holds more than labgen's one line"
    assert not (tmp_path / "build").exists()


@pytest.mark.parametrize(("data", "message"), BAD + YAML)
def test_every_hostile_lab_file_gets_exactly_one_line(newest_labgen, tmp_path, data, message):
    """The corpus of tests/unit/test_hostile.py, through the command: one line naming the file
    (the message itself is that module's business; some differ once written to a file)."""
    lab = tmp_path / "lab.yml"
    if isinstance(data, dict):
        lab.write_text(yaml.safe_dump(data), encoding="utf-8")
    else:
        lab.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    result = _render(newest_labgen, lab)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"labgen: error: {lab}: "), (
        f"expected one line naming the problem, saw {len(lines)}:\n{result.stderr[:2000]}")


def test_a_good_render_prints_no_warning(newest_labgen, tmp_path):
    """The starter lab renders with labgen's words only, on stdout and stderr."""
    init = run([str(newest_labgen), "init", str(tmp_path)], env=NEWCOMER_ENV)
    assert init.returncode == 0, init.stderr
    result = _render(newest_labgen, tmp_path / "lab.yml")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert not WARNING_LINE.search(result.stdout), result.stdout

"""README's checks table names every check, with its level; the items internet.nl tests that a
closed lab cannot have are data, each with its reason."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import labgen.checks
from labgen.checks.untestable import NOT_TESTED

README = Path(__file__).parents[2] / "README.md"


def all_checks():
    for module in pkgutil.iter_modules(labgen.checks.__path__):
        if module.name.startswith("test_"):
            mod = importlib.import_module(f"labgen.checks.{module.name}")
            yield from (f.labgen_check for f in vars(mod).values() if hasattr(f, "labgen_check"))


def test_every_check_is_in_the_readme_table_with_its_level():
    rows = [line for line in README.read_text(encoding="utf-8").splitlines() if line.startswith("| `")]
    for check in all_checks():
        row = next((r for r in rows if re.search(rf"`{re.escape(check.id)}`", r.split("|")[1])), None)
        assert row, f"{check.id} is missing from README's checks table"
        assert row.split("|")[2].strip().startswith(check.level), f"{check.id}: {row}"


def test_what_the_lab_cannot_test_is_listed_with_a_reason():
    assert any("RPKI" in test for test, _ in NOT_TESTED)
    assert all(test and len(reason) > 20 for test, reason in NOT_TESTED)

"""The exercise catalogue as data: it loads, covers every standard, names only checks that
exist, uses only placeholders a lab has; README lists it; `exercise list` works without a lab."""

from __future__ import annotations

import fnmatch
import json
import re
import string
import sys
from pathlib import Path

import pytest
import yaml
from test_checks_table import all_checks

from labgen.exercises import STANDARDS, CatalogueError, _exercise, catalogue, host_for
from labgen.exercises.faults import facts
from labgen.exercises.session import markdown_table
from labtest import run, write_lab

README = Path(__file__).parents[2] / "README.md"


def test_the_catalogue_has_at_least_20_exercises_over_every_standard():
    exercises = list(catalogue().values())
    assert len(exercises) >= 20
    assert {s for e in exercises for s in e.standards} == set(STANDARDS)
    assert {e.level for e in exercises} == {"beginner", "intermediate", "advanced"}


def test_every_selector_names_a_check_that_exists():
    ids = {c.id for c in all_checks()}
    for e in catalogue().values():
        for selector in e.breaks:
            assert fnmatch.filter(ids, selector.check), f"{e.id}: no check matches {selector.check}"


def test_every_placeholder_of_every_script_exists_for_the_default_lab(render_lab):
    lab, _ = render_lab()
    for e in catalogue().values():
        for step in e.fault + e.student:
            if step.run:
                host = host_for(lab, step.host)
                names = {f for _, f, _, _ in string.Formatter().parse(step.run) if f}
                missing = names - set(facts(lab, host, e.server_host(lab)))
                assert not missing, f"{e.id}: {step.run} uses {missing}"


def test_readme_lists_the_catalogue_as_generated():
    text = README.read_text(encoding="utf-8")
    assert markdown_table() in text, ("README's exercise table is out of date: paste "
                                      "`labgen exercise list --markdown` into it")


def test_a_malformed_entry_is_refused_with_its_id():
    good = yaml.safe_load((Path(__file__).parents[2] / "labgen/exercises/catalogue.yml").read_text())[0]
    for change, message in (({"id": "Bad Id"}, "the id must be a slug"),
                            ({"level": "expert"}, "level must be one of"),
                            ({"hints": ["a", "b", "c", "d"]}, "give 1 to 3 hints"),
                            ({"fault": [{"host": "mail", "run": "true"}]}, "host 'mail' is not one of")):
        with pytest.raises(CatalogueError, match=re.escape(message)):
            _exercise({**good, **change})


def test_list_without_a_lab_and_with_one(tmp_path):
    plain = run([sys.executable, "-m", "labgen", "exercise", "list"], cwd=tmp_path)
    assert plain.returncode == 0 and "tls-old-versions" in plain.stdout and "not for this lab" not in plain.stdout
    config = write_lab(tmp_path, {"name": "listing"})
    rows = json.loads(run([sys.executable, "-m", "labgen", "exercise", "list", "--json", "-c",
                           str(config)]).stdout)
    cbc = next(r for r in rows if r["id"] == "cbc-suite")
    assert not cbc["applies"] and "intermediate profile" in cbc["reason"]
    assert sum(r["applies"] for r in rows) >= 20


def test_an_unknown_exercise_is_refused_before_anything_else(tmp_path):
    config = write_lab(tmp_path, {"name": "nolab"})
    result = run([sys.executable, "-m", "labgen", "exercise", "hint", "no-such", "-c", str(config)])
    assert result.returncode == 2 and result.stdout == ""
    assert "unknown exercise 'no-such'; labgen exercise list shows them all" in result.stderr

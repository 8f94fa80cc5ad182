"""The exercise catalogue as data: it loads, covers every standard, names only checks that
exist, uses only placeholders a lab has; README lists it; `exercise list` works without a lab."""

from __future__ import annotations

import dataclasses
import fnmatch
import ipaddress
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
from labgen.spec import Parent
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
    default, _ = render_lab()
    # as a class student's lab, whose zone the lab root keeps a copy of
    student = dataclasses.replace(default, parent=Parent("example", ipaddress.ip_address("198.51.100.5"),
                                                         ipaddress.ip_address("2001:db8::5"), "", "root"))
    acme, _ = render_lab({"name": "acme", "dnssec": {"signer": "bind"}, "certificates": "acme"})
    for e in catalogue().values():
        lab = student if "secondary" in e.requires else acme if "acme" in e.requires else default
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


# Words of a fix that a title may share with it: the software, its tools, everyday words.
GENERIC = {"nginx", "apache", "apache2", "apache2ctl", "systemctl", "reload", "configtest", "unbound",
           "control", "sign", "zone", "site", "host", "self", "none", "with", "from", "that", "this"}
WEB_RELOAD = {"nginx": "nginx -t && systemctl reload nginx",
              "apache": "apache2ctl configtest && systemctl reload apache2"}


def _words(text: str) -> set[str]:
    """Words of four letters or more, lower-case; CamelCase, snake_case and kebab-case split."""
    parts = re.findall(r"[A-Za-z0-9]+", re.sub(r"([a-z])([A-Z])", r"\1 \2", text))
    return {w.lower() for w in parts if len(w) >= 4}


def _student_texts(e):
    return {"title": e.title, "task": e.task, "fix": e.fix,
            **{f"hint {n}": h for n, h in enumerate(e.hints, 1)}}


def test_titles_describe_the_symptom_and_never_name_the_fix():
    for e in catalogue().values():
        spans = set().union(set(), *(_words(code) for code in re.findall(r"`([^`]+)`", e.fix)))
        named = _words(e.title) & (spans - GENERIC)
        assert not named, f"{e.id}: the title '{e.title}' names the fix ({', '.join(sorted(named))})"


def test_no_check_and_no_exercise_tells_a_student_to_run_labgen_up():
    """labgen up during an exercise puts the lab back and ends every active exercise."""
    for check in all_checks():
        for field in ("title", "why", "fix"):
            assert "labgen up" not in getattr(check, field), f"{check.id}: its {field} says labgen up"
    for e in catalogue().values():
        for where, text in _student_texts(e).items():
            assert "labgen up" not in text, f"{e.id}: its {where} says labgen up"


def test_model_student_fixes_reload_what_they_change_themselves():
    """labgen reloads nothing after a student step: a web server step tests its config and
    reloads when the fault needed a reload to show; a name server step signs (which restarts
    named) or reloads."""
    for e in catalogue().values():
        for step in e.student:
            assert not step.reload, f"{e.id}: labgen would reload after the student step"
            reloaded = any(f.host == step.host and f.reload for f in e.fault)
            if step.host in WEB_RELOAD and reloaded:  # labgen-certs reloads after what it changes
                assert WEB_RELOAD[step.host] in step.run or "labgen-certs " in step.run, f"{e.id}: {step.run} does not reload {step.host}"
            if step.host == "authdns" and not e.drill:  # a drill's roll is BIND's own work
                assert "{sign}" in step.run or "rndc reload" in step.run, f"{e.id}: named never reloads"


def test_dns_exercises_flush_the_resolver_cache_instead_of_restarting_it():
    # A drill flushes nothing: it is graded on getting the timings right, caches included.
    # A drill flushes nothing either; nor does a secondary's copy, which is no resolver's cache.
    dns = [e for e in catalogue().values() if any(s.host in ("authdns", "resolver") for s in e.student)
           and not e.drill and "secondary" not in e.requires]
    assert len(dns) >= 6
    for e in dns:
        texts = " ".join(_student_texts(e).values()) + " ".join(s.run for s in e.student)
        assert not re.search(r"restart(ing)? unbound|systemctl restart unbound", texts), e.id
        resolver = [s.run for s in e.student if s.host == "resolver"]
        assert resolver and all(r.startswith(("unbound-control ", "sed ")) for r in resolver), e.id
        assert "unbound-control" in e.hints[-1] and "unbound-control" in e.fix, e.id
        if any(s.host == "authdns" for s in e.student):
            assert re.fullmatch(r"unbound-control (flush_zone \{domain\}|flush_bogus)", resolver[-1]), e.id


def test_a_student_step_that_asks_labgen_to_reload_is_refused():
    good = yaml.safe_load((Path(__file__).parents[2] / "labgen/exercises/catalogue.yml").read_text())[0]
    step = {**good["student"][0], "reload": True}
    with pytest.raises(CatalogueError, match="a student step takes no reload or files"):
        _exercise({**good, "student": [step]})


def test_also_breaks_names_only_recommended_checks_that_compare_with_the_lab_file():
    checks = list(all_checks())
    for e in catalogue().values():
        for selector in e.also_breaks:
            matched = [c for c in checks if selector.covers(c.id, c.needs, c.fetches)]
            assert matched, f"{e.id}: also_breaks {selector.check} matches no check"
            assert all(c.level != "required" for c in matched), (
                f"{e.id}: a required check belongs in breaks, where grading asks it back")
    for value_check in ("https.hsts", "headers.csp"):
        for e in catalogue().values():
            if any(s.check == value_check for s in e.breaks):
                assert any(s.check == f"{value_check}_lab_value" for s in e.also_breaks), e.id

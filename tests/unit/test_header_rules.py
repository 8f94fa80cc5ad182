"""HSTS and CSP are judged by the rules internet.nl applies (checks/tasks/http_headers.py of
internetstandards/Internet.nl), not by equality with the lab file: a stricter valid value
passes, and the lab file's own values pass."""

from __future__ import annotations

import pytest

from labgen.checks.test_headers import csp_problems
from labgen.checks.test_https import hsts_max_age
from labgen.profiles import PROFILES, load_profile

SITE = "nginx.lab.example"


@pytest.mark.parametrize("profile", PROFILES)
def test_the_profiles_csp_passes(profile):
    assert csp_problems(load_profile(profile).headers["Content-Security-Policy"], SITE) == []


@pytest.mark.parametrize("value", [
    "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "default-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'self'; object-src 'none'; "
    "script-src 'self'; upgrade-insecure-requests",
    "default-src 'self' https://static.nginx.lab.example; base-uri 'self'; form-action 'self' "
    "https://forms.example.org; frame-ancestors 'none'; img-src 'self' data:",
    "default-src 'self'; base-uri 'self' 'report-sample'; form-action 'self'; frame-ancestors 'none'; "
    "script-src 'self' 'nonce-abc123=='",
], ids=["all-none", "stricter", "own-subdomain", "report-sample-nonce"])
def test_a_policy_internet_nl_accepts_passes(value):
    assert csp_problems(value, SITE) == []


@pytest.mark.parametrize("value,problem", [
    ("", "no Content-Security-Policy header"),
    ("default-src 'self' 'unsafe-inline'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
     "default-src allows 'unsafe-inline'"),
    ("default-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'; style-src 'unsafe-eval'",
     "style-src allows 'unsafe-eval'"),
    ("default-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'; img-src http:",
     "img-src allows plain http (http:)"),
    ("default-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'; img-src https:",
     "img-src allows any https: address"),
    ("default-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'; img-src cdn.example.org",
     "img-src names a host without its scheme (cdn.example.org)"),
    ("default-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'; script-src *",
     "script-src allows any host (*)"),
    ("default-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'; object-src data:",
     "object-src allows data: URLs"),
    ("default-src 'self' https://cdn.example.org; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
     "default-src must be 'none', or 'self'"),
    ("default-src 'self'; form-action 'self'; frame-ancestors 'none'", "base-uri must be"),
    ("default-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors https://a.example",
     "frame-ancestors must include 'self' or 'none'"),
    ("default-src 'self'; base-uri 'self'; frame-ancestors 'none'", "form-action must include"),
], ids=["missing", "unsafe-inline", "unsafe-eval", "http", "bare-https", "no-scheme", "star", "data",
        "foreign-default", "no-base-uri", "framing", "no-form-action"])
def test_each_rule_internet_nl_applies_fails_the_policy(value, problem):
    problems = csp_problems(value, SITE)
    assert any(p.startswith(problem) for p in problems), problems
    assert all("{" not in p and "Source(" not in p for p in problems)  # sentences, no reprs


@pytest.mark.parametrize("value,age", [
    ("max-age=63072000; includeSubDomains", 63072000),
    ("Max-Age=31536000; preload", 31536000),
    ("max-age=86400", 86400),
    ("includeSubDomains; max-age=31536000", 31536000),
    ("max-age=31536000, max-age=0", 31536000),  # the first policy counts
    ('max-age="31536000"', None),  # internet.nl does not read a quoted one
    ("includeSubDomains", None),
    ("", None),
])
def test_hsts_max_age_is_read_as_internet_nl_reads_it(value, age):
    assert hsts_max_age(value) == age

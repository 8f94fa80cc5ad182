"""The pytest plugin behind labgen's checks: options, the lab model, testinfra hosts and the
parametrization over web servers and address families."""

from __future__ import annotations

import os

import pytest
import testinfra

from ..engine import containers_conf
from ..spec import Lab, load

FAMILIES = ("ipv4", "ipv6")


def pytest_addoption(parser):
    group = parser.getgroup("labgen")
    group.addoption("--lab-file", default="lab.yml", help="the lab file of the running lab")
    group.addoption("--lab-build", default="build", help="the build folder (default: build)")


@pytest.fixture(scope="session")
def lab(pytestconfig) -> Lab:
    return load(pytestconfig.getoption("--lab-file"))


@pytest.fixture(scope="session")
def build(pytestconfig, lab):
    from pathlib import Path

    return Path(pytestconfig.getoption("--lab-build")) / lab.name


def _host(lab: Lab, name: str):
    os.environ.setdefault("CONTAINERS_CONF", str(containers_conf()))
    backend = "docker" if lab.engine == "docker" else "podman"
    return testinfra.get_host(f"{backend}://labgen-{lab.name}-{name}")


@pytest.fixture(scope="session")
def client(lab):
    """The student's workstation: network checks run from here, through the lab resolver."""
    return _host(lab, "client")


@pytest.fixture(scope="session")
def hosts(lab):
    return {h.name: _host(lab, h.name) for h in lab.hosts}


def pytest_generate_tests(metafunc):
    lab = load(metafunc.config.getoption("--lab-file"))
    if "server" in metafunc.fixturenames:
        servers = lab.web
        if "family" in metafunc.fixturenames:
            metafunc.parametrize(("server", "family"), [(s, f) for s in servers for f in FAMILIES],
                                 ids=[f"{s.name}-{f}" for s in servers for f in FAMILIES])
        else:
            metafunc.parametrize("server", servers, ids=[s.name for s in servers])

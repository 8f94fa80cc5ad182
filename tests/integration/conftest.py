"""Integration fixtures: real tools on this machine and the cached Debian 13 root file system.

These tests never skip: on a machine without the tools they fail and say what to install
(.ci/run installs everything).
"""

from __future__ import annotations

import os
import shutil

import pytest

from labgen import image

TOOLS = {"openssl": "openssl", "ldns-verify-zone": "ldnsutils", "dnssec-verify": "bind9-utils",
         "named-checkzone": "bind9-utils", "nginx": "nginx", "apache2ctl": "apache2",
         "named-checkconf": "bind9-utils", "unbound-checkconf": "unbound", "debootstrap": "debootstrap",
         "unshare": "util-linux"}


def pytest_collection_modifyitems(items):
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session", autouse=True)
def machine_ready():
    missing = sorted({pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None})
    if missing:
        pytest.fail(f"integration tests need: apt-get install {' '.join(missing)} (see .ci/run)")
    if os.geteuid() != 0:
        pytest.fail("integration tests need root (mount namespaces, debootstrap)")


@pytest.fixture(scope="session")
def debian13_root():
    """Debian 13 with the lab's packages: built once with debootstrap, then cached."""
    return image.rootfs()

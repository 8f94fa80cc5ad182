"""Integration fixtures: real tools on this machine and the cached Debian 13 root file system.

These tests never skip: on a machine without the tools they fail and say what to install
(.ci/run installs everything).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509

from labgen import image, lifecycle
from labgen.engine import Engine
from labgen.render import cert_paths
from labgen.spec import Host, Lab, load
from labtest import write_lab

SIGALGS = {"ecdsa": "ecdsa_secp256r1_sha256", "rsa": "rsa_pss_rsae_sha256"}
# The test lab: the default lab file with its own name and subnets, so that a trainer's demo
# lab on the same machine is left alone.
TEST_LAB = {"name": "itest", "network": {"ipv4": "10.77.0.0/24", "ipv6": "2001:db8:77::/64"}}
# A lab of the intermediate profile (TLS 1.2 too, an RSA certificate beside the ECDSA one),
# whose zone denies names with NSEC3 (the shared lab's with NSEC).
INTERMEDIATE_LAB = {"name": "itest11", "profile": "intermediate", "dnssec": {"denial": "nsec3"},
                    "network": {"ipv4": "192.168.111.0/24", "ipv6": "2001:db8:7b::/64"}}

TOOLS = {"openssl": "openssl", "ldns-verify-zone": "ldnsutils", "dnssec-verify": "bind9-utils",
         "named-checkzone": "bind9-utils", "nginx": "nginx", "apache2ctl": "apache2",
         "named-checkconf": "bind9-utils", "unbound-checkconf": "unbound", "debootstrap": "debootstrap",
         "unshare": "util-linux", "podman": "podman", "runc": "runc", "ssh": "openssh-client",
         "docker": "docker.io", "chromium": "chromium"}


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


@dataclass
class RunningLab:
    lab: Lab
    config: Path
    out: Path
    engine: Engine
    first_stats: dict

    @property
    def build(self) -> Path:
        return self.out / self.lab.name

    def up(self) -> dict:
        return lifecycle.up(self.lab, self.out, self.engine, log=lambda _: None)

    def exec(self, host: str, *cmd: str):
        return self.engine.exec(f"labgen-{self.lab.name}-{host}", *cmd)

    def client(self, *cmd: str):
        return self.exec("client", *cmd)

    def served_certificate(self, host: Host, kind: str, address: str) -> x509.Certificate:
        """The certificate a server sends the client for host's name at address (v4 or v6)."""
        target = f"[{address}]:443" if ":" in address else f"{address}:443"
        result = self.client("sh", "-c", f"openssl s_client -connect {target} -servername "
                             f"{host.fqdn} -sigalgs {SIGALGS[kind]} </dev/null 2>/dev/null | openssl x509")
        assert result.returncode == 0, f"{host.name} over {address}: no certificate ({result.stderr})"
        return x509.load_pem_x509_certificate(result.stdout.encode())

    def rendered_certificate(self, host: Host, kind: str) -> x509.Certificate:
        path = self.build / "hosts" / host.name / cert_paths(host, kind)["crt"].lstrip("/")
        return x509.load_pem_x509_certificate(path.read_bytes())  # the first in the chain


def lab_up(tmp_path_factory, data: dict):
    """A fixture's lab: brought up with `labgen up` (what an interrupted session left of it
    removed first), yielded, and taken down at the end."""
    folder = tmp_path_factory.mktemp(data["name"])
    config = write_lab(folder, data)
    lab, engine = load(config), Engine("podman")
    lifecycle.down(lab.name, engine)
    stats = lifecycle.up(lab, folder / "build", engine, log=lambda _: None)
    yield RunningLab(lab, config, folder / "build", engine, stats)
    lifecycle.down(lab.name, engine)


@pytest.fixture(scope="session")
def running_lab(tmp_path_factory):
    """One lab for the whole session."""
    yield from lab_up(tmp_path_factory, TEST_LAB)


@pytest.fixture(scope="session")
def intermediate_lab(running_lab, tmp_path_factory):
    """The intermediate lab, beside the shared one, for the whole session."""
    yield from lab_up(tmp_path_factory, INTERMEDIATE_LAB)

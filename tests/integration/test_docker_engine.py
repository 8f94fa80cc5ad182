"""--engine docker: the same lab through the Docker CLI and Ansible's community.docker.docker
connection. CI has no Docker Engine, so the Docker CLI talks to Podman's Docker-compatible API
(`podman system service`): every call labgen makes is a real `docker ...` command."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from labgen import cli, lifecycle
from labgen.engine import Engine
from labgen.spec import load
from labtest import write_lab

LAB = {"name": "dtest", "network": {"ipv4": "192.168.79.0/24", "ipv6": "2001:db8:7a::/64"},
       "servers": [{"name": "www", "software": "nginx"}], "engine": "docker"}


@pytest.fixture
def docker_api(tmp_path, monkeypatch):
    socket = tmp_path / "docker.sock"
    service = subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{socket}"],
                               env=Engine("podman").env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not socket.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{socket}")
    yield
    service.terminate()
    service.wait(timeout=20)


def test_the_lab_runs_through_the_docker_cli(docker_api, tmp_path, capsys):
    config = write_lab(tmp_path, LAB)
    lab = load(config)
    engine = Engine("docker")
    lifecycle.down(lab.name, engine)
    try:
        assert cli.main(["up", "-c", str(config), "-o", str(tmp_path / "build")]) == 0
        assert "5 of 5 hosts healthy" in capsys.readouterr().out
        client, www = lab.container(lab.role("client")), lab.web[0]
        flags = engine.exec(client, "dig", "+dnssec", www.fqdn, "AAAA").stdout
        assert ";; flags: qr rd ra ad;" in flags
        for family in ("-4", "-6"):
            code = engine.exec(client, "curl", family, "-s", "-o", "/dev/null", "-w", "%{http_code}",
                               f"https://{www.fqdn}/").stdout
            assert code == "200"
        assert cli.main(["up", "-c", str(config), "-o", str(tmp_path / "build")]) == 0
        assert "[5/5] deploy: 0 changes" in capsys.readouterr().out
        # labgen verify through testinfra's docker:// hosts and `docker exec -i` shells.
        verify = subprocess.run([sys.executable, "-m", "labgen", "verify", "-c", str(config)],
                                capture_output=True, text=True, timeout=300)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert "www: 100%" in verify.stdout
    finally:
        assert cli.main(["down", "-c", str(config)]) == 0
    assert engine.lab_resources(lab.name) == {"containers": [], "networks": [], "volumes": []}

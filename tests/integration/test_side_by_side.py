"""A second lab runs beside the session's lab, and `labgen down` removes exactly that lab.
It differs where the checks' expectations come from: the intermediate profile (TLS 1.2 with
its suites, an RSA certificate too), another zone signed with ED25519 and NSEC3, one Apache
server named www; `labgen verify` passes there as well."""

from __future__ import annotations

import sys

from labgen import cli, lifecycle
from labgen.engine import network_name
from labgen.spec import load

from labtest import run, write_lab

SECOND = {"name": "itest2", "network": {"ipv4": "192.168.77.0/24", "ipv6": "2001:db8:78::/64"},
          "servers": [{"name": "www", "software": "apache"}], "profile": "intermediate",
          "domain": "school.example", "dnssec": {"algorithm": "ED25519", "denial": "nsec3"},
          "caa": {"issuer": "ca.school.example"}}


def test_two_labs_side_by_side_and_down_removes_only_its_own(running_lab, tmp_path, capsys):
    engine = running_lab.engine
    config = write_lab(tmp_path, SECOND)
    second = load(config)
    assert cli.main(["up", "-c", str(config), "-o", str(tmp_path / "build")]) == 0
    try:
        for lab in (running_lab.lab, second):
            assert all(r.healthy for r in lifecycle.status(lab, engine)), lab.name
        www = second.web[0]
        code = engine.exec(second.container(second.role("client")), "curl", "-6", "-s", "-o",
                           "/dev/null", "-w", "%{http_code}", f"https://{www.fqdn}/").stdout
        assert code == "200"
        out = capsys.readouterr().out
        assert "[5/5] deploy" in out and "6 of 6 hosts healthy" not in out
        assert "5 of 5 hosts healthy" in out  # one web server: ns1, resolver, client, probe, www
        verify = run([sys.executable, "-m", "labgen", "verify", "-c", str(config)])
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert "www: 100%" in verify.stdout and "PASS  TLS 1.2 as the profile says" in verify.stdout
    finally:
        assert cli.main(["down", "-c", str(config)]) == 0
    assert "lab itest2 is down: removed 5 containers, 1 network" in capsys.readouterr().out
    assert engine.lab_resources(second.name) == {"containers": [], "networks": [], "volumes": []}
    assert engine.run("network", "inspect", network_name(second), check=False).returncode != 0
    # The session's lab is untouched.
    assert all(r.healthy for r in lifecycle.status(running_lab.lab, engine))
    assert cli.main(["status", "-c", str(config)]) == 1
    assert "0 of 5 hosts healthy" in capsys.readouterr().out


def test_a_lab_on_taken_subnets_names_the_lab_that_holds_them(running_lab, tmp_path, capsys):
    taken = {"name": "itest3", "network": {"ipv4": "10.77.0.0/25", "ipv6": "2001:db8:79::/64"}}
    config = write_lab(tmp_path, taken)
    try:
        assert cli.main(["up", "-c", str(config)]) == 5
        err = capsys.readouterr().err
        assert ("the lab's subnets are taken: 10.77.0.0/24 is used by network "
                f"{network_name(running_lab.lab)} (lab itest)") in err
        assert "network.ipv4 / network.ipv6 in the lab file" in err
    finally:
        cli.main(["down", "-c", str(config)])

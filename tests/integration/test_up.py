"""labgen up on real Podman with real Ansible: the lab runs, serves what was rendered, resolves
through its own validating resolver, and converges again after damage.

The tests share one running lab and run in file order: read-only checks first, then the ones
that break something and repair it with another `up`.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import pytest

from labgen import deploy, kinds, lifecycle
from labgen.errors import DeployError
from labgen.render import cert_paths

def assert_healthy(running_lab):
    rows = lifecycle.status(running_lab.lab, running_lab.engine)
    assert [(r.host.name, r.state, r.service_state) for r in rows if not r.healthy] == []
    for host in running_lab.lab.hosts:
        state = running_lab.exec(host.name, "systemctl", "is-system-running").stdout.strip()
        assert state == "running", f"{host.name}: systemd is {state}"


def test_first_up_deployed_every_host(running_lab):
    changed = running_lab.first_stats.get("changed") or {}
    assert set(changed) == {h.name for h in running_lab.lab.hosts}
    assert not running_lab.first_stats.get("failures")


def test_every_service_runs_and_only_where_its_role_puts_it(running_lab):
    assert_healthy(running_lab)
    units = {k.unit for k in kinds.KINDS.values() if k.unit}
    for host in running_lab.lab.hosts:
        own = lifecycle.service(host)
        for unit in units - {own}:
            state = running_lab.exec(host.name, "systemctl", "is-active", unit).stdout.strip()
            assert state == "inactive", f"{unit} runs on {host.name}"


def test_web_servers_listen_on_443_over_ipv4_and_ipv6(running_lab):
    for host in running_lab.lab.web:
        listening = set(running_lab.exec(host.name, "ss", "-Hltn").stdout.split())
        # '*:443' is one dual-stack socket (Apache's default); nginx opens one per family.
        assert {"0.0.0.0:443", "*:443"} & listening, f"{host.name}: no IPv4 listener"
        assert {"[::]:443", "*:443"} & listening, f"{host.name}: no IPv6 listener"


def test_each_server_serves_the_rendered_certificate_over_ipv4_and_ipv6(running_lab):
    lab = running_lab.lab
    for host in lab.web:
        for kind in lab.profile.certificate_types:
            rendered = running_lab.rendered_certificate(host, kind)
            for address in (str(host.ipv4), str(host.ipv6)):
                assert running_lab.served_certificate(host, kind, address) == rendered


def test_hosts_resolve_through_the_lab_resolver_with_the_ad_flag(running_lab):
    lab = running_lab.lab
    resolver = lab.role("resolver")
    for host in lab.hosts:
        conf = running_lab.exec(host.name, "cat", "/etc/resolv.conf").stdout
        assert re.findall(r"^nameserver\s+(\S+)", conf, re.M) == [str(resolver.ipv4), str(resolver.ipv6)]
    for host in lab.web:
        for rtype, want in (("A", host.ipv4), ("AAAA", host.ipv6)):
            out = running_lab.client("dig", "+dnssec", host.fqdn, rtype).stdout
            flags = re.search(r";; flags: ([a-z ]+);", out).group(1).split()
            assert "ad" in flags, f"{host.fqdn} {rtype}: not validated\n{out}"
            assert re.search(rf"^{re.escape(host.fqdn)}\.\s+\d+\s+IN\s+{rtype}\s+{want}$", out, re.M)
            assert f"SERVER: {resolver.ipv4}#53" in out
    # And over HTTPS by name, with the lab CA trusted on the client: what a student types.
    for host in lab.web:
        for flag in ("-4", "-6"):
            code = running_lab.client("curl", flag, "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                      f"https://{host.fqdn}/").stdout
            assert code == "200", f"curl {flag} https://{host.fqdn}/ gave {code}"


def test_every_host_trusts_the_lab_ca_and_no_public_root(running_lab):
    """The image deselects Debian's public roots (labgen.image): each host's bundle is the lab
    CA alone, so update-ca-certificates stays cheap and nothing outside the lab is trusted."""
    ca = (running_lab.build / "pki" / "ca.crt").read_text().strip()
    for host in running_lab.lab.hosts:
        bundle = running_lab.exec(host.name, "cat", "/etc/ssl/certs/ca-certificates.crt").stdout
        found = re.findall(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", bundle, re.S)
        assert found == [ca], f"{host.name}: {len(found)} certificates in its bundle; expected the lab CA alone"


def test_second_up_changes_nothing(running_lab):
    stats = running_lab.up()
    assert deploy.changed(stats) == 0, stats.get("changed")


def test_a_deploy_that_sends_a_private_key_logs_none_of_it(running_lab):
    """Keys travel only inside the archive: nothing of them reaches Ansible's events or output."""
    host = next(h for h in running_lab.lab.web if h.software == "nginx")
    key = cert_paths(host, "ecdsa")["key"]
    running_lab.exec(host.name, "rm", "-f", key)  # the next up must send the key again
    assert deploy.changed(running_lab.up()) >= 1
    assert running_lab.exec(host.name, "stat", "-c", "%a %U", key).stdout.split() == ["600", "root"]
    pem = (running_lab.build / "hosts" / host.name / key.lstrip("/")).read_text()
    body = "".join(line for line in pem.splitlines() if "PRIVATE KEY" not in line)
    logged = [p for p in (running_lab.build / ".ansible").rglob("*") if p.is_file()]
    assert logged, "no ansible-runner artifacts to search"
    for path in logged:
        text = path.read_text(errors="replace")
        assert "PRIVATE KEY" not in text and body[:40] not in text, f"key material in {path}"


def test_a_broken_config_stops_at_validation_and_the_server_keeps_its_last_good_config(running_lab):
    host = next(h for h in running_lab.lab.web if h.software == "nginx")
    site = running_lab.build / "hosts" / host.name / f"etc/nginx/conf.d/{host.fqdn}.conf"
    good = site.read_text()
    site.write_text(good + "not_a_directive on;\n")  # what a bad template would render
    try:
        with pytest.raises(DeployError) as failure:
            running_lab.up()
        message = str(failure.value)
        assert (f"{host.name}: task 'Deploy the rendered files, validate them with the server's own "
                f"checker and run the service' failed") in message
        assert "refused the rendered config" in message
        assert 'unknown directive "not_a_directive"' in message
        assert running_lab.exec(host.name, "cat", f"/etc/nginx/conf.d/{host.fqdn}.conf").stdout == good
        leftovers = running_lab.exec(host.name, "ls", "/etc/nginx/conf.d").stdout.split()
        assert leftovers == [f"{host.fqdn}.conf"]  # no backup copies left behind
        assert running_lab.exec(host.name, "systemctl", "is-active", "nginx").stdout.strip() == "active"
        assert running_lab.exec(host.name, "nginx", "-t").returncode == 0
        rendered = running_lab.rendered_certificate(host, "ecdsa")
        assert running_lab.served_certificate(host, "ecdsa", str(host.ipv4)) == rendered
    finally:
        site.write_text(good)
    assert deploy.changed(running_lab.up()) == 0


def test_a_killed_container_comes_back_with_the_next_up(running_lab):
    running_lab.engine.run("kill", running_lab.lab.container(running_lab.lab.role("resolver")))
    rows = {r.host.name: r for r in lifecycle.status(running_lab.lab, running_lab.engine)}
    assert rows["resolver"].state == "stopped"
    running_lab.up()
    assert_healthy(running_lab)
    test_hosts_resolve_through_the_lab_resolver_with_the_ad_flag(running_lab)


def test_an_interrupted_up_is_repaired_by_the_next_up(running_lab):
    lab = running_lab.lab
    apache = next(h for h in lab.web if h.software == "apache")
    running_lab.engine.remove(lab.container(apache))  # so this up has real work to do
    proc = subprocess.Popen([sys.executable, "-m", "labgen.cli", "up", "-c", str(running_lab.config),
                             "-o", str(running_lab.out)], stdout=subprocess.PIPE, text=True,
                            stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines = []
    for line in proc.stdout:  # wait until Ansible is deploying apache, then press Ctrl-C
        lines.append(line)
        if re.match(r"\s+apache\s+(ok|changed)\s", line):
            break
    os.killpg(proc.pid, signal.SIGINT)
    rest, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0, "".join(lines) + rest
    assert proc.returncode == 130 and "labgen: interrupted" in rest
    running_lab.up()
    assert_healthy(running_lab)
    assert running_lab.served_certificate(apache, "ecdsa", str(apache.ipv6)) == \
        running_lab.rendered_certificate(apache, "ecdsa")
    assert deploy.changed(running_lab.up()) == 0

"""The roles deploy to a real server over SSH too: here a container that runs sshd, reached from
this machine over the lab network with Ansible's ssh connection, as the README shows."""

from __future__ import annotations

import yaml

from labgen import deploy
from labgen.engine import LABEL, network_name

from labtest import run


def test_nginx_role_deploys_over_ssh(running_lab, tmp_path):
    lab, engine = running_lab.lab, running_lab.engine
    nginx = next(h for h in lab.web if h.software == "nginx")
    address, address6 = lab.ipv4_network[50], lab.ipv6_network[50]
    name = f"labgen-{lab.name}-sshweb"
    image = engine.run("container", "inspect", "--format", "{{.ImageName}}",
                       lab.container(nginx)).stdout.strip()
    key = tmp_path / "id_ed25519"
    assert run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)]).returncode == 0
    engine.run("run", "-d", "--name", name, "--network", network_name(lab), "--ip", str(address),
               "--ip6", str(address6), "--label", f"{LABEL}={lab.name}", "--systemd=always", image)
    try:
        engine.wait_booted(name)
        pub = key.with_suffix(".pub").read_text().strip()
        setup = engine.exec(name, "sh", "-c", f"install -d -m 700 /root/.ssh && echo '{pub}' > "
                            "/root/.ssh/authorized_keys && ssh-keygen -A && systemctl start ssh")
        assert setup.returncode == 0, setup.stderr
        # The inventory a sysadmin writes for a real server (README: "Deploying to real servers").
        inventory = tmp_path / "servers.yml"
        inventory.write_text(yaml.safe_dump({"all": {"children": {"nginx": {"hosts": {"nginx": {
            "ansible_host": str(address), "ansible_user": "root", "ansible_connection": "ssh",
            "ansible_ssh_private_key_file": str(key),
            "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
            "labgen_tree": "hosts/nginx"}}}}}}))
        extravars = {"labgen_build": str(running_lab.build.resolve())}
        first = deploy.run_playbook(inventory, tmp_path / "artifacts", extravars, log=lambda _: None)
        assert deploy.changed(first) > 0
        again = deploy.run_playbook(inventory, tmp_path / "artifacts", extravars, log=lambda _: None)
        assert deploy.changed(again) == 0

        assert engine.exec(name, "systemctl", "is-active", "nginx").stdout.strip() == "active"
        assert running_lab.served_certificate(nginx, "ecdsa", str(address6)) == \
            running_lab.rendered_certificate(nginx, "ecdsa")
        mode = engine.exec(name, "stat", "-c", "%a %U", f"/etc/ssl/labgen/private/{nginx.fqdn}.ecdsa.key")
        assert mode.stdout.split() == ["600", "root"]
    finally:
        engine.remove(name)

"""The host kinds registry (labgen/kinds): one record per kind that the image, the render, the
inventory, the sandbox, the lifecycle and the checks read; the checks import none of the
lifecycle, the classroom or the engine."""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

from labgen import image, includes, kinds, sandbox, vantage
from labgen.kinds import KINDS

PLAYBOOKS = Path(kinds.__file__).parents[1] / "playbooks"
CHECKS = Path(kinds.__file__).parents[1] / "checks"


def test_every_kind_has_its_group_vars_an_absolute_config_test_and_its_units_disabled_in_the_image():
    for kind in KINDS.values():
        assert (PLAYBOOKS / "group_vars" / f"{kind.role}.yml").is_file(), kind.name
        assert not kind.config_test or kind.config_test.format(prepare="").startswith("/"), kind.name
        assert set(kind.packages) <= set(image.PACKAGES), kind.name
        assert kind.change in ("reload", "restart"), kind.name
        assert all(tool.startswith("/") for tool in kind.tools), kind.name
    assert all(name in KINDS for name in kinds.WEB)  # every web server a lab file may name has its record
    units = {k.unit for k in KINDS.values() if k.unit}
    assert {"nginx", "apache2", "named", "unbound"} <= set(image.SERVICES)
    assert {"nginx", "apache2", "named", "unbound", "labgen-pebble"} == units  # pebble's is labgen's own


def test_the_image_key_moves_only_with_the_packages():
    """The image is cached by its package list and setup: the ACME CA and client (pebble,
    certbot) made one rebuild, the trust store of one (no public roots) another; a change of
    the registry alone must not."""
    assert image.package_key() == "e539facb5503"


def test_the_inventory_and_the_sandbox_read_the_kind(render_lab):
    lab, build = render_lab()
    inventory = yaml.safe_load((build / "inventory.yml").read_text())["all"]["children"]
    nginx = inventory["nginx"]["hosts"]["nginx"]
    assert (nginx["labgen_validate"], nginx["labgen_service"], nginx["labgen_change"]) == \
        (kinds.PREPARE + "/usr/sbin/nginx -t", "nginx", "reload")
    assert "labgen_enable" not in nginx and "labgen_commands" not in nginx
    apache = inventory["apache"]["hosts"]["apache"]
    assert apache["labgen_enable"]["/etc/apache2/sites-enabled"] == ["{{ labgen_fqdn }}"]
    assert apache["labgen_enable"]["/etc/apache2/mods-enabled"][:3] == ["ssl", "headers", "http2"]
    assert apache["labgen_disable"] == {"/etc/apache2/sites-enabled": ["000-default"]}
    assert inventory["client"]["hosts"]["client"]["labgen_commands"] == ["dig", "delv", "curl", "openssl", "ldns-dane"]
    assert "labgen_prepare" not in nginx  # nothing runs before nginx -t in a lab-CA lab
    assert inventory["resolver"]["hosts"]["resolver"]["labgen_change"] == "restart"
    assert inventory["client"]["hosts"]["client"]["labgen_validate"] == ""
    script = sandbox.check_script(KINDS["apache"], fqdn="apache.lab.example", modules=("ssl",))
    assert script.startswith("a2enmod -q ssl ") and script.endswith("&& /usr/sbin/apache2ctl configtest")
    assert includes.FOLDERS["authdns"] == ("/etc/bind",) and "parent" not in includes.FOLDERS
    assert vantage.tools("probe")[-1] == "/usr/bin/ldns-dane" and vantage.tools("client") == vantage.SHELL_TOOLS
    assert {"/usr/sbin/nginx", "/usr/sbin/apache2ctl", "/usr/bin/dig", "/usr/bin/systemctl", "/etc/ld.so.preload"} \
        <= set(vantage.all_tools())


def test_the_checks_import_neither_the_lifecycle_the_classroom_nor_the_engine():
    banned = {"labgen.lifecycle", "labgen.classroom", "labgen.engine", "labgen.exercises"}
    for path in CHECKS.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                name = ("labgen." if node.level else "") + (node.module or "")
                name = name.replace("labgen.checks.", "labgen.").replace("labgen..", "labgen.")
                names = [name] + [f"{name}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for found in names:
                assert not any(found == b or found.startswith(b + ".") for b in banned), f"{path.name}: {found}"


def test_the_playbooks_group_vars_are_the_kinds():
    """A sysadmin's inventory names groups only: the playbook's group_vars give each host its
    kind's role, config test, unit and change (written from the kinds; regenerate with
    kinds.group_vars() when a kind changes)."""
    folder = PLAYBOOKS / "group_vars"
    written = {p.stem: p.read_text() for p in folder.glob("*.yml")}
    assert written == kinds.group_vars(), "playbooks/group_vars is out of step with labgen/kinds"

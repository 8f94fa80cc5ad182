"""The parts of labgen up that need no containers: engine discovery, the containers.conf,
build staleness, the progress display, and the lint of the playbooks."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from labgen import cli, deploy, engine, lifecycle, tools
from labgen.errors import DeployError, EngineError, ToolError
from labgen.render import data_dir
from labgen.spec import load
from labtest import write_lab


def test_ansible_takes_a_few_workers_per_core_whatever_the_class_size(monkeypatch):
    monkeypatch.setattr(deploy.os, "cpu_count", lambda: 2)
    assert deploy._forks() == 10
    monkeypatch.setattr(deploy.os, "cpu_count", lambda: 64)
    assert deploy._forks() == deploy.MAX_FORKS


def test_a_missing_engine_says_how_to_install_it(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # no podman, no docker
    with pytest.raises(EngineError, match=r"podman is not installed: install it with 'apt-get install podman runc'"):
        engine.Engine("podman")
    config = write_lab(tmp_path, {"engine": "docker"})
    assert cli.main(["status", "-c", str(config)]) == 5
    assert "docker is not installed: install Docker Engine" in capsys.readouterr().err


def test_unknown_engine_on_the_command_line_is_bad_usage(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["up", "--engine", "lxc", "-c", str(write_lab(tmp_path, {}))])
    assert exit_.value.code == 2
    assert "invalid choice: 'lxc'" in capsys.readouterr().err


def test_containers_conf_keeps_ulimits_within_the_hard_limits(monkeypatch, tmp_path):
    monkeypatch.setenv("LABGEN_CACHE", str(tmp_path))
    limits = {engine.resource.RLIMIT_NOFILE: (1024, 20000), engine.resource.RLIMIT_NPROC: (100, 2000)}
    monkeypatch.setattr(engine.resource, "getrlimit", limits.__getitem__)
    text = engine.containers_conf().read_text()
    assert 'default_ulimits = ["nofile=20000:20000", "nproc=2000:2000"]' in text
    assert ('runtime = "runc"' in text) == bool(shutil.which("runc"))


def test_up_renders_only_when_the_build_is_missing_or_stale(tmp_path):
    config = write_lab(tmp_path, {"name": "stale"})
    out = tmp_path / "build"
    lab = load(config)
    assert lifecycle.ensure_build(lab, out)[1] == "rendered"
    assert lifecycle.ensure_build(lab, out)[1] == "up to date"
    later = lifecycle.dt.datetime.now(lifecycle.dt.timezone.utc) + lifecycle.RENDER_MAX_AGE
    assert lifecycle.ensure_build(lab, out, now=later)[1] == "rendered"  # signatures age
    config.write_text(config.read_text() + "http3: false\n")
    assert lifecycle.ensure_build(load(config), out)[1] == "rendered"


def _event(kind, host, task, **res):
    return {"event": kind, "event_data": {"host": host, "task": task, "res": res,
                                          "task_action": "ansible.builtin.copy"}}


def test_progress_prints_one_line_per_host_and_task_and_keeps_failures():
    lines = []
    progress = deploy.Progress(log=lines.append)
    progress.event(_event("runner_on_ok", "nginx", "Copy the files", changed=True))
    progress.event(_event("runner_on_skipped", "nginx", "Copy the keys"))
    progress.event(_event("runner_on_failed", "apache", "Validate the new config",
                          msg="non-zero return code", stderr="AH00526: Syntax error"))
    progress.event(_event("runner_on_ok", "ns1", "Copy the files"))
    assert lines == ["  nginx        changed   Copy the files",
                     "  apache       failed    Validate the new config",
                     "  ns1          ok        Copy the files"]
    assert progress.failures == [("apache", "Validate the new config",
                                  "non-zero return code: AH00526: Syntax error")]


def test_a_failed_loop_names_the_failed_items():
    res = {"msg": "One or more items failed", "results": [
        {"failed": False, "item": {"path": "a"}},
        {"failed": True, "item": {"path": "etc/x.conf"}, "msg": "Destination directory does not exist"}]}
    assert deploy._message(res) == "etc/x.conf Destination directory does not exist"


def test_deploy_error_exit_status_names_the_phase():
    assert DeployError.exit_code == 6 and EngineError.exit_code == 5


def test_ansible_lint_passes_on_the_playbooks():
    result = subprocess.run([tools.find("ansible-lint", "ansible-lint"), "--offline", "--profile", "production", "--nocolor",
                             str(data_dir("playbooks"))], capture_output=True, text=True,
                            cwd=data_dir("playbooks").parent)
    assert result.returncode == 0, result.stdout + result.stderr


def test_programs_installed_with_labgen_are_found_whatever_path_is(monkeypatch):
    monkeypatch.setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")  # a newcomer's shell: no venv
    assert tools.find("ansible-playbook", "ansible") == str(tools.own_bin() / "ansible-playbook")
    assert tools.search_path().split(":")[0] == str(tools.own_bin())


def test_a_missing_program_says_what_to_install(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ToolError) as err:
        tools.find("no-such-tool", "no-such-package")
    assert str(err.value) == (f"no-such-tool is not installed beside labgen ({tools.own_bin()}) nor "
                              f"on PATH: install it with '{tools.own_bin() / 'python'} -m pip "
                              f"install no-such-package'")


def test_the_build_folder_is_beside_the_lab_file_wherever_the_command_runs(tmp_path, monkeypatch,
                                                                           capsys):
    write_lab(tmp_path / "course", {"name": "here"})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert cli.main(["render", "-c", str(tmp_path / "course" / "lab.yml")]) == 0
    assert (tmp_path / "course" / "build" / "here" / "pki").is_dir()
    assert list(elsewhere.iterdir()) == []
    assert cli.main(["render", "-c", str(tmp_path / "course" / "lab.yml"), "-o", "out"]) == 0
    assert (elsewhere / "out" / "here" / "pki").is_dir()


def test_counts_are_words():
    assert [lifecycle.count(n, "change") for n in (0, 1, 2)] == ["0 changes", "1 change", "2 changes"]


def test_one_inventory_deploys_several_labs_each_host_with_its_own_build(render_lab, tmp_path):
    """A class is one ansible-playbook run: every student's hosts (named <lab>-<host>) and the
    lab root's, each with its lab's build folder, its manifest's name and its lab's variables;
    the kinds' groups hold them all and each lab is a group of its own."""
    import yaml

    first, one = render_lab({"name": "c-s01", "domain": "s01.class.example"}, out=tmp_path / "a")
    second, two = render_lab({"name": "c-s02", "domain": "s02.class.example"}, out=tmp_path / "b")
    remote = {"ansible_podman_extra_args": "--url ssh://root@10.9.0.22:22/run/podman/podman.sock"}
    path = deploy.engine_inventory([(one / "inventory.yml", one, "c-s01"), (two / "inventory.yml", two, "c-s02", remote)],
                                   tmp_path / "run", "podman")
    doc = yaml.safe_load(path.read_text())["all"]
    nginx = doc["children"]["nginx"]["hosts"]
    assert set(nginx) == {"c-s01-nginx", "c-s02-nginx"}
    assert nginx["c-s02-nginx"]["labgen_build"] == str(two.resolve())
    assert nginx["c-s02-nginx"]["labgen_manifest"] == "nginx" and nginx["c-s02-nginx"]["labgen_domain"] == "s02.class.example"
    assert nginx["c-s01-nginx"]["ansible_host"] == "labgen-c-s01-nginx"
    # a lab on another machine: its hosts' Podman connection goes there, the others' stays here
    assert nginx["c-s02-nginx"]["ansible_podman_extra_args"] == remote["ansible_podman_extra_args"]
    assert "ansible_podman_extra_args" not in nginx["c-s01-nginx"]
    assert set(doc["children"]["lab_c_s01"]["hosts"]) == {f"c-s01-{h.name}" for h in first.hosts}
    assert doc["vars"]["ansible_connection"] == "podman"
    # a single lab keeps its hosts' own names
    alone = yaml.safe_load(deploy.engine_inventory([(one / "inventory.yml", one, "")], tmp_path / "one",
                                                   "podman").read_text())["all"]
    assert set(alone["children"]["nginx"]["hosts"]) == {"nginx"}

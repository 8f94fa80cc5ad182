"""What `labgen up` moves aside from a server's include folders (the labgen_tree module's sweep),
on a folder tree of this machine: only what labgen does not own, into a dated folder, with a
replaced image link made again; rolled back when the server's checker refuses."""

from __future__ import annotations

import importlib.util
import os

import pytest

from labgen import deploy, includes
from labgen.render import data_dir


@pytest.fixture(scope="module")
def tree_module():
    path = data_dir("playbooks") / "library" / "labgen_tree.py"
    spec = importlib.util.spec_from_file_location("labgen_tree_module", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _apache(root):
    """An Apache folder as the image has it, after the role enabled ssl and the site."""
    etc = root / "etc/apache2"
    for folder in ("mods-available", "mods-enabled", "conf-available", "conf-enabled",
                   "sites-available", "sites-enabled"):
        (etc / folder).mkdir(parents=True)
    for name, text in (("ssl.load", "# Depends: mime socache_shmcb\nLoadModule ssl_module x\n"),
                       ("ssl.conf", ""), ("mime.load", ""), ("mime.conf", ""),
                       ("socache_shmcb.load", ""), ("rewrite.load", ""), ("dir.load", "")):
        (etc / "mods-available" / name).write_text(text)
    (etc / "conf-available/security.conf").write_text("ServerTokens Prod\n")
    (etc / "sites-available/www.conf").write_text("<VirtualHost *:443>\n")
    for folder, name in (("mods-enabled", "dir.load"), ("mods-enabled", "ssl.load"),
                         ("mods-enabled", "ssl.conf"), ("mods-enabled", "mime.load"),
                         ("mods-enabled", "mime.conf"), ("mods-enabled", "socache_shmcb.load"),
                         ("conf-enabled", "security.conf")):
        os.symlink(f"../{folder.replace('enabled', 'available')}/{name}", etc / folder / name)
    os.symlink("../sites-available/www.conf", etc / "sites-enabled/www.conf")
    image = {str(etc / "mods-enabled"): {"dir.load": {"link": "../mods-available/dir.load"}},
             str(etc / "conf-enabled"): {"security.conf": {"link": "../conf-available/security.conf"}},
             str(etc / "sites-enabled"): {}}
    enable = {str(etc / "mods-enabled"): ["ssl"], str(etc / "sites-enabled"): ["www"]}
    return etc, {"files": {}, "dirs": {}, "folders": image, "enable": enable}


def test_after_labgen_deploy_nothing_is_a_stray(tree_module, tmp_path):
    """The image's links, the role's modules with what they depend on, and its site."""
    _, params = _apache(tmp_path)
    assert tree_module.strays(params) == []


def test_strays_are_moved_aside_never_deleted_and_image_links_come_back(tree_module, tmp_path):
    etc, params = _apache(tmp_path)
    (etc / "conf-enabled/zz-local.conf").write_text("NoSuchDirective on\n")
    os.symlink("../mods-available/rewrite.load", etc / "mods-enabled/rewrite.load")
    (etc / "conf-enabled/security.conf").unlink()
    (etc / "conf-enabled/security.conf").write_text("ServerTokens Full\n")
    (etc / "sites-enabled/www.conf").unlink()
    os.symlink("/tmp/elsewhere.conf", etc / "sites-enabled/www.conf")  # the role's name, not its link
    found = tree_module.strays(params)
    assert [path for path, _ in found] == [str(etc / "conf-enabled/security.conf"),
                                           str(etc / "conf-enabled/zz-local.conf"),
                                           str(etc / "mods-enabled/rewrite.load"),
                                           str(etc / "sites-enabled/www.conf")]
    moved = tree_module.sweep(found, str(tmp_path / "backups"))
    stamp = os.listdir(tmp_path / "backups")
    assert len(stamp) == 1 and len(stamp[0]) == len("20261129T203000Z") and stamp[0].endswith("Z")
    assert oct((tmp_path / "backups").stat().st_mode & 0o777) == "0o700"
    aside = tmp_path / "backups" / stamp[0]
    assert (aside / str(etc / "conf-enabled/zz-local.conf").lstrip("/")).read_text() == "NoSuchDirective on\n"
    assert (aside / str(etc / "conf-enabled/security.conf").lstrip("/")).read_text() == "ServerTokens Full\n"
    assert os.readlink(aside / str(etc / "mods-enabled/rewrite.load").lstrip("/")) == "../mods-available/rewrite.load"
    assert not (etc / "conf-enabled/zz-local.conf").exists()
    assert not os.path.lexists(etc / "mods-enabled/rewrite.load")
    assert os.readlink(etc / "conf-enabled/security.conf") == "../conf-available/security.conf"
    assert os.readlink(etc / "sites-enabled/www.conf") == "../sites-available/www.conf"
    assert [m["path"] for m in moved] == [path for path, _ in found]
    assert tree_module.strays(params) == []  # a second sweep moves nothing

    tree_module.put_aside_back(moved)  # what a refusing checker gets: everything as it was
    assert (etc / "conf-enabled/zz-local.conf").read_text() == "NoSuchDirective on\n"
    assert (etc / "conf-enabled/security.conf").read_text() == "ServerTokens Full\n"
    assert os.readlink(etc / "sites-enabled/www.conf") == "/tmp/elsewhere.conf"
    assert len(tree_module.strays(params)) == 4


def test_the_manifest_s_files_and_an_image_file_as_the_image_has_it_are_owned(tree_module, tmp_path):
    conf_d = tmp_path / "etc/unbound/unbound.conf.d"
    conf_d.mkdir(parents=True)
    (conf_d / "remote-control.conf").write_text("remote-control:\n")
    (conf_d / "labgen.conf").write_text("server:\n")
    (conf_d / "sub").mkdir()
    import hashlib
    image = {str(conf_d): {"remote-control.conf": {
        "sha256": hashlib.sha256(b"remote-control:\n").hexdigest()}}}
    params = {"files": {str(conf_d / "labgen.conf"): {}}, "dirs": {}, "folders": image, "enable": {}}
    assert tree_module.strays(params) == [(str(conf_d / "sub"), None)]
    (conf_d / "remote-control.conf").write_text("remote-control:\n  control-enable: yes\n")
    assert [p for p, _ in tree_module.strays(params)] == [str(conf_d / "remote-control.conf"),
                                                          str(conf_d / "sub")]
    assert tree_module.strays({**params, "folders": {}}) == []  # no folders given: no sweep


def test_one_table_of_folders_per_server_kind():
    assert set(includes.FOLDERS) == {"nginx", "apache", "authdns", "resolver"}
    assert "/etc/apache2/conf-enabled" in includes.FOLDERS["apache"]
    assert "/etc/unbound/unbound.conf.d" in includes.FOLDERS["resolver"]
    pristine = {"/etc/apache2/conf-enabled": {"security.conf": {"link": "../conf-available/security.conf"}}}
    folders = includes.playbook_folders(pristine)
    assert folders["apache"]["/etc/apache2/conf-enabled"] == pristine["/etc/apache2/conf-enabled"]
    assert folders["nginx"]["/etc/nginx/conf.d"] == {}


def test_up_names_each_moved_file():
    lines = []
    progress = deploy.Progress(log=lines.append)
    progress.event({"event": "runner_on_ok", "event_data": {
        "task": "Deploy", "host": "apache", "res": {"changed": True, "moved": [
            {"path": "/etc/apache2/conf-enabled/zz-local.conf",
             "to": "/var/backups/labgen/20261129T203000Z/etc/apache2/conf-enabled/zz-local.conf"},
            {"path": "/etc/apache2/conf-enabled/\x1b[2J.conf", "to": "/var/backups/labgen/x"}]}}})
    assert lines[1] == ("  apache       moved     /etc/apache2/conf-enabled/zz-local.conf: labgen does "
                        "not own it; now /var/backups/labgen/20261129T203000Z/etc/apache2/"
                        "conf-enabled/zz-local.conf")
    assert "\x1b" not in lines[2] and "\\x1b[2J.conf" in lines[2]
    assert [m[0] for m in progress.moved] == ["apache", "apache"]


def test_a_backup_folder_made_a_link_is_not_followed(tree_module, tmp_path):
    """A student who points /var/backups/labgen at an include folder would have every stray moved
    back into it: the link goes, a private folder takes its place."""
    etc, params = _apache(tmp_path)
    (etc / "conf-enabled/zz-local.conf").write_text("NoSuchDirective on\n")
    backup = tmp_path / "backups"
    os.symlink(etc / "conf-enabled", backup)
    moved = tree_module.sweep(tree_module.strays(params), str(backup))
    assert not backup.is_symlink() and backup.is_dir()
    assert moved[0]["to"].startswith(str(backup) + "/") and os.listdir(etc / "conf-enabled") == ["security.conf"]


def test_the_deploy_makes_the_links_it_enables_removes_those_it_disables_and_can_undo_both(tree_module, tmp_path):
    """What Apache's a2enmod, a2ensite and a2dissite did before the checker: a module whose .load
    depends on others brings them, a link without its target (headers.conf) is not made, and a
    module enabled so asks for a restart."""
    etc, params = _apache(tmp_path)
    (etc / "mods-available/headers.load").write_text("LoadModule headers_module x\n")
    (etc / "sites-available/000-default.conf").write_text("<VirtualHost *:80>\n")
    os.symlink("../sites-available/000-default.conf", etc / "sites-enabled/000-default.conf")
    for name in ("ssl.load", "ssl.conf", "socache_shmcb.load"):
        (etc / "mods-enabled" / name).unlink()
    (etc / "sites-enabled/www.conf").unlink()
    params = {**params, "enable": {str(etc / "mods-enabled"): ["ssl", "headers"],
                                   str(etc / "sites-enabled"): ["www"]},
              "disable": {str(etc / "sites-enabled"): ["000-default"]}}
    todo = tree_module.relinks(params)
    assert sorted(os.path.relpath(path, etc) for path, _ in todo) == [
        "mods-enabled/headers.load", "mods-enabled/socache_shmcb.load", "mods-enabled/ssl.conf",
        "mods-enabled/ssl.load", "sites-enabled/000-default.conf", "sites-enabled/www.conf"]
    done = tree_module.relink(todo)
    assert os.readlink(etc / "mods-enabled/headers.load") == "../mods-available/headers.load"
    assert os.readlink(etc / "sites-enabled/www.conf") == "../sites-available/www.conf"
    assert not os.path.lexists(etc / "sites-enabled/000-default.conf")
    assert tree_module.new_module(done) and tree_module.relinks(params) == []
    assert tree_module.strays({**params, "disable": {}}) == []  # what it made is labgen's
    tree_module.unlink_back(done)  # a refusing checker: every link as it was
    assert os.readlink(etc / "sites-enabled/000-default.conf") == "../sites-available/000-default.conf"
    assert not os.path.lexists(etc / "mods-enabled/headers.load") and not os.path.lexists(etc / "sites-enabled/www.conf")
    site_only = tree_module.relink([(str(etc / "sites-enabled/www.conf"), "../sites-available/www.conf")])
    assert not tree_module.new_module(site_only)  # a site is a reload


def test_a_missing_command_is_named_and_a_present_one_passes(tree_module, monkeypatch):
    class Module:
        def __init__(self, commands):
            self.params = {"commands": commands}

        def fail_json(self, msg):
            raise RuntimeError(msg)

    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    tree_module.missing_commands(Module(["sh", "tar"]))
    with pytest.raises(RuntimeError) as err:
        tree_module.missing_commands(Module(["sh", "no-such-tool-x", "ldns-nope"]))
    assert str(err.value).startswith("this host lacks no-such-tool-x, ldns-nope, which the lab's exercises use")

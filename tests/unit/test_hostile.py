"""Hostile and broken lab files (issue 10): each is refused in one escaped line naming the key
the user wrote, or renders; render never replaces what it did not make, and an interrupt at any
step of the swap keeps the previous build and its keys."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from labgen import cli, render as render_mod
from labgen.errors import NotOwnedError, RenderError, SpecError
from labgen.spec import load, parse

ONE_LINE = "; a value is one line of printable text"
CONTACT_RULE = "is not a contact URI: use mailto:user@domain or https://host/path (RFC 9116)"
TOP_KEYS = ("caa, certificates, dane, dnssec, domain, engine, headers, hsts, http3, name, network, profile, "
            "security_txt, servers, target")
LONG_DOMAIN = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])  # 253 characters, valid DNS

BAD = [
    pytest.param({"network": {"ipv6": '2001:db8:10::%0 allow\n    domain-insecure: "lab.example"\n#x/64'}},
                 "lab.yml: network.ipv6: '2001:db8:10::%0 allow\\n    domain-insecure: "
                 f"\"lab.example\"\\n#x/64' contains a line break (U+000A){ONE_LINE}",
                 id="ipv6-zone-id-injection"),
    pytest.param({"network": {"ipv6": "2001:db8:10::%eth0/64"}},
                 "lab.yml: network.ipv6: '2001:db8:10::%eth0/64' is not a subnet in CIDR notation",
                 id="ipv6-zone-id"),
    pytest.param({"network": {"ipv4": "198.51.100.0/24 ;"}},
                 "lab.yml: network.ipv4: '198.51.100.0/24 ;' is not a subnet in CIDR notation",
                 id="ipv4-trailing"),
    pytest.param({"name": "demo", "fo\x1b[2J\x1b]0;t\x07\no": 1},
                 "lab.yml: 'fo\\x1b[2J\\x1b]0;t\\x07\\no': unknown key; known keys: " + TOP_KEYS,
                 id="key-terminal-escapes"),
    pytest.param({"domain": "lab\u202eelpmaxe"},
                 f"lab.yml: domain: 'lab\\u202eelpmaxe' contains an invisible formatting character "
                 f"(U+202E){ONE_LINE}", id="domain-rlo"),
    pytest.param({"name": "a\x00"},
                 f"lab.yml: name: 'a\\x00' contains a control character (U+0000){ONE_LINE}",
                 id="name-nul"),
    pytest.param({"name": "a\u2028b"},
                 f"lab.yml: name: 'a\\u2028b' contains a line break (U+2028){ONE_LINE}",
                 id="name-line-separator"),
    pytest.param({"caa": {"iodef": "mailto:a\x85b@lab.example"}},
                 f"lab.yml: caa.iodef: 'mailto:a\\x85b@lab.example' contains a line break (U+0085){ONE_LINE}",
                 id="iodef-nel"),
    pytest.param({"domain": "lab.example\u200bx"},
                 "lab.yml: domain: 'lab.example\\u200bx' contains an invisible formatting character "
                 f"(U+200B){ONE_LINE}", id="domain-zwsp"),
    pytest.param({"domain": "ｌａｂ.example"},
                 "lab.yml: domain: 'ｌａｂ' would become 'lab' in DNS (IDNA mapping); write 'lab' if "
                 "that is meant", id="domain-idna-mapped"),
    pytest.param({"name": "a" * 1_000_000},
                 f"lab.yml: name: '{'a' * 80}'... (1000000 characters) is too long: a value has at "
                 "most 1024 characters", id="value-1mb"),
    pytest.param({"headers": {"X-A": "b" * 2000}},
                 f"lab.yml: headers.X-A: '{'b' * 80}'... (2000 characters) is too long: a value has "
                 "at most 1024 characters", id="header-value-long"),
    pytest.param({"domain": LONG_DOMAIN},
                 f"lab.yml: domain: '{LONG_DOMAIN[:80]}'... (253 characters) is too long: labgen adds "
                 "names such as _443._tcp.apache.<domain>, so the domain may have at most 236 "
                 "characters here", id="domain-253-blames-domain"),
    pytest.param({"domain": "x" * 40 + "." + "y" * 63 + "." + "z" * 63 + "." + "w" * 63,
                  "servers": [{"name": "s" * 63, "software": "nginx"}]},
                 f"lab.yml: servers[0].name: '{'s' * 63}' is too long for the domain: the TLSA name "
                 f"_443._tcp.{'s' * 63}.{'x' * 40}.{'y' * 63}.{'z' * 63}.{'w' * 63} would be longer "
                 "than 253 characters (RFC 1035)", id="server-name-blamed-when-written"),
    pytest.param({"caa": {"iodef": "mailto:a@."}}, f"lab.yml: caa.iodef: 'mailto:a@.' {CONTACT_RULE}",
                 id="iodef-mailto-empty-host"),
    pytest.param({"caa": {"iodef": "https://..:99999/"}},
                 f"lab.yml: caa.iodef: 'https://..:99999/' {CONTACT_RULE}", id="iodef-https-dots-port"),
    pytest.param({"caa": {"iodef": "https://lab.example:0/"}},
                 f"lab.yml: caa.iodef: 'https://lab.example:0/' {CONTACT_RULE}", id="iodef-port-0"),
    pytest.param({"caa": {"iodef": "mailto:.a@lab.example"}},
                 f"lab.yml: caa.iodef: 'mailto:.a@lab.example' {CONTACT_RULE}", id="iodef-leading-dot"),
    pytest.param({"security_txt": {"contact": ["https://lab:443/"]}},
                 f"lab.yml: security_txt.contact: 'https://lab:443/' {CONTACT_RULE}",
                 id="contact-single-label-host"),
    pytest.param({"hsts": {"max_age": 0}},
                 "lab.yml: hsts.max_age: 0 is out of range: the modern profile allows 63072000 "
                 "(its hsts_min_age) to 2147483647 seconds", id="hsts-zero"),
    pytest.param({"name": "demo", 5: "x"}, "lab.yml: 5: a key must be a text, got the number 5",
                 id="number-key"),
    pytest.param("root:*:19000:0:99999:7:::", "lab.yml: (top level): must be a mapping of keys to "
                 "values, got a text", id="top-level-text-not-echoed"),
    pytest.param({"root:secret-hash:19000": None, "daemon:*:19000": None},
                 f"lab.yml: (top level): is not a lab file: none of its keys is a lab file key ({TOP_KEYS})",
                 id="no-lab-key-not-echoed"),
]


@pytest.mark.parametrize(("data", "message"), BAD)
def test_hostile_value_is_refused_in_one_escaped_line(data, message):
    with pytest.raises(SpecError) as excinfo:
        parse(data, "lab.yml")
    assert str(excinfo.value) == message
    assert str(excinfo.value).isprintable() and len(str(excinfo.value)) < 600


BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(  # 9**12 strings if expanded
    f"{b}: &{b} [{', '.join(['*' + a] * 9)}]\n" for a, b in zip("abcdefghijkl", "bcdefghijklm"))

YAML = [
    pytest.param("[a, b]: 1\n", "line 1, column 1: not valid YAML: a key must be a text, not a list "
                 "or a mapping", id="list-key"),
    pytest.param("{a: 1}: 1\n", "line 1, column 1: not valid YAML: a key must be a text, not a list "
                 "or a mapping", id="mapping-key"),
    pytest.param("name: " + "[" * 100_000 + "\n", "line 1, column 26: not valid YAML: nested deeper "
                 "than 20 levels", id="deep-nesting"),
    pytest.param(BOMB + "headers: {X-A: *m}\n", "line 13, column 12: not valid YAML: more than 100 "
                 "aliases (*name)", id="billion-laughs"),
    pytest.param("a: &a [x, x]\nb: &b [*a, *a]\nheaders: {X-A: *b}\n", "headers.X-A: a list is not an "
                 "allowed header value: printable ASCII without quotes, backslash, $, %, #, braces or "
                 "leading/trailing spaces", id="alias-in-echoed-field"),
    pytest.param("name: demo\nfoo\x1b[2J: 1\n", "character 15: not valid YAML: U+001B is not allowed "
                 "in a YAML file", id="escape-in-file"),
    pytest.param("name: !!python/object:os.system x\n", "line 1, column 7: not valid YAML: could not "
                 "determine a constructor for the tag 'tag:yaml.org,2002:python/object:os.system'",
                 id="python-tag"),
    pytest.param("name: demo\nname: x\x85\n", "line 2, column 1: not valid YAML: key 'name' is given "
                 "twice", id="duplicate-key"),
    pytest.param("x" * 300_000, "is larger than 256 KiB; a lab file is a few kB", id="too-large"),
    pytest.param(b"name: \xff\n", "is not UTF-8 text (byte 7)", id="not-utf8"),
]


@pytest.mark.parametrize(("text", "message"), YAML)
def test_hostile_yaml_is_refused_in_one_line(text, message, tmp_path):
    path = tmp_path / "lab.yml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    with pytest.raises(SpecError) as excinfo:
        load(path)
    assert str(excinfo.value) == f"{path}: {message}"


def test_merge_keys_are_supported(tmp_path):
    path = tmp_path / "lab.yml"
    path.write_text("hsts: &h {max_age: 63072001, include_subdomains: true}\n"
                    "caa: {<<: {issuer: ca.lab.example}, iodef: null}\n", encoding="utf-8")
    lab = load(path)
    assert (lab.hsts.max_age, lab.caa.issuer, lab.caa.iodef) == (63072001, "ca.lab.example", None)


@pytest.mark.parametrize("special", ["/dev/zero", "/dev/null", "folder"])
def test_special_files_are_refused(special, tmp_path):
    path = tmp_path if special == "folder" else Path(special)
    kind = "a folder" if special == "folder" else "a special file (device, pipe or socket)"
    with pytest.raises(SpecError) as excinfo:
        load(path)
    assert str(excinfo.value) == f"{path}: is {kind}, not a lab file"


def test_a_link_to_a_file_that_is_no_lab_file_is_not_echoed(tmp_path):
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$secret-hash:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n")
    (tmp_path / "lab.yml").symlink_to(secret)
    with pytest.raises(SpecError) as excinfo:
        load(tmp_path / "lab.yml")
    assert "secret" not in str(excinfo.value) and "daemon" not in str(excinfo.value)


def test_a_63_character_server_name_and_a_long_domain_render(render_lab):
    lab, build = render_lab({"domain": "d" * 50 + ".example",
                             "servers": [{"name": "s" * 63, "software": "nginx"}]})
    assert (build / "pki" / f"{'s' * 63}.ecdsa.crt").is_file()


def cli_run(args, capsys):
    code = cli.main(args)
    captured = capsys.readouterr()
    return code, captured.err


def test_init_refuses_a_file_a_folder_and_an_unwritable_place(tmp_path, capsys):
    afile = tmp_path / "file"
    afile.write_text("x")
    assert cli_run(["init", str(afile)], capsys) == (2, f"labgen: error: {afile}: is a file, not a "
                                                        "folder for lab.yml\n")
    (tmp_path / "dir" / "lab.yml").mkdir(parents=True)
    assert cli_run(["init", "--force", str(tmp_path / "dir")], capsys) == (
        2, f"labgen: error: {tmp_path / 'dir' / 'lab.yml'}: is a folder or a link, not a lab file; "
           "not overwritten\n")
    assert cli_run(["init", "/proc/labgen-test"], capsys) == (
        2, "labgen: error: /proc/labgen-test/lab.yml: cannot write it: No such file or directory\n")


# ---------------------------------------------------------------- the build folder


def ca_and_ds(build: Path) -> tuple[bytes, str]:
    ds = [line for line in (build / "SUMMARY.txt").read_text().splitlines() if " DS " in line]
    return (build / "pki" / "ca.crt").read_bytes(), ds[0]


@pytest.mark.parametrize("kind", ["folder", "file", "link"])
def test_render_refuses_to_replace_what_it_did_not_make(kind, render_lab, tmp_path, capsys):
    out = tmp_path / "build"
    final = out / "demo"
    out.mkdir()
    if kind == "folder":
        (final / "notes").mkdir(parents=True)
        (final / "important.txt").write_text("keep me")
    elif kind == "file":
        final.write_text("keep me")
    else:
        (tmp_path / "elsewhere").mkdir()
        final.symlink_to(tmp_path / "elsewhere")
    lab_file = tmp_path / "lab.yml"
    lab_file.write_text("name: demo\n")
    code, err = cli_run(["render", "-c", str(lab_file), "-o", str(out)], capsys)
    assert (code, err) == (2, f"labgen: error: render failed: {final} exists and was not made by "
                              "labgen (no .labgen-build marker); move it away or render into another "
                              "folder with -o\n")
    if kind == "folder":
        assert (final / "important.txt").read_text() == "keep me" and (final / "notes").is_dir()
    elif kind == "file":
        assert final.read_text() == "keep me"
    assert sorted(p.name for p in out.iterdir()) == ["demo"]


def test_a_build_is_marked_and_a_marked_build_is_replaced(render_lab):
    _, build = render_lab()
    assert (build / render_mod.MARKER).is_file()
    _, again = render_lab()
    assert again == build


@pytest.mark.parametrize("step", ["start", "old-folder-made", "previous-moved-aside", "new-moved-in",
                                  "done"])
@pytest.mark.parametrize("signal_like", [KeyboardInterrupt, SystemExit])
def test_an_interrupt_at_any_step_of_the_swap_keeps_the_previous_build(
        step, signal_like, render_lab, monkeypatch):
    _, build = render_lab()
    before = ca_and_ds(build)
    steps = []

    def hook(name):
        steps.append(name)
        if name == step:
            raise signal_like()

    monkeypatch.setattr(render_mod, "_step", hook)
    with pytest.raises(signal_like):
        render_lab()
    assert step in steps
    assert ca_and_ds(build) == before  # a complete build, old or new, with the same keys
    assert (build / render_mod.MARKER).is_file() and (build / "inventory.yml").is_file()
    monkeypatch.setattr(render_mod, "_step", lambda name: None)
    _, build = render_lab()
    assert ca_and_ds(build) == before
    assert sorted(p.name for p in build.parent.iterdir()) == ["demo"]


def test_a_kill_between_the_renames_is_repaired_by_the_next_render(render_lab, tmp_path):
    _, build = render_lab()
    before = ca_and_ds(build)
    # What SIGKILL after the first rename leaves: the build moved aside, a staging folder.
    aside = build.parent / ".demo.old-killed"
    aside.mkdir()
    os.rename(build, aside / "build")
    (build.parent / ".demo.render-killed" / "pki").mkdir(parents=True)
    _, build = render_lab()
    assert ca_and_ds(build) == before  # the previous keys, not new ones: the DS is unchanged
    assert sorted(p.name for p in build.parent.iterdir()) == ["demo"]


def test_a_corrupt_kept_key_stops_the_render_naming_the_file(render_lab, tmp_path, capsys):
    _, build = render_lab()
    (build / "pki" / "ca.key").write_text("garbage")
    with pytest.raises(RenderError) as excinfo:
        render_lab()
    assert str(excinfo.value) == (f"{build / 'pki' / 'ca.key'}: cannot load it (not a valid PEM "
                                  "file); restore it, or delete it to make a new one (its DS or TLSA "
                                  "records then change)")
    assert RenderError.exit_code == 3
    assert sorted(p.name for p in build.parent.iterdir()) == ["demo"]


def test_modes_do_not_depend_on_the_umask(render_lab, tmp_path):
    old = os.umask(0)
    try:
        _, build = render_lab()
    finally:
        os.umask(old)
    manifest = (build / "manifests" / "nginx.json").read_text()
    assert '"/etc/ssl/labgen": "0755"' in manifest and '"/var/www/labgen": "0755"' in manifest
    for path in build.rglob("*"):
        mode = stat.S_IMODE(path.lstat().st_mode)
        assert not mode & 0o022, f"{path} is {mode:04o}"


def test_not_owned_is_a_usage_error():
    assert NotOwnedError.exit_code == 2


def test_sigterm_is_handled_like_ctrl_c(tmp_path, monkeypatch, capsys):
    import signal

    lab_file = tmp_path / "lab.yml"
    lab_file.write_text("name: demo\n")

    def terminated(*args, **kwargs):
        signal.raise_signal(signal.SIGTERM)  # delivered to labgen's handler, not the default

    before = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(cli, "render", terminated)
    code, err = cli_run(["render", "-c", str(lab_file), "-o", str(tmp_path / "b")], capsys)
    assert (code, err) == (130, cli.INTERRUPTED + "\n")
    assert signal.getsignal(signal.SIGTERM) == before

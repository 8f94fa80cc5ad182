"""The real servers accept what labgen rendered, for each target: nginx -t, apache2ctl
configtest, named-checkconf -z and unbound-checkconf of that very Debian release.

Debian 12 is this machine's own packages (the rendered tree laid over /); Debian 13 is the
lab's root file system made with debootstrap. Nothing on the machine is changed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from labgen import sandbox, signing
from labgen import kinds
from labgen.capabilities import TARGETS, version_tuple
from labgen.kinds import apache

PROFILES = ["modern", "intermediate"]


@pytest.fixture(params=["debian12", "debian13"])
def target_root(request):
    """(target name, root file system that has that target's packages)."""
    if request.param == "debian13":
        return request.param, request.getfixturevalue("debian13_root")
    return request.param, Path("/")


def check(root: Path, build: Path, host, lab) -> tuple[int, str]:
    result = sandbox.run_over(root, build / "hosts" / host.name,
                              sandbox.check_script(kinds.of(host), fqdn=host.fqdn, modules=apache.MODULES,
                                                   prepare=kinds.of(host).prepare(lab)))
    return result.returncode, result.stdout + result.stderr


def test_the_target_preset_matches_the_real_versions(target_root, tmp_path):
    name, root = target_root
    out = sandbox.run_over(root, tmp_path, "nginx -v 2>&1; openssl version; apache2 -v")
    assert out.returncode == 0, out.stderr
    nginx = re.search(r"nginx/(\d+\.\d+)", out.stdout).group(1)
    openssl = re.search(r"OpenSSL (\d+\.\d+)", out.stdout).group(1)
    preset = TARGETS[name]
    assert version_tuple(nginx) == version_tuple(preset["nginx"])[:2], out.stdout
    assert version_tuple(openssl) == version_tuple(preset["openssl"])[:2], out.stdout


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("dnssec", [{"denial": "nsec"}, {"algorithm": "ED25519", "denial": "nsec3"},
                                    {"signer": "bind", "pace": "lesson", "denial": "nsec3"},
                                    {"signer": "bind", "keys": "csk", "algorithm": "ED25519"}],
                         ids=["ecdsa-nsec", "ed25519-nsec3", "bind-ksk-zsk-nsec3", "bind-csk"])
def test_every_server_accepts_its_rendered_config(render_lab, target_root, profile, dnssec):
    name, root = target_root
    lab, build = render_lab({"profile": profile, "target": name, "dnssec": dnssec,
                             "dane": {"ca": profile == "intermediate"}})
    for host in lab.hosts:
        if not kinds.of(host).config_test:  # the client and the probe run no server
            continue
        code, output = check(root, build, host, lab)
        assert code == 0, f"{name} {host.software or host.role} refused the rendered config:\n{output}"
        if host.software == "nginx":
            assert "test is successful" in output
        if host.software == "apache":
            assert "Syntax OK" in output
        if host.role == "parent":  # the parent zone, signed online too
            assert f"zone {lab.parent.domain}/IN: loaded serial" in output
        if host.role == "authdns" and signing.online(lab):  # the unsigned copy BIND signs
            assert f"zone {lab.domain}/IN: loaded serial" in output and "dnssec-policy" in \
                (build / "hosts" / host.name / "etc/bind/named.conf").read_text()
        elif host.role == "authdns":
            assert f"zone {lab.domain}/IN: loaded serial" in output and "(DNSSEC signed)" in output
        if host.role == "resolver":
            assert "no errors" in output


def test_debian12_nginx_refuses_a_config_rendered_for_debian13(render_lab):
    """The version gates matter: Debian 12's nginx 1.22 does not know 'http2 on' or QUIC."""
    lab, build = render_lab({"target": "debian13"})
    code, output = check(Path("/"), build, lab.role("web"), lab)
    assert code != 0 and re.search(r'unknown directive "http2"|invalid parameter "quic"', output), output


@pytest.mark.parametrize("software,bad", [
    ("nginx", ("etc/nginx/conf.d/nginx.lab.example.conf", "ssl_protocols TLSv1.3;", "ssl_protocols TLSv9;")),
    ("apache", ("etc/apache2/sites-available/apache.lab.example.conf", "SSLProtocol -all",
                "SSLProtocol -all +TLSv9")),
])
def test_the_checkers_read_the_rendered_files(render_lab, debian13_root, software, bad):
    """A broken directive in the rendered tree makes the real checker fail: it reads our file."""
    lab, build = render_lab()
    host = next(h for h in lab.web if h.software == software)
    path, old, new = bad
    conf = build / "hosts" / host.name / path
    conf.write_text(conf.read_text().replace(old, new, 1))
    code, output = check(debian13_root, build, host, lab)
    assert code != 0 and "TLSv9" in output, output


def test_a_students_name_server_and_resolver_in_a_class_accept_their_config(target_root, tmp_path):
    """In a class a student's ns1 notifies the lab root and lets it transfer the zone, and the
    resolver trusts the root's DS and forwards the class's zones to it."""
    from labgen.classroom.rootzone import render_class
    from labgen.classroom.spec import parse_class

    name, root = target_root
    klass = parse_class({"name": "c", "students": 2, "lab": {"target": name}})
    folder = render_class(klass, tmp_path)
    for student in klass.students:
        build = folder / "students" / student.lab.name
        for host in (student.lab.role("authdns"), student.lab.role("resolver")):
            code, output = check(root, build, host, student.lab)
            assert code == 0, f"{name} {host.role} of {student.name} refused its class config:\n{output}"

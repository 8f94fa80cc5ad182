"""Render behaviour without external tools: kept keys, identical re-renders, atomicity, modes."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import pytest
import yaml

from labtest import FIXED_NOW
from labgen import render as render_mod
from labgen.errors import RenderError


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(folder)): (p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
            for p in sorted(folder.rglob("*")) if p.is_file()}


def records(build: Path) -> list[str]:
    """The DS and TLSA lines of the summary."""
    return [line for line in (build / "SUMMARY.txt").read_text().splitlines()
            if " DS " in line or " TLSA " in line]


def test_rerender_keeps_keys_tlsa_and_ds(render_lab, tmp_path):
    lab, build = render_lab({"profile": "intermediate", "dane": {"ca": True}})
    before = snapshot(build / "pki")
    first = records(build)
    assert len([r for r in first if " TLSA " in r]) == 2 * 3  # ECDSA + RSA + CA, per web host
    _, build = render_lab({"profile": "intermediate", "dane": {"ca": True}})
    assert records(build) == first
    assert {k: v for k, v in snapshot(build / "pki").items() if k.endswith(".key")} == \
        {k: v for k, v in before.items() if k.endswith(".key")}


def test_same_day_rerender_is_byte_identical(render_lab):
    _, build = render_lab(now=FIXED_NOW)
    first = snapshot(build)
    _, build = render_lab(now=FIXED_NOW + dt.timedelta(hours=3))
    assert snapshot(build) == first


def test_a_changed_algorithm_makes_a_new_dnssec_key_but_keeps_tls_keys(render_lab):
    _, build = render_lab()
    ds, tlsa = records(build)[0], records(build)[1:]
    _, build = render_lab({"dnssec": {"algorithm": "ED25519"}})
    assert records(build)[0] != ds and " DS " in records(build)[0] and " 15 2 " in records(build)[0]
    assert records(build)[1:] == tlsa


def test_secrets_are_private(render_lab):
    _, build = render_lab({"profile": "intermediate"})
    # BIND's K*.key holds the public DNSKEY; its secret half is the .private beside it.
    keys = [p for p in build.rglob("*.key") if not p.name.startswith("K")] + list(build.rglob("*.private"))
    # pki: CA, 2 DNSSEC, 2x2 server keys; hosts: 2x2 server keys, the zone key on ns1
    assert len(keys) == 3 + 2 * 2 + 2 * 2 + 1
    for key in keys:
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    assert stat.S_IMODE((build / "pki").stat().st_mode) == 0o700
    for p in build.rglob("*"):
        if p.is_file() and p not in keys:
            assert b"PRIVATE KEY" not in p.read_bytes() and b"PrivateKey" not in p.read_bytes(), p


def test_a_failed_render_leaves_the_previous_build_untouched(render_lab, monkeypatch, tmp_path):
    _, build = render_lab()
    before = snapshot(build)

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(render_mod, "inventory", broken)
    with pytest.raises(RenderError, match="No space left on device"):
        render_lab({"profile": "intermediate"})
    assert snapshot(build) == before
    assert sorted(p.name for p in build.parent.iterdir()) == ["demo"]  # no staging left behind


def test_inventory_lists_every_host_by_role(render_lab):
    lab, build = render_lab()
    inv = yaml.safe_load((build / "inventory.yml").read_text())
    groups = inv["all"]["children"]
    assert set(groups) == {"authdns", "resolver", "client", "probe", "nginx", "apache"}
    assert groups["nginx"]["hosts"]["nginx"]["ansible_host"] == "labgen-demo-nginx"
    assert groups["apache"]["hosts"]["apache"]["labgen_enable"]["/etc/apache2/mods-enabled"][:3] == ["ssl", "headers", "http2"]
    for host in lab.hosts:
        hostvars = groups[host.software or host.role]["hosts"][host.name]
        assert (build / hostvars["labgen_tree"]).is_dir()
        assert hostvars["labgen_ipv6"] == str(host.ipv6)


@pytest.mark.parametrize("target,has_new", [("debian13", True), ("debian12", False)])
def test_version_gates_follow_the_target(render_lab, target, has_new):
    lab, build = render_lab({"target": target})
    site = (build / "hosts/nginx/etc/nginx/conf.d/nginx.lab.example.conf").read_text()
    apache = (build / "hosts/apache/etc/apache2/sites-available/apache.lab.example.conf").read_text()
    assert ("http2 on;" in site) is has_new
    assert ("listen 0.0.0.0:443 ssl http2;" in site) is not has_new
    assert ("quic reuseport" in site) is has_new
    assert ("X25519MLKEM768" in site) is has_new and ("X25519MLKEM768" in apache) is has_new
    zone = (build / "dns/db.lab.example").read_text()
    assert ('alpn="h3,h2"' in zone) is has_new


def test_profile_values_reach_both_servers(render_lab):
    lab, build = render_lab({"profile": "intermediate", "hsts": {"max_age": 63072001}})
    site = (build / "hosts/nginx/etc/nginx/conf.d/nginx.lab.example.conf").read_text()
    apache = (build / "hosts/apache/etc/apache2/sites-available/apache.lab.example.conf").read_text()
    p = lab.profile
    assert f"ssl_protocols {' '.join(p.tls_versions)};" in site
    assert f"SSLProtocol -all {' '.join('+' + v for v in p.tls_versions)}" in apache
    for text in (site, apache):
        assert ":".join(p.ciphers["openssl"]) in text
        assert ":".join(p.ciphersuites) in text
        assert ":".join(p.signature_algorithms) in text
        assert '"max-age=63072001; includeSubDomains"' in text
        for name, value in lab.headers:
            assert f'{name} "{value}"' in text

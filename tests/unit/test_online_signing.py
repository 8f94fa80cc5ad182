"""BIND signing the zone (dnssec.signer: bind): the lab file's pace and timings, and what
render gives ns1 (policy, keys with their state, the seed script). The live lab runs it in
tests/integration/test_key_rollover.py."""

from __future__ import annotations

import stat
import subprocess

import dns.dnssec
import dns.rdata
import pytest
import yaml

from labgen import signing
from labgen.errors import SpecError
from labgen.pace import PACES
from labgen.spec import parse

BIND = {"dnssec": {"signer": "bind", "pace": "lesson"}}


def ns1(build):
    return build / "hosts" / "ns1"


def test_the_default_is_labgens_signing_at_production_pace():
    lab = parse({}, "lab.yml")
    assert (lab.dnssec.signer, lab.dnssec.keys, lab.dnssec.pace.name) == ("labgen", "ksk-zsk", "production")
    assert lab.dnssec.pace.ttl == 3600 and lab.dnssec.pace.negative_ttl == 300


def test_a_timing_changes_one_value_of_the_pace():
    lab = parse({"dnssec": {"pace": "lesson", "timings": {"dnskey_ttl": 120}}}, "lab.yml")
    assert lab.dnssec.pace.dnskey_ttl == 120 and lab.dnssec.pace.ttl == PACES["lesson"].ttl


@pytest.mark.parametrize("dnssec,message", [
    ({"signer": "knot"}, "lab.yml: dnssec.signer: 'knot' is not one of labgen, bind"),
    ({"keys": "zsk"}, "lab.yml: dnssec.keys: 'zsk' is not one of ksk-zsk, csk"),
    ({"pace": "fast"}, "lab.yml: dnssec.pace: 'fast' is not one of production, lesson, test"),
    ({"timings": {"dnskey_ttl": "60"}}, "lab.yml: dnssec.timings.dnskey_ttl: must be a whole number, got the text '60'"),
    ({"timings": {"dnskey_ttl": 0}}, "lab.yml: dnssec.timings.dnskey_ttl: 0 is out of range: 1 to 31536000 seconds"),
    ({"timings": {"ttl_max": 60}}, "lab.yml: dnssec.timings.ttl_max: unknown key"),
    ({"pace": "lesson", "timings": {"signatures_refresh": 540}},
     "lab.yml: dnssec.timings.signatures_refresh: 540 s must be under 90 % of signatures_validity (600 s), "
     "as BIND requires"),
    ({"pace": "lesson", "timings": {"negative_ttl": 120}},
     "lab.yml: dnssec.timings.negative_ttl: 120 s is longer than ttl (60 s)"),
])
def test_bad_signing_settings_name_the_key(dnssec, message):
    with pytest.raises(SpecError) as excinfo:
        parse({"dnssec": dnssec}, "lab.yml")
    assert str(excinfo.value).startswith(message)


def test_every_preset_is_one_bind_accepts():
    for pace in PACES.values():
        assert pace.problems() == [], pace.name


def test_ns1_gets_the_policy_the_keys_with_their_state_and_the_seed(render_lab):
    lab, build = render_lab(BIND)
    conf = (ns1(build) / "etc/bind/named.conf").read_text()
    assert 'dnssec-policy "labgen"' in conf and "inline-signing yes;" in conf
    for name, value in signing.policy(lab):
        assert f"    {name} {value};\n" in conf
    assert "ksk lifetime unlimited" in conf and "zsk lifetime unlimited" in conf
    assert f'file "{signing.work_zone(lab.domain)}";' in conf
    keys = sorted((ns1(build) / "etc/bind/labgen/keys").iterdir())
    assert [k.suffix for k in keys] == [".key", ".private", ".state"] * 2
    for key in keys:
        mode = stat.S_IMODE(key.stat().st_mode)
        assert mode == (0o600 if key.suffix == ".private" else 0o644), key.name
    states = {k.stem: k.read_text() for k in keys if k.suffix == ".state"}
    assert sorted("KSK: yes" in s for s in states.values()) == [False, True]
    assert all("DNSKEYState: omnipresent" in s and "Lifetime: 0" in s for s in states.values())
    seed = ns1(build) / signing.SEED.lstrip("/")
    assert stat.S_IMODE(seed.stat().st_mode) == 0o755 and signing.WORK_DIR in seed.read_text()
    # The unsigned zone is what ns1 gets; the signed preview in build/dns has both keys.
    source = (ns1(build) / "etc/bind/labgen/db.lab.example").read_text()
    assert "RRSIG" not in source and " 60 IN SOA " in source
    preview = (build / "dns" / "db.lab.example").read_text()
    assert preview.count(" DNSKEY 256 3 13 ") == 1 and preview.count(" DNSKEY 257 3 13 ") == 1
    ns1_vars = yaml.safe_load((build / "inventory.yml").read_text())["all"]["children"]["authdns"]["hosts"]["ns1"]
    # The seed runs first: the host's labgen_prepare, which the kind's labgen_validate begins with.
    assert ns1_vars["labgen_prepare"] == f"{signing.SEED} && "
    assert ns1_vars["labgen_validate"] == "{{ labgen_prepare | default('') }}/usr/bin/named-checkconf -z /etc/bind/named.conf"
    assert "ns1" in yaml.safe_load((build / "inventory.yml").read_text())["all"]["children"]["authdns"]["hosts"]
    assert ns1_vars["labgen_change"] == "restart"


def test_the_ds_names_the_ksk_and_a_rerender_keeps_both_keys(render_lab):
    _, build = render_lab(BIND)
    ds = dns.rdata.from_text("IN", "DS", (build / "dns" / "lab.example.ds").read_text().split(" DS ")[1])
    keys = {k.name: k.read_text() for k in (ns1(build) / "etc/bind/labgen/keys").glob("*.key")}
    ksk = next(text for text in keys.values() if " DNSKEY 257 " in text)
    dnskey = dns.rdata.from_text("IN", "DNSKEY", ksk.split(" DNSKEY ")[1])
    assert dns.dnssec.key_id(dnskey) == ds.key_tag
    _, build = render_lab(BIND)
    assert {k.name for k in (ns1(build) / "etc/bind/labgen/keys").glob("*.key")} == set(keys)


def test_a_csk_is_one_key_for_both_roles(render_lab):
    _, build = render_lab({"dnssec": {"signer": "bind", "keys": "csk"}})
    states = list((ns1(build) / "etc/bind/labgen/keys").glob("*.state"))
    assert len(states) == 1 and "KSK: yes" in states[0].read_text() and "ZSK: yes" in states[0].read_text()
    assert "csk lifetime unlimited" in (ns1(build) / "etc/bind/named.conf").read_text()


def test_a_lab_bind_signs_has_a_parent_zone_whose_ds_is_the_trust_anchor(render_lab):
    lab, build = render_lab(BIND)
    parent = lab.role("parent")
    assert lab.parent.domain == "example" and (parent.ipv4, parent.ipv6) == (lab.parent.ns_ipv4, lab.parent.ns_ipv6)
    assert str(parent.ipv4).endswith(".5")
    tree = build / "hosts" / "parent"
    zone = (tree / "etc/bind/labgen/db.example").read_text()
    child_ds = (build / "dns" / "lab.example.ds").read_text().split(" DS ")[1].strip()
    assert f"lab {lab.dnssec.pace.parent_ds_ttl} IN DS {child_ds}" in zone and "lab 60 IN NS ns1.lab" in zone
    assert "update-policy local;" in (tree / "etc/bind/named.conf").read_text()
    key = next((tree / "etc/bind/labgen/keys").glob("*.key")).read_text()
    anchor = (build / "hosts/resolver/etc/unbound/labgen/example.ds").read_text()
    tag = int(anchor.split(" DS ")[1].split()[0])
    assert f"Kexample.+013+{tag:05d}" in next((tree / "etc/bind/labgen/keys").glob("*.key")).name and "257 3 13" in key
    unbound = (build / "hosts/resolver/etc/unbound/unbound.conf").read_text()
    assert 'name: "example."' in unbound and f"forward-addr: {parent.ipv4}" in unbound
    assert f"parental-agents {{ {parent.ipv4}; {parent.ipv6}; }};" in (ns1(build) / "etc/bind/named.conf").read_text()
    scan = tree / "usr/local/sbin/labgen-cds-scan"
    assert stat.S_IMODE(scan.stat().st_mode) == 0o755 and "follow_cds \"$1\" \"$2\" \"$work\" -u -T" in scan.read_text()
    assert "delete_asked" in scan.read_text() and subprocess.run(["sh", "-n", str(scan)]).returncode == 0
    assert "--every 10" in (tree / "etc/systemd/system/labgen-cds-scan.service").read_text()
    inventory = yaml.safe_load((build / "inventory.yml").read_text())
    hosts = inventory["all"]["children"]["authdns"]["hosts"]
    assert set(hosts) == {"ns1", "parent"} and hosts["parent"]["labgen_extra_services"] == "labgen-cds-scan.service"


def test_a_lab_labgen_signs_has_no_parent_and_trusts_its_own_ds(render_lab):
    lab, build = render_lab()
    assert lab.parent is None and not lab.own_parent and not (build / "hosts" / "parent").exists()


def test_a_class_students_parent_is_the_lab_root_not_a_host_of_their_own(tmp_path):
    from labgen.classroom.rootzone import render_class
    from labgen.classroom.spec import parse_class

    klass = parse_class({"name": "c", "students": 1, "lab": {"dnssec": {"signer": "bind"}}})
    folder = render_class(klass, tmp_path)
    build = folder / "students" / klass.students[0].lab.name
    assert not (build / "hosts" / "parent").exists()
    assert "parental-agents" in (build / "hosts/ns1/etc/bind/named.conf").read_text()

"""Every zone labgen renders loads under the policy that signs it (issue 32): BIND refuses a zone
whole when one record's TTL passes the dnssec-policy's max-zone-ttl, and at the production pace the
parent's DS (a day) passed the zone TTL (an hour), so the parent served nothing.

The matrix reads the limit from the rendered named.conf, not from labgen's code, and loads each
zone with BIND's own named-checkzone; `labgen check` must refuse the same zone with BIND's words.
"""

from __future__ import annotations

import re
import subprocess

import pytest
from conftest import lab_up
from test_grading_trust import labgen, sh

from labgen import check, kinds, lifecycle, signing
from labgen.pace import PACES, Pace

SIGNERS = ("labgen", "bind")
KEYS = ("ksk-zsk", "csk")
NAMED_CONF = "etc/bind/named.conf"


def _policies(conf: str) -> dict[str, int | None]:
    found = {}
    for name, body in re.findall(r'dnssec-policy "([^"]+)" \{(.*?)\n\};', conf, re.S):
        limit = re.search(r"max-zone-ttl (\d+);", body)
        found[name] = int(limit.group(1)) if limit else None
    return found


def _zones(conf: str) -> list[tuple[str, str, str | None]]:
    """(zone, file, policy) of each primary zone of a named.conf."""
    found = []
    for name, body in re.findall(r'^zone "([^"]+)" \{(.*?)^\};', conf, re.S | re.M):
        file = re.search(r'file "([^"]+)";', body)
        policy = re.search(r'dnssec-policy "([^"]+)";', body)
        if file:
            found.append((name, file.group(1), policy.group(1) if policy else None))
    return found


def _load_every_zone(render_lab, data: dict) -> list[tuple[str, subprocess.CompletedProcess]]:
    lab, build = render_lab(data)
    loads = []
    for host in lab.hosts:
        tree = build / "hosts" / host.name
        if not (tree / NAMED_CONF).is_file():
            continue
        conf = (tree / NAMED_CONF).read_text()
        policies = _policies(conf)
        paths = kinds.of(host).paths(lab, host)
        for zone, file, policy in _zones(conf):
            # BIND signs a copy of the rendered source (labgen-bind-seed makes it at deploy).
            source = paths["zone_source"] if file == paths.get("zone") and "zone_source" in paths else file
            limit = policies[policy] if policy else None
            assert not policy or limit, f"{host.name}: the policy {policy} of {zone} sets no max-zone-ttl"
            command = ["named-checkzone", *(["-l", str(limit)] if limit else []), zone, str(tree / source.lstrip("/"))]
            loads.append((f"{host.name}: {zone} (max-zone-ttl {limit})", subprocess.run(
                command, capture_output=True, text=True)))
    assert loads, "no zone was found in the render"
    return loads


@pytest.mark.parametrize("pace", tuple(PACES))
@pytest.mark.parametrize("keys", KEYS)
@pytest.mark.parametrize("signer", SIGNERS)
def test_every_zone_loads_under_its_own_policy(render_lab, signer, keys, pace):
    loads = _load_every_zone(render_lab, {"dnssec": {"signer": signer, "keys": keys, "pace": pace}})
    if signer == "bind":
        assert any(where.startswith("parent:") for where, _ in loads), "the parent zone was not loaded"
    for where, run in loads:
        assert run.returncode == 0, f"{where} does not load:\n{run.stdout}{run.stderr}"


def test_the_old_limit_is_refused_with_bind_s_reason(render_lab, monkeypatch):
    """The test above can fail: with max-zone-ttl back at the zone TTL, the production parent's
    DS is out of range, as BIND said on the live lab."""
    monkeypatch.setattr(Pace, "max_zone_ttl", lambda self, parent=False: self.ttl)
    loads = dict(_load_every_zone(render_lab, {"dnssec": {"signer": "bind"}}))
    parent = next(run for where, run in loads.items() if where.startswith("parent:"))
    assert parent.returncode == 1 and "exceeds configured max-zone-ttl 3600" in parent.stdout


def test_check_refuses_a_zone_bind_would_not_load(render_lab, monkeypatch, debian13_root):
    """`labgen check` loads the parent's zone the way its server will (labgen-bind-seed, run
    before named-checkconf by the deploy and by check): passes at the default pace, and names
    BIND's reason when the DS is over the policy's limit."""
    lab, build = render_lab({"dnssec": {"signer": "bind"}})
    named = {r.title: r for r in check.check_build(lab, build, debian13_root) if "named-checkconf" in r.title}
    assert len(named) == 2 and all(r.ok for r in named.values()), named

    monkeypatch.setattr(Pace, "max_zone_ttl", lambda self, parent=False: self.ttl)
    lab, build = render_lab({"dnssec": {"signer": "bind"}}, out=build.parent.parent / "old")
    named = {r.title: r for r in check.check_build(lab, build, debian13_root) if "named-checkconf" in r.title}
    parent = next(r for title, r in named.items() if title.startswith(f"{lab.role('parent').fqdn}:"))
    assert not parent.ok
    assert "TTL 86400 exceeds configured max-zone-ttl 3600" in parent.detail
    assert "out of range" in parent.detail


# `labgen init`'s starter with only the signer changed (its own name and subnets, so that a
# trainer's demo lab on the machine is left alone): the production pace, the README's default.
DEFAULT_PACE_LAB = {"name": "itestprod", "dnssec": {"signer": "bind"},
                    "network": {"ipv4": "10.83.0.0/24", "ipv6": "2001:db8:83::/64"}}


@pytest.fixture(scope="module")
def default_pace_lab(tmp_path_factory):
    yield from lab_up(tmp_path_factory, DEFAULT_PACE_LAB)


def test_bind_signing_at_the_default_pace_comes_up_and_verifies(default_pace_lab):
    lab = default_pace_lab
    assert lab.lab.dnssec.pace.name == "production"
    rows = lifecycle.status(lab.lab, lab.engine)
    assert [(r.host.name, r.service_state, r.problem) for r in rows if not r.healthy] == []
    parent = sh(lab, "probe", f"dig +norec @{lab.lab.role('parent').ipv4} {lab.lab.domain} DS").stdout
    assert "status: NOERROR" in parent and "\t86400\tIN\tDS\t" in parent, parent
    result = labgen(lab, "verify")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "verdict: every required check passes" in result.stdout


def test_status_names_a_zone_bind_did_not_load_and_why(default_pace_lab):
    """named stays active when a zone fails to load: status looks at the zones themselves."""
    lab = default_pace_lab
    work = signing.work_zone(lab.lab.parent.domain)
    sh(lab, "parent", f"cp {work} /root/zone.bak && echo 'over 999999 IN TXT too-long' >> {work} "
                      f"&& systemctl restart named")
    try:
        result = labgen(lab, "status")
        assert result.returncode == 1, result.stdout
        assert (f"unhealthy: zone {lab.lab.parent.domain}: zone {lab.lab.parent.domain}/IN (unsigned): "
                f"loading from master file {work} failed: out of range") in result.stdout, result.stdout
        assert "6 of 7 hosts healthy" in result.stdout, result.stdout
    finally:
        sh(lab, "parent", f"cp /root/zone.bak {work} && chown bind:bind {work} && systemctl restart named")
    assert all(r.healthy for r in lifecycle.status(lab.lab, lab.engine))

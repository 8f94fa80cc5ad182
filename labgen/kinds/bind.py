"""BIND: the lab's authoritative name server (ns1) and a lab's parent zone's (templates/dns for
both; both are in the inventory group authdns)."""

from __future__ import annotations

from .. import acme, dnszone, parentzone, signing
from ..hostpaths import PROGRAM, PUBLIC, SECRET, bogus_zone_path, zone_file, zone_path
from .kind import Kind

NAMED_CONF = "/etc/bind/named.conf"


def authdns_paths(lab, host) -> dict[str, str]:
    if signing.online(lab):  # BIND signs: it serves its own signed copy of the rendered source
        return {"named_conf": NAMED_CONF, "zone_source": zone_path(lab),
                "zone": signing.work_zone(lab.domain), "key_dir": signing.WORK_KEYS}
    return {"named_conf": NAMED_CONF, "zone": zone_path(lab),
            "zone_source": dnszone.source_path(zone_path(lab)), "key_dir": dnszone.KEY_DIR}


def _keys(keys: dict[str, tuple[str, bool]]) -> dict[str, tuple[bytes, int]]:
    return {f"{dnszone.KEY_DIR}/{name}": (content.encode(), SECRET if secret else PUBLIC)
            for name, (content, secret) in keys.items()}


def authdns_files(lab, host, m, text) -> dict[str, tuple[bytes, int]]:
    found = authdns_paths(lab, host)
    tree = {found["named_conf"]: text("dns/named.conf.j2"), bogus_zone_path(lab): (m.bogus_zone.encode(), PUBLIC),
            found["zone_source"]: (m.zone_source.encode(), PUBLIC), **_keys(m.zone_keys)}
    if signing.online(lab) and lab.parent:
        tree[signing.CHECKDS] = (signing.checkds_script(lab).encode(), PROGRAM)
        tree[f"/etc/systemd/system/{signing.CHECKDS_UNIT}"] = (signing.checkds_unit(lab).encode(), PUBLIC)
    if lab.certificates.acme:  # each web server's key for its TLSA record (labgen.acme)
        tree[signing.TSIG_SOURCE] = ("".join(acme.tsig_key(h, m.tsig[h.name]) for h in lab.web).encode(),
                                     SECRET)
    if signing.online(lab):  # BIND signs copies of these (signing.SEED makes them)
        tree[signing.SEED] = (signing.seed_script(lab.domain, found["zone_source"], lab.dnssec.pace.max_zone_ttl(),
                                                        lab.certificates.acme).encode(),
                              PROGRAM)
    else:
        tree[found["zone"]] = (m.zone.encode(), PUBLIC)
    return tree


def parent_paths(lab, host) -> dict[str, str]:
    return {"named_conf": NAMED_CONF, "zone_source": zone_file(lab.parent.domain),
            "zone": signing.work_zone(lab.parent.domain), "key_dir": signing.WORK_KEYS}


def parent_files(lab, host, m, text) -> dict[str, tuple[bytes, int]]:
    found = parent_paths(lab, host)
    return {found["named_conf"]: text("dns/parent-named.conf.j2", policy_name=parentzone.POLICY,
                                      policy=signing.policy(lab, parent=True),
                                      work_zone=found["zone"], zone_source=found["zone_source"]),
            found["zone_source"]: (m.parent["source"].encode(), PUBLIC), **_keys(m.parent["keys"]),
            signing.SEED: (signing.seed_script(lab.parent.domain, found["zone_source"],
                                                         lab.dnssec.pace.max_zone_ttl(parent=True)).encode(), PROGRAM),
            parentzone.SCAN: (parentzone.scan_script(lab).encode(), PROGRAM),
            f"/etc/systemd/system/{parentzone.SCAN_UNIT}": (parentzone.scan_unit(lab).encode(), PUBLIC)}


# A restart, not a reload: a reload skips a zone file whose time stamp is older than the copy
# loaded (the rendered file put back after someone signed the zone by hand on ns1).
# -z also loads every zone, so a broken zone file is refused like a broken config.
_BIND = dict(role="authdns", packages=("bind9", "bind9-utils", "bind9-dnsutils"), unit="named",
             config_test="{prepare}/usr/bin/named-checkconf -z " + NAMED_CONF, prepare=signing.prepare,
             change="restart",
             folders=("/etc/bind",))  # named.conf's includes (named.conf.local, ...) live here

AUTHDNS = Kind(name="authdns", title="BIND (the lab's name server)", disabled=("named",),
               tools=("/usr/bin/systemctl",), paths=authdns_paths, files=authdns_files,
               zones=lambda lab, host: (lab.domain, dnszone.bogus_name(lab)), **_BIND)
# The grader runs nothing on the parent host.
PARENT = Kind(name="parent", title="BIND (the parent zone's name server)", paths=parent_paths,
              files=parent_files, zones=lambda lab, host: (lab.parent.domain,), **_BIND)

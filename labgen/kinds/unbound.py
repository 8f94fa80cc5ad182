"""Unbound, the lab's validating resolver (templates/dns/unbound.conf.j2)."""

from __future__ import annotations

from ..hostpaths import PUBLIC, anchor_path
from .kind import Kind

UNBOUND_CONF = "/etc/unbound/unbound.conf"


def paths(lab, host) -> dict[str, str]:
    return {"unbound_conf": UNBOUND_CONF, "anchor": anchor_path(lab)}


def files(lab, host, m, text) -> dict[str, tuple[bytes, int]]:
    found = paths(lab, host)
    return {found["unbound_conf"]: text("dns/unbound.conf.j2"), "/etc/default/unbound": text("dns/unbound.default.j2"),
            found["anchor"]: (m.anchor_line.encode(), PUBLIC)}


# A restart, not a reload: Unbound rereads its trust anchor and drops every cached answer.
KIND = Kind(
    name="resolver", title="Unbound (the lab's resolver)", role="resolver", packages=("unbound",),
    unit="unbound", disabled=("unbound", "unbound-resolvconf"),
    config_test="/usr/sbin/unbound-checkconf " + UNBOUND_CONF, change="restart",
    folders=("/etc/unbound/unbound.conf.d",), tools=("/usr/bin/systemctl",), paths=paths, files=files,
)

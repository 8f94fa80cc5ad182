"""Unbound, the lab's validating resolver (templates/dns/unbound.conf.j2, roles/resolver)."""

from . import Kind

# A restart, not a reload: Unbound rereads its trust anchor and drops every cached answer.
KIND = Kind(
    name="resolver", title="Unbound (the lab's resolver)", role="resolver", packages=("unbound",),
    unit="unbound", disabled=("unbound", "unbound-resolvconf"),
    config_test="/usr/sbin/unbound-checkconf /etc/unbound/unbound.conf", change="restart",
    folders=("/etc/unbound/unbound.conf.d",), tools=("/usr/bin/systemctl",),
)

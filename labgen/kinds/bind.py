"""BIND: the lab's authoritative name server (ns1) and a lab's parent zone's (templates/dns,
roles/authdns for both)."""

from . import Kind

# A restart, not a reload: a reload skips a zone file whose time stamp is older than the copy
# loaded (the rendered file put back after someone signed the zone by hand on ns1).
# -z also loads every zone, so a broken zone file is refused like a broken config.
_BIND = dict(role="authdns", packages=("bind9", "bind9-utils", "bind9-dnsutils"), unit="named",
             config_test="{prepare}/usr/bin/named-checkconf -z /etc/bind/named.conf", change="restart",
             folders=("/etc/bind",))  # named.conf's includes (named.conf.local, ...) live here

AUTHDNS = Kind(name="authdns", title="BIND (the lab's name server)", disabled=("named",),
               tools=("/usr/bin/systemctl",), **_BIND)
# The grader runs nothing on the parent host.
PARENT = Kind(name="parent", title="BIND (the parent zone's name server)", **_BIND)

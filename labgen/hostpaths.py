"""Where the files of a lab host live, and the modes render gives them: the names the kinds'
trees (labgen.kinds), the exercises and the checks share."""

from __future__ import annotations

from . import dnszone
from .spec import Host, Lab

CERT_DIR = "/etc/ssl/labgen"
WEBROOT = "/var/www/labgen"
CLIENT_DIR = "/etc/labgen"
PUBLIC, SECRET, PROGRAM = 0o644, 0o600, 0o755


def cert_paths(host: Host, kind: str) -> dict[str, str]:
    return {"crt": f"{CERT_DIR}/{host.fqdn}.{kind}.crt",
            "key": f"{CERT_DIR}/private/{host.fqdn}.{kind}.key"}


def zone_file(name: str) -> str:
    return f"/etc/bind/labgen/db.{name}"


def zone_path(lab: Lab) -> str:
    return zone_file(lab.domain)


def bogus_zone_path(lab: Lab) -> str:
    return zone_file(dnszone.bogus_name(lab))


def anchor_path(lab: Lab) -> str:
    return f"/etc/unbound/labgen/{lab.anchor_domain}.ds"


def ca_trust_path(lab: Lab) -> str:
    return f"/usr/local/share/ca-certificates/labgen-{lab.name}.crt"


def acme_trust_path(lab: Lab) -> str:
    """The lab's ACME CA's current root on the workstation and the probe (labgen.acme)."""
    return f"/usr/local/share/ca-certificates/labgen-{lab.name}-acme.crt"


def server_ca_path(lab: Lab) -> str:
    """The CA file the web servers' certificates chain to: the lab CA's, or in a lab with
    certificates: acme the ACME CA's current root."""
    return acme_trust_path(lab) if lab.certificates.acme else ca_trust_path(lab)

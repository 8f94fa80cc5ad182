"""Certificates from the lab's own ACME CA (certificates: acme): the facts every part shares.

The lab's `acme` host runs Debian's pebble, an ACME server (RFC 8555) made for tests. Every web
server gets its certificate from it over HTTP-01 with certbot, through labgen's `labgen-certs`
(labgen/certs_program.py), which owns the keys so that DANE survives renewals:
- a renewal keeps the key, so the TLSA record stays right (certbot alone takes a new key each
  time unless told --reuse-key, and cannot adopt a key whose TLSA was published beforehand);
- the next key exists from the start and its TLSA 3 1 1 is published beside the current one's;
  a key roll waits until that record has been in the zone for its TTL (and the time a change
  takes to reach a secondary), swaps, then replaces the old key's record with a new next key's,
  by dynamic update with a TSIG key that may change only that TLSA record.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from .hostpaths import WEBROOT, acme_trust_path
from .pace import DEFAULT_LIFETIME, LIFETIMES  # noqa: F401 - the lifetime profiles, with the other clocks

if TYPE_CHECKING:
    from .spec import Host, Lab

# A certificate is renewed when a third of its lifetime is left (as Let's Encrypt advises) and
# the renewal timer fires twelve times per lifetime: a failed renewal has more tries before the
# certificate runs out.
RENEW_WHEN_LEFT = 1 / 3
TIMER_PER_LIFETIME = 12

ACME_PORT = 14000  # pebble's ACME directory (HTTPS)
MANAGEMENT_PORT = 15000  # pebble's management interface: its current root (HTTPS)
PEBBLE_DIR = "/etc/labgen/pebble"
PEBBLE_UNIT = "labgen-pebble.service"

CERTS_DIR = "/etc/labgen/acme"  # on a web server: labgen's rendered keys and settings
CERTS_PROGRAM = "/usr/local/sbin/labgen-certs"
CERTS_CONFIG = f"{CERTS_DIR}/certs.json"
CERTS_STATE = "/var/lib/labgen-certs"  # what labgen-certs owns once seeded (the next keys)
CERTS_UNIT = "labgen-certs"  # .service (one renewal) and .timer
CERTS_TIMER = f"{CERTS_UNIT}.timer"
TRUST_PROGRAM = "/usr/local/sbin/labgen-acme-trust"  # on the workstation and the probe


def put_back() -> str:
    """What labgen up runs on a web server once the lab runs, and exercise solve after putting
    files back: the ACME CA's certificate for the key, and a key no TLSA record names replaced
    by the next key (whose record is out)."""
    return f"{CERTS_PROGRAM} renew --repair"


def lifetime(lab: Lab) -> int:
    return LIFETIMES[lab.certificates.lifetime]


def timer_seconds(lab: Lab) -> int:
    return max(10, lifetime(lab) // TIMER_PER_LIFETIME)


def publish_wait(lab: Lab) -> int:
    """How long a next key's TLSA must be in the zone before the key is used: the record's TTL
    (every cache has it then) and the time a change takes to reach a secondary, plus BIND's
    publish safety margin (the lab's pace)."""
    p = lab.dnssec.pace
    return p.ttl + p.zone_propagation_delay + p.publish_safety


def directory(lab: Lab) -> str:
    return f"https://{lab.role('acme').fqdn}:{ACME_PORT}/dir"


def management(lab: Lab) -> str:
    return f"https://{lab.role('acme').fqdn}:{MANAGEMENT_PORT}"


def roots_url(lab: Lab) -> str:
    return f"{management(lab)}/roots/0"


def tsig_name(host: Host) -> str:
    """The TSIG key that may change only this web server's TLSA record."""
    return f"tlsa-{host.name}"


def tsig_key(host: Host, secret: str) -> str:
    """This web server's TSIG key as BIND and nsupdate -k read it."""
    return f'key "{tsig_name(host)}" {{\n    algorithm hmac-sha256;\n    secret "{secret}";\n}};\n'


def tlsa_owner(host: Host) -> str:
    return f"_443._tcp.{host.fqdn}"


def key_paths(host: Host, kind: str) -> dict[str, str]:
    """A web server's rendered keys and first certificate (from the lab CA, served until the
    ACME CA's arrives); labgen-certs copies them to where the server reads them."""
    base = f"{CERTS_DIR}/{host.fqdn}.{kind}"
    return {"rendered_key": f"{base}.key", "rendered_next": f"{base}.next.key",
            "bootstrap": f"{base}.bootstrap.crt", "next": f"{CERTS_STATE}/{host.fqdn}.{kind}.next.key"}


def tsig_path(host: Host) -> str:
    return f"{CERTS_DIR}/{tsig_name(host)}.key"


def certs_config(lab: Lab, host: Host, served: dict[str, dict[str, str]], unit: str) -> str:
    """labgen-certs' settings for one web server (served: kind -> its crt and key paths)."""
    kinds = {kind: {**paths, **key_paths(host, kind),
                    "new_key": (["rsa:" + str(lab.profile.rsa_key_size)] if kind == "rsa" else ["ec"])[0]}
             for kind, paths in served.items()}
    return json.dumps({
        "fqdn": host.fqdn, "zone": lab.domain, "directory": directory(lab), "roots": roots_url(lab),
        "webroot": WEBROOT, "lifetime": lifetime(lab), "renew_when_left": RENEW_WHEN_LEFT,
        "reload": ["systemctl", "reload", unit], "ns": str(lab.role("authdns").ipv4),
        "tlsa_owner": tlsa_owner(host), "ttl": lab.dnssec.pace.ttl, "publish_wait": publish_wait(lab),
        "tsig": tsig_path(host), "state": CERTS_STATE, "kinds": kinds}, indent=1) + "\n"


def timer_units(lab: Lab) -> dict[str, str]:
    """labgen-certs' systemd service (one renewal run) and its timer."""
    every = timer_seconds(lab)
    service = ("# Written by labgen: renew this server's certificates from the lab's ACME CA when a\n"
               "# third of their lifetime is left (labgen-certs renew).\n[Unit]\n"
               "Description=labgen: renew the certificates from the lab's ACME CA\n"
               "After=network-online.target\n\n[Service]\nType=oneshot\n"
               f"ExecStart={CERTS_PROGRAM} renew\n")
    timer = (f"# Written by labgen: labgen-certs renew every {every} s ({TIMER_PER_LIFETIME} times per\n"
             "# certificate lifetime), and a minute after boot.\n[Unit]\n"
             "Description=labgen: renew the certificates from the lab's ACME CA\n\n[Timer]\n"
             f"OnBootSec=60\nOnUnitActiveSec={every}\nAccuracySec=1\n\n"
             "[Install]\nWantedBy=timers.target\n")
    return {f"/etc/systemd/system/{CERTS_UNIT}.service": service,
            f"/etc/systemd/system/{CERTS_TIMER}": timer}


def trust_script(lab: Lab) -> str:
    """The workstation's and the probe's: trust the ACME CA's current root (pebble makes a new
    one at each start), fetched over HTTPS checked against the lab CA."""
    path = acme_trust_path(lab)
    return f"""#!/bin/sh
# Written by labgen: trust the lab's ACME CA. Pebble makes a new root each time it starts, so
# labgen up runs this after the CA is up; it prints "trusted" when the root changed.
set -eu
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
curl -fsS --retry 30 --retry-all-errors --retry-delay 1 --max-time 60 -o "$tmp" {roots_url(lab)}
grep -q 'BEGIN CERTIFICATE' "$tmp"
if ! cmp -s "$tmp" {path}; then
    install -m 0644 "$tmp" {path}
    update-ca-certificates >/dev/null
    echo trusted
fi
"""


def pebble_config(lab: Lab, cert: str, key: str) -> str:
    return json.dumps({"pebble": {
        "listenAddress": f":{ACME_PORT}", "managementListenAddress": f":{MANAGEMENT_PORT}",
        "certificate": cert, "privateKey": key,
        # Challenges are checked where a real CA checks them: HTTP on 80, TLS-ALPN on 443.
        "httpPort": 80, "tlsPort": 443, "ocspResponderURL": "",
        "externalAccountBindingRequired": False,
        "certificateValidityPeriod": lifetime(lab)}}, indent=1) + "\n"


def pebble_unit(lab: Lab, config: str) -> str:
    resolver = lab.role("resolver").ipv4
    return ("# Written by labgen: the lab's ACME CA (pebble, a test CA: its root is made anew at each\n"
            "# start and nothing is kept). It resolves names through the lab's resolver.\n"
            "[Unit]\nDescription=labgen: the lab's ACME CA (pebble)\nAfter=network-online.target\n\n"
            "[Service]\n"
            # Every challenge is checked at once and every time (no sleeps, no reused
            # authorization, no nonce refused on purpose): renewals behave the same each run.
            "Environment=PEBBLE_VA_NOSLEEP=1 PEBBLE_AUTHZREUSE=0 PEBBLE_WFE_NONCEREJECT=0\n"
            f"ExecStart=/usr/bin/pebble -config {config} -dnsserver {resolver}:53 -strict=false\n"
            "Restart=always\nRestartSec=2\n\n[Install]\nWantedBy=multi-user.target\n")

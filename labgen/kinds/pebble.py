"""The lab's ACME CA, Debian's pebble (certificates: acme; labgen.acme)."""

from __future__ import annotations

from .. import acme
from ..hostpaths import PUBLIC, SECRET
from .kind import Kind


def paths(lab, host) -> dict[str, str]:
    return {"config": f"{acme.PEBBLE_DIR}/pebble.json", "crt": f"{acme.PEBBLE_DIR}/cert.pem",
            "key": f"{acme.PEBBLE_DIR}/key.pem", "unit": f"/etc/systemd/system/{acme.PEBBLE_UNIT}"}


def files(lab, host, m, text) -> dict[str, tuple[bytes, int]]:
    found = paths(lab, host)
    chain, key = m.certs[host.name]["ecdsa"]  # its HTTPS listener's, from the lab CA
    return {found["config"]: (acme.pebble_config(lab, found["crt"], found["key"]).encode(), PUBLIC),
            found["crt"]: (chain, PUBLIC), found["key"]: (key, SECRET),
            found["unit"]: (acme.pebble_unit(lab, found["config"]).encode(), PUBLIC)}


# A restart: pebble reads its settings only at start (and then makes a new root: labgen up has
# every web server renew and the workstation and probe trust the new root).
KIND = Kind(name="acme", title="pebble (the lab's ACME CA)", role="acme", packages=("pebble",),
            unit=acme.PEBBLE_UNIT.removesuffix(".service"), change="restart", paths=paths, files=files)

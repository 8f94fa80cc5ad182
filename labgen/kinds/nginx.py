"""nginx, a web server of the lab (templates/nginx, roles/nginx)."""

from __future__ import annotations

from . import web
from .kind import Kind


def paths(lab, host) -> dict[str, str]:
    return {**web.paths(lab, host), "main_conf": "/etc/nginx/nginx.conf",
            "site": f"/etc/nginx/conf.d/{host.fqdn}.conf"}


def files(lab, host, m, text) -> dict[str, tuple[bytes, int]]:
    found = paths(lab, host)
    return {**web.files(lab, host, m, text, found), found["main_conf"]: text("nginx/nginx.conf.j2"),
            found["site"]: text("nginx/site.conf.j2")}


KIND = Kind(
    name="nginx", title="nginx", role="nginx", packages=("nginx",), unit="nginx", disabled=("nginx",),
    config_test="/usr/sbin/nginx -t",
    folders=("/etc/nginx/conf.d", "/etc/nginx/sites-enabled", "/etc/nginx/modules-enabled"),
    tools=("/usr/sbin/nginx", "/usr/bin/systemctl", "/usr/bin/ss", "/usr/bin/stat", "/usr/bin/openssl"),
    paths=paths, files=files,
)

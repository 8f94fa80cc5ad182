"""nginx, a web server of the lab (templates/nginx)."""

from __future__ import annotations

from . import web
from .kind import Kind


paths, files = web.layout("/etc/nginx/nginx.conf", "/etc/nginx/conf.d/{fqdn}.conf",
                          "nginx/nginx.conf.j2", "nginx/site.conf.j2")


KIND = Kind(
    name="nginx", title="nginx", role="nginx", packages=("nginx", *web.PACKAGES), unit="nginx",
    disabled=("nginx", *web.DISABLED), config_test="{prepare}/usr/sbin/nginx -t", prepare=web.prepare, after=web.after,
    folders=("/etc/nginx/conf.d", "/etc/nginx/sites-enabled", "/etc/nginx/modules-enabled"),
    tools=("/usr/sbin/nginx", "/usr/bin/systemctl", "/usr/bin/ss", "/usr/bin/stat", "/usr/bin/openssl"),
    paths=paths, files=files,
)

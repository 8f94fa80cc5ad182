"""nginx, a web server of the lab (templates/nginx, roles/nginx)."""

from . import Kind

KIND = Kind(
    name="nginx", title="nginx", role="nginx", packages=("nginx",), unit="nginx", disabled=("nginx",),
    config_test="/usr/sbin/nginx -t",
    folders=("/etc/nginx/conf.d", "/etc/nginx/sites-enabled", "/etc/nginx/modules-enabled"),
    tools=("/usr/sbin/nginx", "/usr/bin/systemctl", "/usr/bin/ss", "/usr/bin/stat", "/usr/bin/openssl"),
)

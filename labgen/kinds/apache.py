"""Apache HTTP Server, a web server of the lab (templates/apache)."""

from __future__ import annotations

from . import web
from .kind import Kind

# The modules every labgen site needs (Debian's names, for a2enmod).
MODULES = ("ssl", "headers", "http2", "socache_shmcb", "alias", "mime")
# Before its config test: the modules and labgen's site enabled, Debian's default site not. The
# deploy makes and removes the links (ENABLED, DISABLED); `labgen check`'s sandbox runs Debian's
# own commands (ENABLE), as a person would.
DEFAULT_SITE = "000-default"
ENABLED = (("/etc/apache2/mods-enabled", MODULES), ("/etc/apache2/sites-enabled", ("{fqdn}",)))
DISABLED = (("/etc/apache2/sites-enabled", (DEFAULT_SITE,)),)
ENABLE = (f"a2enmod -q {{modules}} >/dev/null && a2dissite -q {DEFAULT_SITE} >/dev/null; "
          "a2ensite -q {fqdn} >/dev/null && ")


paths, files = web.layout("/etc/apache2/ports.conf", "/etc/apache2/sites-available/{fqdn}.conf",
                          "apache/ports.conf.j2", "apache/site.conf.j2")


KIND = Kind(
    name="apache", title="Apache HTTP Server", role="apache", packages=("apache2", *web.PACKAGES), unit="apache2",
    disabled=("apache2", "apache-htcacheclean", *web.DISABLED), config_test="{prepare}/usr/sbin/apache2ctl configtest",
    prepare=web.prepare, after=web.after, setup=ENABLE, enable=ENABLED, disable=DISABLED,
    folders=("/etc/apache2/conf-enabled", "/etc/apache2/sites-enabled", "/etc/apache2/mods-enabled"),
    tools=("/usr/sbin/apache2ctl", "/usr/sbin/apache2", "/usr/bin/systemctl", "/usr/bin/ss",
           "/usr/bin/stat", "/usr/bin/openssl"),
    paths=paths, files=files,
)

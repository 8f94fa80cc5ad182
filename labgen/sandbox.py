"""Run a command on a root file system with a rendered host tree laid over it.

The overlay lives in a private mount namespace (unshare), so neither the machine's own /etc nor
the cached root file system is changed. This is how the rendered configs meet the real
nginx -t, apache2ctl configtest, named-checkconf and unbound-checkconf of a given Debian release
without containers.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from pathlib import Path

from .errors import ToolError

# What each role's server says about its rendered config; the same checks the deploy runs.
CHECKS = {
    "nginx": "nginx -t",
    "apache": ("a2enmod -q {modules} >/dev/null && a2dissite -q 000-default >/dev/null; "
               "a2ensite -q {fqdn} >/dev/null && apache2ctl configtest"),
    "authdns": "{prepare}named-checkconf -z /etc/bind/named.conf",
    "parent": "{prepare}named-checkconf -z /etc/bind/named.conf",  # the parent zone's name server
    "resolver": "unbound-checkconf /etc/unbound/unbound.conf",
}


def run_over(root: Path, tree: Path, script: str, timeout: int = 120) -> subprocess.CompletedProcess:
    """Run a shell script chrooted into root, with tree's files on top of it."""
    if os.geteuid() != 0:
        raise ToolError("the config sandbox needs root (mount namespaces and chroot)")
    with tempfile.TemporaryDirectory(prefix="labgen-sandbox-") as tmp:
        # Every layer but the root lives on a tmpfs: overlayfs refuses layers that lie inside
        # another layer, as they would when the root is the machine's own /.
        mount = (f"mount -t tmpfs tmpfs {tmp} && mkdir {tmp}/u {tmp}/w {tmp}/m && "
                 f"cp -a {tree} {tmp}/t && "
                 f"mount -t overlay overlay -o lowerdir={tmp}/t:{root},upperdir={tmp}/u,"
                 f"workdir={tmp}/w {tmp}/m && mount --rbind /dev {tmp}/m/dev && "
                 f"mount -t proc proc {tmp}/m/proc && exec chroot {tmp}/m /bin/sh -c \"$0\"")
        return subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", mount, script],
            capture_output=True, text=True, timeout=timeout,
            env={"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"})


def check_script(role: str, *, fqdn: str = "", modules: tuple[str, ...] = (), prepare: str = "") -> str:
    """prepare: what the deploy runs first (signing.prepare), ending in '&& '."""
    return CHECKS[role].format(fqdn=shlex.quote(fqdn), modules=" ".join(modules), prepare=prepare)

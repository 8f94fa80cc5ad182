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
from .kinds import Kind

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


def check_script(kind: Kind, *, fqdn: str = "", modules: tuple[str, ...] = (), prepare: str = "") -> str:
    """What a kind of server says about its rendered config, as the deploy asks it (the role's
    setup first). prepare: what the deploy runs first (Kind.prepare), ending in '&& '."""
    return (kind.setup + kind.config_test).format(fqdn=shlex.quote(fqdn), modules=" ".join(modules),
                                                  prepare=prepare)

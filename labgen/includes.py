"""The include folders each kind of server reads, and what the lab image holds in them.

`labgen up` brings a host back to its rendered tree; a file a server reads from one of these
folders that labgen does not own (not in the host's manifest, not in the lab image's copy of the
folder, not enabled by labgen's role) would survive that otherwise: an `Include` a student left
in conf-enabled keeps Apache's config test failing. The common role's labgen_tree module moves
such a file aside into /var/backups/labgen/<UTC time>/<its path> on the host (never deletes
it), and up reports and counts it.

FOLDERS is the one table of which folders belong to which server kind (the inventory group:
a web server's software or an infrastructure host's role). The playbook gets it through the
extra variable labgen_folders, with what the image holds in each folder (pristine_folders);
roles/common/defaults picks the host's folders by its groups.
"""

from __future__ import annotations

import hashlib
import json

from . import image

FOLDERS: dict[str, tuple[str, ...]] = {
    "nginx": ("/etc/nginx/conf.d", "/etc/nginx/sites-enabled", "/etc/nginx/modules-enabled"),
    "apache": ("/etc/apache2/conf-enabled", "/etc/apache2/sites-enabled",
               "/etc/apache2/mods-enabled"),
    "authdns": ("/etc/bind",),  # named.conf's includes (named.conf.local, ...) live here
    "resolver": ("/etc/unbound/unbound.conf.d",),
}
# Where a host keeps what up moved aside: <BACKUP>/<UTC time>/<original path>.
BACKUP = "/var/backups/labgen"

# Run inside a throwaway container of the lab image: each folder's entries as the image has
# them (a link's target, a file's SHA-256, a folder), as JSON on stdout.
_LIST = r"""
import hashlib, json, os, sys
found = {}
for folder in sys.argv[1:]:
    entries = {}
    if os.path.isdir(folder) and not os.path.islink(folder):
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            if os.path.islink(path):
                entries[name] = {"link": os.readlink(path)}
            elif os.path.isdir(path):
                entries[name] = {"dir": True}
            elif os.path.isfile(path):
                with open(path, "rb") as handle:
                    entries[name] = {"sha256": hashlib.sha256(handle.read()).hexdigest()}
            else:
                entries[name] = {"other": True}
    found[folder] = entries
print(json.dumps(found))
"""


def _all_folders() -> list[str]:
    return sorted({f for folders in FOLDERS.values() for f in folders})


def pristine_folders(engine, tag: str) -> dict[str, dict[str, dict]]:
    """Folder -> entry name -> how the lab image has it. Read once per image (the tag is a hash
    of its content) from a throwaway container without network, and cached beside the image's
    root file systems."""
    folders = _all_folders()
    key = hashlib.sha256(json.dumps([tag, folders, _LIST]).encode()).hexdigest()[:16]
    cache = image.cache_dir() / f"pristine-folders-{key}.json"
    try:
        return json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    result = engine.run("run", "--rm", "--network", "none", "--entrypoint", "/usr/bin/python3",
                        tag, "-c", _LIST, *folders, timeout=120)
    found = json.loads(result.stdout)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp")
    tmp.write_text(json.dumps(found, indent=1) + "\n", encoding="utf-8")
    tmp.replace(cache)
    return found


def playbook_folders(pristine: dict[str, dict[str, dict]]) -> dict[str, dict[str, dict]]:
    """The extra variable labgen_folders: server kind -> folder -> the image's entries there."""
    return {kind: {folder: pristine.get(folder, {}) for folder in folders}
            for kind, folders in FOLDERS.items()}

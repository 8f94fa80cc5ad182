"""The include folders each kind of server reads, and what the lab image holds in them.

`labgen up` brings a host back to its rendered tree; a file a server reads from one of these
folders that labgen does not own (not in the host's manifest, not in the lab image's copy of the
folder, not enabled by labgen's role) would survive that otherwise: an `Include` a student left
in conf-enabled keeps Apache's config test failing. The common role's labgen_tree module moves
such a file aside into /var/backups/labgen/<UTC time>/<its path> on the host (never deletes
it), and up reports and counts it.

Which folders belong to which kind of server is each kind's record (labgen.kinds: its name is
the inventory group). The playbook gets them through the extra variable labgen_folders, with
what the image holds in each folder (pristine_folders); roles/common/defaults picks the host's
folders by its groups.
"""

from __future__ import annotations

import hashlib
import os

from . import image
from .kinds import KINDS

# By the inventory group a host has: its kind's role (the parent host is in authdns, like ns1).
FOLDERS: dict[str, tuple[str, ...]] = {k.role: k.folders for k in KINDS.values() if k.folders}
# Where a host keeps what up moved aside: <BACKUP>/<UTC time>/<original path>.
BACKUP = "/var/backups/labgen"


def _entries(root: str, folders: list[str]) -> dict[str, dict[str, dict]]:
    """Each folder's entries inside a container's root: a link's target, a file's SHA-256, a
    folder. A folder that is a link is read as empty (its target is not the image's folder)."""
    found = {}
    for folder in folders:
        entries, where = {}, root + folder
        if os.path.isdir(where) and not os.path.islink(where):
            for name in sorted(os.listdir(where)):
                path = os.path.join(where, name)
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
    return found


def _all_folders() -> list[str]:
    return sorted({f for folders in FOLDERS.values() for f in folders})


def pristine_folders(engine, tag: str) -> dict[str, dict[str, dict]]:
    """Folder -> entry name -> how the lab image has it (read once per image, then cached)."""
    folders = _all_folders()
    return image.from_pristine(engine, tag, "pristine-folders", folders,
                               lambda root: _entries(root, folders))


def playbook_folders(pristine: dict[str, dict[str, dict]]) -> dict[str, dict[str, dict]]:
    """The extra variable labgen_folders: server kind -> folder -> the image's entries there."""
    return {kind: {folder: pristine.get(folder, {}) for folder in folders}
            for kind, folders in FOLDERS.items()}

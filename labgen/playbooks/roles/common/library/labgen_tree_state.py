#!/usr/bin/python
"""Compare a host with its labgen manifest in one module call (read-only)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: labgen_tree_state
short_description: List the files and folders of a labgen manifest that differ on this host
description:
  - Reads each file the manifest names and compares its SHA-256, mode and owner (root:root)
    with the manifest. Never changes anything.
  - One call instead of a stat per file keeps an idempotent run fast.
options:
  files:
    description: Absolute path -> {mode, sha256}, from build/<lab>/manifests/<host>.json.
    type: dict
    required: true
  dirs:
    description: Absolute path -> mode. Missing folders are listed; an existing folder is listed
      only when the manifest makes it private (0700) and its mode differs.
    type: dict
    required: true
"""

RETURN = r"""
files:
  description: Paths whose content, mode or owner differ, or that are missing.
  type: list
  returned: always
dirs:
  description: Folders to create or to make private.
  type: list
  returned: always
"""

import hashlib
import os
import stat

from ansible.module_utils.basic import AnsibleModule


def differs(path, want):
    try:
        info = os.stat(path)
        with open(path, "rb") as handle:
            digest = hashlib.sha256(handle.read()).hexdigest()
    except OSError:
        return True
    return (digest != want["sha256"] or f"{stat.S_IMODE(info.st_mode):04o}" != want["mode"]
            or info.st_uid != 0 or info.st_gid != 0)


def main():
    module = AnsibleModule(argument_spec={"files": {"type": "dict", "required": True},
                                          "dirs": {"type": "dict", "required": True}},
                           supports_check_mode=True)
    files = [p for p, want in sorted(module.params["files"].items()) if differs(p, want)]
    dirs = []
    for path, mode in module.params["dirs"].items():
        if not os.path.isdir(path):
            dirs.append(path)
        elif mode == "0700" and f"{stat.S_IMODE(os.stat(path).st_mode):04o}" != mode:
            dirs.append(path)
    module.exit_json(changed=False, files=files, dirs=dirs)


if __name__ == "__main__":
    main()

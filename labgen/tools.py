"""Programs that were installed together with labgen (Ansible's commands, ansible-lint).

pip and pipx put them in the bin/ folder beside the Python that runs labgen. A newcomer who
runs `.venv/bin/labgen` by its path does not have that folder on PATH, so looking them up on
PATH alone fails (exit 127) on a fresh machine while it works in a developer's shell.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from .errors import ToolError


def own_bin() -> Path:
    """The bin/ folder of the Python running labgen (not resolved: a venv's python is a link)."""
    return Path(sys.executable).parent


def search_path() -> str:
    """PATH with labgen's own bin/ first, for programs that start other programs by name."""
    return os.pathsep.join([str(own_bin()), os.environ.get("PATH") or os.defpath])


def find(name: str, package: str) -> str:
    """The full path of `name`, beside labgen's Python first, then on PATH."""
    found = shutil.which(name, path=search_path())
    if found is None:
        raise ToolError(f"{name} is not installed beside labgen ({own_bin()}) nor on PATH: "
                        f"install it with '{own_bin() / 'python'} -m pip install {package}'")
    return found

"""The controller side of labgen_tree: compare in one call, send what differs as one archive,
install it in a second call. See the module (library/labgen_tree.py) for the options."""

from __future__ import annotations

import json
import os
import tarfile
import tempfile

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

MODULE = "labgen_tree"
PASSED_ON = ("validate", "service", "change", "restart", "announce", "folders", "enable", "disable",
             "commands", "password", "backup")


class ActionModule(ActionBase):
    TRANSFERS_FILES = False  # only the archive, and only when something differs
    _VALID_ARGS = frozenset(("tree", "manifest", "files", "dirs", *PASSED_ON))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        tree, manifest = args.pop("tree", None), args.pop("manifest", None)
        if manifest:
            try:
                with open(manifest, encoding="utf-8") as handle:
                    wanted = json.load(handle)
            except (OSError, ValueError) as exc:
                raise AnsibleActionFail(f"cannot read the manifest {manifest}: {exc}") from exc
            args.setdefault("files", wanted["files"])
            args.setdefault("dirs", wanted["dirs"])
        state = self._execute_module(MODULE, module_args={**args, "prepare": True},
                                     task_vars=task_vars)
        if state.get("failed") or not (state.get("files") or state.get("dirs")):
            return {**result, **state}
        if self._task.check_mode:
            return {**result, **state, "changed": True}
        if not tree:
            raise AnsibleActionFail(f"{len(state['files'])} files differ and no tree to send them from")
        fd, local = tempfile.mkstemp(prefix="labgen-", suffix=".tar")  # 0600: it holds keys
        os.close(fd)
        try:
            pack(tree, state["dirs"] + state["files"], local)
            remote = self._connection._shell.join_path(state["stage"], "files.tar")
            self._transfer_file(local, remote)
        finally:
            os.unlink(local)
        done = self._execute_module(MODULE, module_args={**args, "archive": remote, "announce": False},
                                    task_vars=task_vars)
        return {**result, **done}


def pack(tree: str, paths: list[str], archive: str) -> None:
    """The folders and files that differ, with the tree's modes, owned by root."""
    with tarfile.open(archive, "w") as tar:
        for path in paths:
            info = tar.gettarinfo(os.path.join(tree, path.lstrip("/")), arcname=path.lstrip("/"))
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            if info.isfile():
                with open(os.path.join(tree, path.lstrip("/")), "rb") as handle:
                    tar.addfile(info, handle)
            else:
                tar.addfile(info)

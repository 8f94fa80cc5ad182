"""The controller side of labgen_tree: compare in one call, send what differs as one archive,
install it in a second call. See the module (library/labgen_tree.py) for the options.

The module runs on the host's own python3, which whoever is root there (a class's student) can
replace, so its answer is hostile input: this side packs only paths of the manifest it sent,
each resolved inside the build tree, and the archive travels into the host as a stream on the
standard input of one command (`podman exec -i`, `docker exec -i`, ssh) into a folder this side
names. Nothing on this machine is ever read or written through a path the host chose, and no
link of the host's is followed here (no `podman mount`, no copy by path).
"""

from __future__ import annotations

import io
import json
import os
import secrets
import tarfile

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

MODULE = "labgen_tree"
PASSED_ON = ("validate", "service", "change", "restart", "announce", "folders", "enable", "disable",
             "commands", "password", "backup")
# The module clears folders of this prefix left by a deploy that was cut off (library/labgen_tree.py).
STAGE_PREFIX = "~/.labgen-deploy-"
SHOWN = 3  # paths named in a refusal


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
        state = self._execute_module(MODULE, module_args=args, task_vars=task_vars)
        if state.get("failed"):
            return {**result, **state}
        paths = asked(state, args.get("dirs") or {}, "dirs") + asked(state, args.get("files") or {}, "files")
        if not paths:
            return {**result, **state}
        if self._task.check_mode:
            return {**result, **state, "changed": True}
        if not tree:
            raise AnsibleActionFail(f"{len(paths)} files differ and no tree to send them from")
        stage = STAGE_PREFIX + secrets.token_hex(8)
        sent = self._low_level_execute_command(
            f"umask 077 && mkdir {stage} && cat > {stage}/files.tar", in_data=pack(tree, paths))
        if sent["rc"] != 0:
            raise AnsibleActionFail(f"sending the files failed (exit status {sent['rc']})")
        done = self._execute_module(MODULE, module_args={**args, "archive": f"{stage}/files.tar",
                                                         "announce": False}, task_vars=task_vars)
        return {**result, **done}


def asked(state: dict, sent: dict, key: str) -> list[str]:
    """The paths of state[key] (the host's answer), each one the manifest named; any other path
    fails the host, with nothing sent."""
    answer = state.get(key) or []
    if not isinstance(answer, list) or not all(isinstance(p, str) for p in answer):
        raise AnsibleActionFail(f"the host's answer is not a list of paths ({key}); nothing was sent")
    foreign = [p for p in answer if p not in sent]
    if foreign:
        shown = ", ".join(ascii(p) for p in foreign[:SHOWN]) + (" ..." if len(foreign) > SHOWN else "")
        raise AnsibleActionFail(f"the host asked for {len(foreign)} path(s) outside its manifest "
                                f"({shown}); nothing was sent")
    return answer


def inside(tree: str, path: str) -> str:
    """path (absolute on the host) as a file of the tree, resolved, never outside it."""
    root = os.path.realpath(tree)
    local = os.path.realpath(os.path.join(root, path.lstrip("/")))
    if not path.startswith("/") or os.path.commonpath([root, local]) != root or local == root:
        raise AnsibleActionFail(f"{ascii(path)} does not lie inside the build tree {tree}")
    return local


def pack(tree: str, paths: list[str]) -> bytes:
    """The folders and files that differ, with the tree's modes, owned by root, as a tar archive
    in memory (it holds private keys: it never touches this machine's disk)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in paths:
            local = inside(tree, path)
            info = tar.gettarinfo(local, arcname=path.lstrip("/"))
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            if info.isfile():
                with open(local, "rb") as handle:
                    tar.addfile(info, handle)
            elif info.isdir():
                tar.addfile(info)
            else:
                raise AnsibleActionFail(f"{ascii(path)} in the build tree is neither a file nor a folder")
    return buffer.getvalue()

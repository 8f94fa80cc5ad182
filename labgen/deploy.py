"""Run playbooks/site.yml with ansible-runner and turn its events into one line per task.

ansible-runner does not raise when a play fails: the status, the return code and the failed
events are checked here and become a DeployError that names the host, the task and the message.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from . import tools
from .errors import DeployError, ToolError
from .render import data_dir
from .text import printable

PLAYBOOK = "site.yml"
# The engine's connection as labgen uses it: Podman's own plugin copies every module into the
# container before running it (no pipelining); playbooks/connection_plugins/labgen_podman.py
# extends it to send modules on stdin, one `podman exec` per task.
CONNECTIONS = {"containers.podman.podman": "labgen_podman"}


@dataclass
class Progress:
    """Follows ansible-runner's events: one line per host and task, as each one finishes.

    With the free strategy hosts run their tasks independently, so a line names both."""

    log: callable = print
    # A class's run has thousands of tasks: show only what changed or failed, as it happens.
    changes_only: bool = False
    failures: list[tuple[str, str, str]] = field(default_factory=list)
    count: int = 0
    # (host, path, where it went): entries of include folders labgen does not own, moved aside
    moved: list[tuple[str, str, str]] = field(default_factory=list)

    def event(self, data: dict) -> bool:
        """Shows the event; says whether ansible-runner keeps it on disk: only the stats, which
        runner.stats reads back (one JSON file per event cost a class of 30 several seconds)."""
        kind = data.get("event", "")
        if not kind.startswith("runner_on_") or kind in ("runner_on_start", "runner_on_skipped"):
            return kind == "playbook_on_stats"
        info = data.get("event_data", {})
        task, host, res = info.get("task", ""), info.get("host", "?"), info.get("res") or {}
        outcome = kind.removeprefix("runner_on_")
        if outcome == "ok" and res.get("changed"):
            outcome = "changed"
        if outcome in ("failed", "unreachable") and not info.get("ignore_errors"):
            self.failures.append((host, task, _message(res)))
        if outcome == "ok" and self.changes_only:
            return False
        self.count += 1
        self.log(f"  {host:<12} {outcome:<9} {task}")
        for entry in res.get("moved") or [] if outcome == "changed" else []:
            if isinstance(entry, dict) and entry.get("to"):
                self.moved.append((host, str(entry.get("path")), str(entry["to"])))
                self.log(f"  {host:<12} {'moved':<9} {_printable(entry.get('path'))}: labgen does not "
                         f"own it; now {_printable(entry['to'])}")
        return False


def _message(res: dict) -> str:
    items = [r for r in res.get("results") or [] if isinstance(r, dict) and r.get("failed")]
    if items:  # a loop: the failed items say what went wrong
        return "; ".join(f"{r.get('item', {}).get('path', '') if isinstance(r.get('item'), dict) else ''}"
                         f" {_message(r)}".strip() for r in items[:3])
    text = res.get("msg") or ""
    stderr = (res.get("stderr") or "").strip()
    if stderr and stderr not in text:
        text = f"{text}: {stderr}" if text else stderr
    # A host's words (its module answers, its stderr): escaped before any terminal or log sees them.
    return _printable(" ".join(str(text).split())) or "no message"


def _printable(text) -> str:
    """Text from a host, for the terminal: control characters escaped, cut to a sane length."""
    return printable(str(text), keep_newlines=False)


def run_playbook(inventory: Path, artifacts: Path, extravars: dict, *, envvars: dict | None = None,
                 verbose: bool = False, log=print, moved: list | None = None, tolerate: bool = False,
                 changes_only: bool = False) -> dict:
    """Run site.yml; return ansible-runner's stats (ok, changed, failures per host). moved, when
    given, receives (host, path, where it went) of each include-folder entry moved aside.
    tolerate: a host's failure does not raise (the others finished: the free strategy); the
    stats then hold "failed": {host: "task 'name' failed: message"}. changes_only: log only
    the tasks that changed or failed."""
    import ansible_runner  # slow to import: only the commands that deploy need it

    try:  # ansible-runner starts it by name, through the PATH given below
        tools.find("ansible-playbook", "ansible")
    except ToolError as exc:
        raise DeployError(str(exc)) from None
    progress = Progress(log=log, changes_only=changes_only, moved=moved if moved is not None else [])
    artifacts.mkdir(parents=True, exist_ok=True)
    os.chmod(artifacts, 0o700)
    env = {"ANSIBLE_NOCOLOR": "1", "ANSIBLE_PIPELINING": "True", "ANSIBLE_HOST_KEY_CHECKING": "False",
           "ANSIBLE_PYTHON_INTERPRETER": "/usr/bin/python3",
           # Ansible starts its helpers (and the engine's CLI) by name.
           "PATH": tools.search_path(), **(envvars or {})}
    runner = ansible_runner.run(
        private_data_dir=str(artifacts), project_dir=str(data_dir("playbooks")), playbook=PLAYBOOK,
        inventory=str(inventory), extravars=extravars, envvars=env, forks=_forks(),
        quiet=not verbose, event_handler=progress.event, rotate_artifacts=3,
        suppress_env_files=True)
    if runner.status == "canceled":  # Ctrl-C: ansible-runner stops the playbook and reports it
        raise KeyboardInterrupt
    if tolerate and progress.failures:
        stats = runner.stats or {}
        stats["failed"] = {host: f"task '{task}' failed: {msg}" for host, task, msg in progress.failures
                           if not msg.startswith("All items completed")}
        return stats
    if runner.status != "successful" or runner.rc != 0:
        if progress.failures:
            lines = [f"{host}: task '{task}' failed: {msg}" for host, task, msg in progress.failures
                     if not msg.startswith("All items completed")]
            raise DeployError("the playbook stopped:\n  " + "\n  ".join(lines[-4:]))
        raise DeployError(f"ansible-playbook ended with status {runner.status} (rc {runner.rc}); "
                          f"run again with -v to see Ansible's output")
    return runner.stats or {}


# Ansible's workers are processes, and each task of each host costs the controller's CPU
# (a fork, the module's start through the engine): more workers than a few per core only queue.
# Measured on 2 cores, a class of 10 (61 hosts): the first deploy took 98.5 s with 10 workers
# and 129.7 s with 50, a deploy that changes nothing 25.7 s with 5, 27.7 s with 10, 32.5 s with 50.
FORKS_PER_CORE = 5
MAX_FORKS = 50


def _forks() -> int:
    return max(2, min(MAX_FORKS, FORKS_PER_CORE * (os.cpu_count() or 1)))


def engine_inventory(parts: list[tuple], folder: Path, connection: str) -> Path:
    """One inventory over one or more labs (a class: every student's and the lab root), with the
    engine's connection for every host. parts: (a lab's rendered inventory, its build folder, a
    prefix for its host names or "", and optionally variables for each of its hosts: another
    machine's engine). Each host carries its lab's build folder and variables (so one playbook
    run deploys every lab), and each lab is also a group of its own, beside the kinds' groups.
    (The connection not as an extra variable: that would also win for the tasks delegated to
    this machine.)"""
    children: dict = {}
    for rendered, build, prefix, *more in parts:
        extra = more[0] if more else {}
        doc = yaml.safe_load(rendered.read_text(encoding="utf-8"))["all"]
        shared = doc.get("vars") or {}
        lab = children.setdefault(lab_group(shared.get("labgen_lab") or prefix or "lab"), {"hosts": {}})
        for group, members in (doc.get("children") or {}).items():
            for host, hostvars in ((members or {}).get("hosts") or {}).items():
                name = f"{prefix}-{host}" if prefix else host
                # (A host without variables here is a member of a second group: labgen_after.)
                children.setdefault(group, {"hosts": {}})["hosts"][name] = hostvars and {
                    **shared, **hostvars, **extra, "labgen_build": str(build.resolve()),
                    "labgen_manifest": host}
                lab["hosts"][name] = None
    # A container that was restarted has a new MAC: it tells the others (site.yml).
    doc = {"all": {"vars": {"ansible_connection": CONNECTIONS.get(connection, connection),
                            "labgen_announce": True}, "children": children}}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "inventory.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def lab_group(name: str) -> str:
    """A lab's group in a deployment's inventory (Ansible's group names take no '-')."""
    return "lab_" + name.replace("-", "_")


def changed(stats: dict) -> int:
    return sum((stats.get("changed") or {}).values())

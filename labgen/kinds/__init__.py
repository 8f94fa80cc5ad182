"""What each kind of lab host is, one record per kind: its Debian packages, its systemd unit, the
server's own test of its config, how a changed config is taken in (reload or restart), the
include folders labgen owns, and the binaries the grader calls on it. The rest of labgen reads
these records (the image, the render, the inventory the roles read, the config sandbox, the
lifecycle and the checks), so a new kind of host is one module here, its templates and its
Ansible role (README: "Host kinds").

A host's kind is its web server's software, else its role (spec.Host). The modules may import
what they render from (hostpaths, dnszone, signing, parentzone), never render itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

# A host's files: (lab, host, render's Material, text) -> absolute path -> (content, mode), where
# text(template, **values) renders one of labgen/templates with render's values (and these).
Files = Callable[..., dict[str, tuple[bytes, int]]]


def _none(*_) -> dict:
    return {}


@dataclass(frozen=True)
class Kind:
    name: str  # the host's software (a web server) or role; also its inventory group
    title: str  # for people
    role: str  # the Ansible role that deploys it (labgen/playbooks/roles/<role>)
    packages: tuple[str, ...] = ()  # Debian packages (the lab image holds every kind's)
    unit: str = ""  # the systemd service it runs; "": none
    # Units the packages bring that the image disables (every kind's own starts only where it runs).
    disabled: tuple[str, ...] = ()
    # The server's own test of the rendered config, with absolute paths (labgen.vantage): run by
    # the deploy before any reload, in `labgen check`'s sandbox and by the host checks. {prepare}
    # stands for what must run first on the host (BIND's seed when it signs: labgen.signing).
    config_test: str = ""
    # What the role does before that test, for `labgen check`'s sandbox ({fqdn}, {modules}).
    setup: str = ""
    change: str = "reload"  # what the unit gets when its files changed: reload or restart
    folders: tuple[str, ...] = ()  # include folders whose entries labgen owns (labgen.includes)
    tools: tuple[str, ...] = ()  # binaries the grader calls on it, compared with the image's
    # Its files by what they are, (lab, host) -> name -> path: the names exercises use (render.host_paths).
    paths: Callable[..., dict[str, str]] = _none
    files: Files = _none  # what its tree holds beside the lab CA and SSH (render.host_files)


from . import apache, bind, client, nginx, unbound  # noqa: E402 - the records need Kind

# In the order the image disables their units (part of the image's cache key).
KINDS: dict[str, Kind] = {k.name: k for k in (nginx.KIND, apache.KIND, bind.AUTHDNS, bind.PARENT,
                                              unbound.KIND, client.CLIENT, client.PROBE)}
WEB = tuple(k.name for k in (nginx.KIND, apache.KIND))  # the kinds a lab file's servers may be


def of(host) -> Kind:
    """The kind of a spec.Host."""
    return KINDS[host.software or host.role]


def hostvars(kind: Kind, prepare: str = "") -> dict[str, str]:
    """What the playbook reads of a host's kind (site.yml, roles/common): its role, the config
    test it runs before any reload (after prepare, ending in '&& '), its unit and how a change
    reaches it."""
    return {"labgen_role": kind.role, "labgen_validate": kind.config_test.format(prepare=prepare),
            "labgen_service": kind.unit, "labgen_change": kind.change}

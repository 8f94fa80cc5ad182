"""A kind of lab host as one record (the registry is labgen.kinds)."""

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
    role: str  # its inventory group (playbooks/group_vars/<role>.yml); the parent host is in authdns
    packages: tuple[str, ...] = ()  # Debian packages (the lab image holds every kind's)
    unit: str = ""  # the systemd service it runs; "": none
    # Units the packages bring that the image disables (every kind's own starts only where it runs).
    disabled: tuple[str, ...] = ()
    # The server's own test of the rendered config, with absolute paths (labgen.vantage): run by
    # the deploy before any reload, in `labgen check`'s sandbox and by the host checks. {prepare}
    # stands for what must run first on the host (BIND's seed when it signs: labgen.signing;
    # labgen-certs' in an ACME lab: labgen.acme).
    config_test: str = ""
    prepare: Callable[..., str] = lambda lab: ""  # lab -> what {prepare} stands for, ending in '&& '
    # What the deploy does before that test, as a person types it, for `labgen check`'s sandbox
    # ({fqdn}, {modules}); the deploy itself makes the links of enable and removes those of disable.
    setup: str = ""
    # Names the deploy enables and disables in Debian *-enabled folders (folder -> names, {fqdn}
    # for the host's name), with a2enmod's and a2dissite's rules (playbooks/library/labgen_tree.py).
    enable: tuple[tuple[str, tuple[str, ...]], ...] = ()
    disable: tuple[tuple[str, tuple[str, ...]], ...] = ()
    commands: tuple[str, ...] = ()  # what the deploy checks is on the host's PATH (the exercises' tools)
    # lab -> a command run once every host of the lab runs (site.yml); "": none.
    after: Callable[..., str] = lambda lab: ""
    change: str = "reload"  # what the unit gets when its files changed: reload or restart
    folders: tuple[str, ...] = ()  # include folders whose entries labgen owns (labgen.includes)
    tools: tuple[str, ...] = ()  # binaries the grader calls on it, compared with the image's
    # Its files by what they are, (lab, host) -> name -> path: the names exercises use (render.host_paths).
    paths: Callable[..., dict[str, str]] = _none
    files: Files = _none  # what its tree holds beside the lab CA and SSH (render.host_files)
    # (lab, host) -> the DNS zones its server must have loaded; `labgen status` asks each.
    zones: Callable[..., tuple[str, ...]] = lambda lab, host: ()

    @property
    def own_test(self) -> str:
        """The config test alone, as a person runs it on the host (what the deploy runs first is
        the deploy's)."""
        return self.config_test.format(prepare="")

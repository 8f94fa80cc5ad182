"""labgen's checks of a live lab: testinfra tests, one module per standard.

Every check carries its id, title, the standard it checks, why it matters, how to fix it and a
level (required, recommended, informational). Expected values come from the Lab model and its
profile, never retyped. They run as `labgen verify`, or as plain pytest:

    pytest --pyargs labgen.checks -p labgen.checks.plugin --lab-file lab.yml
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Callable

LEVELS = ("required", "recommended", "informational")
# What a check depends on beyond itself. When one of these is missing (the server does not
# answer, its name does not resolve), the check is not run: the report names that cause once.
NEEDS = {
    "dns": "looks the server's name up through the lab resolver",
    "http": "gets an HTTP answer from the server at its address on port 80",
    "tls": "completes a TLS handshake with the server at its address on port 443",
    "https": "fetches pages by name as a browser does (the name resolves, the server answers)",
    "tools": "runs the distribution's own tools on the host (compared with the lab image's first)",
}

# A check that does not apply to a server of this lab (renegotiation under TLS 1.3 only,
# HTTP/3 where the lab does not enable it) is skipped with this prefix; reports show it as N/A.
NOT_APPLICABLE = "not applicable"


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    standard: str
    level: str
    why: str
    fix: str
    needs: tuple[str, ...] = ()
    # Fetches pages by name with the lab CA trusted, as a browser does: a certificate the
    # browser refuses fails it. True for every check that needs "https".
    fetches: bool = False
    # (lab, server or None) -> None when the check applies, else the reason it does not.
    applies: Callable[..., str | None] | None = field(default=None, compare=False, repr=False)

    def not_applicable(self, lab, server) -> str | None:
        return self.applies(lab, server) if self.applies else None

    def as_dict(self) -> dict:
        """What a report shows of the check (everything but the `applies` function)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "applies"}

    @property
    def group(self) -> str:
        return self.id.split(".")[0]


def with_acme(reason: str) -> Callable[..., str | None]:
    """`applies` of a check about certificates from the lab's ACME CA (certificates: acme);
    reason: what a lab-CA lab has instead."""
    return lambda lab, server: None if lab.certificates.acme else reason


def check(id: str, title: str, *, standard: str, why: str, fix: str, level: str = "required",
          needs: tuple[str, ...] = (), fetches: bool = False,
          applies: Callable[..., str | None] | None = None):
    """Mark a test function as a labgen check; `needs` names its prerequisites (NEEDS),
    `fetches` marks one that fetches as a browser without needing "https" (HTTP/3 over UDP),
    `applies` says when the property does not exist in the lab at hand."""
    if level not in LEVELS:
        raise ValueError(f"{id}: level {level!r} is not one of {LEVELS}")
    if unknown := set(needs) - set(NEEDS):
        raise ValueError(f"{id}: needs {sorted(unknown)} not among {sorted(NEEDS)}")

    def mark(fn):
        fn.labgen_check = Check(id, title, standard, level, why, fix, tuple(needs),
                                fetches or "https" in needs, applies)
        return fn

    return mark

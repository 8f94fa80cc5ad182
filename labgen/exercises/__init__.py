"""Break-and-fix exercises: the catalogue (catalogue.yml) and what each exercise means.

An exercise is data: the task a student reads (the symptom), hints from vague to precise, the
fault labgen injects into the live hosts, the checks the fault makes fail (selectors over the
checks' own metadata, so the expected failures are derived, not retyped), a model student fix
(shell on the live hosts; CI runs it) and the reference fix a trainer reads.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from .. import kinds
from ..spec import NO_SECONDARY, Host, Lab

LEVELS = ("beginner", "intermediate", "advanced")
STANDARDS = ("TLS", "HTTPS", "HSTS", "security headers", "certificates", "DNSSEC", "DANE", "CAA",
             "IPv6", "host")
ROLES = ("authdns", "resolver", "client")
SOFTWARE = kinds.WEB
CERTIFICATES = ("expired", "wrong-name", "new-key")
MAX_HINTS = 3
# What an exercise may require of a lab beyond its profile: name -> (test, reason when absent).
REQUIRES = {
    "http3": (lambda lab, server: server is not None and lab.http3 and server.software == "nginx"
              and lab.target.has("nginx_http3"), "the lab does not enable HTTP/3 on nginx"),
    "http2_directive": (lambda lab, server: lab.target.has("nginx_http2_directive"),
                        "the target's nginx has no http2 directive (before 1.25.1)"),
    "online_signing": (lambda lab, server: lab.dnssec.signer == "bind",
                       "BIND does not sign the zone (dnssec.signer: bind)"),
    "ksk_zsk": (lambda lab, server: lab.dnssec.keys == "ksk-zsk",
                "the zone has one combined key (dnssec.keys: csk), not a KSK and a ZSK"),
    "ecdsa": (lambda lab, server: lab.dnssec.algorithm == "ECDSAP256SHA256",
              "the zone is not signed with ECDSAP256SHA256 (dnssec.algorithm)"),
    "nsec3": (lambda lab, server: lab.dnssec.denial == "nsec3",
              "the zone denies names with NSEC (dnssec.denial), not NSEC3"),
    "secondary": (lambda lab, server: bool(lab.secondary), NO_SECONDARY),
    "acme": (lambda lab, server: lab.certificates.acme,
             "the lab CA issues the certificates (certificates: lab-ca), not the lab's ACME CA"),
    "csk": (lambda lab, server: lab.dnssec.keys == "csk",
            "the zone has a KSK and a ZSK (dnssec.keys: ksk-zsk), not one combined key"),
}

Key = tuple[str, str, str]  # (check id, target, variant), as verify reports an outcome


@dataclass(frozen=True)
class Row:
    """One applicable outcome of a verify run, with what the selectors match on."""

    check: str
    needs: tuple[str, ...]
    fetches: bool
    level: str
    target: str
    variant: str

    @property
    def key(self) -> Key:
        return self.check, self.target, self.variant


@dataclass(frozen=True)
class Step:
    """One thing done on one host: a shell script (run) or a certificate put in place."""

    host: str  # nginx | apache (the lab's server of that software) | authdns | resolver | client
    run: str = ""
    files: tuple[str, ...] = ()  # names from render.host_paths, or absolute paths: what it changes
    certificate: str = ""  # one of CERTIFICATES, for the ECDSA certificate of the web server `on`
    # Faults only: False leaves the running service alone (a config that would not load). A
    # student step never has labgen reload anything: it reloads what it changed itself.
    reload: bool = True


@dataclass(frozen=True)
class Selector:
    """Which outcomes a fault makes fail: a check id (glob), on which target, which variant,
    or every check with a prerequisite (needs) or that fetches as a browser."""

    check: str = "*"
    target: str = ""  # "" (the exercise's server and lab-wide checks) | server | lab | all
    variant: str = ""
    needs: str = ""
    fetches: bool = False
    profile: str = ""  # only under this profile

    def covers(self, check_id: str, needs: tuple[str, ...], fetches: bool) -> bool:
        return (fnmatch.fnmatchcase(check_id, self.check) and (not self.needs or self.needs in needs)
                and (not self.fetches or fetches))

    def matches(self, row: Row, lab: Lab, server: str | None) -> bool:
        if self.profile and self.profile != lab.profile.name:
            return False
        where = self.target or ("default" if server else "all")
        targets = {"default": {server, "lab"}, "server": {server}, "lab": {"lab"}}.get(where)
        return ((targets is None or row.target in targets) and self.variant in row.variant
                and self.covers(row.check, row.needs, row.fetches))


@dataclass(frozen=True)
class Exercise:
    id: str
    title: str
    level: str
    standards: tuple[str, ...]
    task: str
    hints: tuple[str, ...]
    fix: str
    server: str | None  # the software of the web server it breaks; None: the lab's DNS
    profiles: tuple[str, ...]
    requires: tuple[str, ...]
    fault: tuple[Step, ...]
    breaks: tuple[Selector, ...]
    student: tuple[Step, ...]
    # What the fault also makes fail that grading does not ask back: recommended checks that
    # compare a value with the lab file's, where a student may choose another valid value.
    also_breaks: tuple[Selector, ...] = ()
    # A drill (drill.py): the key roll the student does (zsk, ksk, csk), graded by the probe's
    # watch and the DNSKEY set; it has no fault and breaks nothing.
    drill: str = ""

    def server_host(self, lab: Lab) -> Host | None:
        return next((h for h in lab.web if h.software == self.server), None) if self.server else None

    def not_applicable(self, lab: Lab) -> str | None:
        """Why the exercise cannot run on this lab, or None."""
        if self.profiles and lab.profile.name not in self.profiles:
            return f"it needs the {' or '.join(self.profiles)} profile; this lab is {lab.profile.name}"
        server = self.server_host(lab)
        if self.server and server is None:
            return f"it needs a web server with software {self.server}; this lab has none"
        for name in self.requires:
            test, reason = REQUIRES[name]
            if not test(lab, server):
                return reason
        return None

    def expected(self, lab: Lab, rows: list[Row]) -> set[Key]:
        """The outcomes the fault makes fail, among a run's applicable outcomes."""
        server = self.server_host(lab)
        name = server.name if server else None
        return {r.key for r in rows for s in self.breaks if s.matches(r, lab, name)}

    def side_effects(self, lab: Lab, rows: list[Row]) -> set[Key]:
        """The outcomes the fault also makes fail, which grading leaves alone (also_breaks)."""
        server = self.server_host(lab)
        name = server.name if server else None
        return {r.key for r in rows for s in self.also_breaks if s.matches(r, lab, name)}

    def covers(self, check_id: str, needs: tuple[str, ...], fetches: bool) -> bool:
        """Whether a check is one this exercise's grading needs (whatever the target)."""
        return any(s.covers(check_id, needs, fetches) for s in self.breaks)


def host_for(lab: Lab, name: str) -> Host:
    """The lab's host of a role, or its web server of a software."""
    if name in ROLES:
        return lab.role(name)
    return next(h for h in lab.web if h.software == name)


class CatalogueError(ValueError):
    """catalogue.yml is malformed (a labgen bug, caught by the unit tests)."""


def _selector(entry, where: str) -> Selector:
    if isinstance(entry, str):
        return Selector(check=entry)
    unknown = set(entry) - set(Selector.__dataclass_fields__)
    if unknown:
        raise CatalogueError(f"{where}: unknown selector keys {sorted(unknown)}")
    return Selector(**entry)


def _step(entry: dict, where: str, student: bool = False) -> Step:
    unknown = set(entry) - set(Step.__dataclass_fields__)
    if unknown:
        raise CatalogueError(f"{where}: unknown step keys {sorted(unknown)}")
    if student and {"reload", "files"} & set(entry):
        raise CatalogueError(f"{where}: a student step takes no reload or files: labgen reloads "
                             "nothing after it, the step reloads what it changed itself")
    step = Step(**{**entry, "files": tuple(entry.get("files", ()))}, **({"reload": False} if student else {}))
    if step.host not in SOFTWARE + ROLES:
        raise CatalogueError(f"{where}: host {step.host!r} is not one of {SOFTWARE + ROLES}")
    if bool(step.run) == bool(step.certificate):
        raise CatalogueError(f"{where}: a step has either run or certificate")
    if step.certificate and (step.certificate not in CERTIFICATES or step.host not in SOFTWARE):
        raise CatalogueError(f"{where}: certificate {step.certificate!r} on {step.host!r}")
    return step


def _exercise(doc: dict) -> Exercise:
    where = f"exercise {doc.get('id')!r}"
    if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", str(doc.get("id", ""))):
        raise CatalogueError(f"{where}: the id must be a slug")
    if doc.get("level") not in LEVELS:
        raise CatalogueError(f"{where}: level must be one of {LEVELS}")
    if not doc.get("standards") or set(doc["standards"]) - set(STANDARDS):
        raise CatalogueError(f"{where}: standards must be among {STANDARDS}")
    if not 1 <= len(doc.get("hints", ())) <= MAX_HINTS:
        raise CatalogueError(f"{where}: give 1 to {MAX_HINTS} hints")
    texts = [doc.get("title"), doc.get("task"), doc.get("fix"), *doc.get("hints", ())]
    if not all(isinstance(t, str) and t.strip() for t in texts):
        raise CatalogueError(f"{where}: title, task, fix and every hint must be text")
    if doc.get("server") not in (None, *SOFTWARE) or set(doc.get("requires", ())) - set(REQUIRES):
        raise CatalogueError(f"{where}: server or requires")
    try:
        return Exercise(
            id=doc["id"], title=doc["title"], level=doc["level"], standards=tuple(doc["standards"]),
            task=doc["task"].strip(), hints=tuple(h.strip() for h in doc["hints"]),
            fix=doc["fix"].strip(), server=doc.get("server"), profiles=tuple(doc.get("profiles", ())),
            requires=tuple(doc.get("requires", ())),
            fault=tuple(_step(s, f"{where} fault") for s in doc["fault"]),
            breaks=tuple(_selector(s, f"{where} breaks") for s in doc["breaks"]),
            student=tuple(_step(s, f"{where} student", student=True) for s in doc["student"]),
            also_breaks=tuple(_selector(s, f"{where} also_breaks") for s in doc.get("also_breaks", ())),
            drill=_drill(doc, where))
    except KeyError as exc:
        raise CatalogueError(f"{where}: {exc.args[0]} is missing") from None


def _drill(doc: dict, where: str) -> str:
    from .drill import ROLLS

    roll = doc.get("drill", "")
    if roll and (roll not in ROLLS or doc["fault"] or doc["breaks"]
                 or "online_signing" not in doc.get("requires", ())):
        raise CatalogueError(f"{where}: a drill rolls one of {ROLLS}, on a lab BIND signs "
                             "(requires: online_signing), with no fault and no breaks")
    if not roll and not (doc["fault"] and doc["breaks"]):
        raise CatalogueError(f"{where}: an exercise has a fault and the checks it breaks")
    return roll


@lru_cache(maxsize=1)
def catalogue() -> dict[str, Exercise]:
    """Every exercise, by id, in the catalogue's order."""
    docs = yaml.safe_load((Path(__file__).parent / "catalogue.yml").read_text(encoding="utf-8"))
    found: dict[str, Exercise] = {}
    for doc in docs:
        exercise = _exercise(doc)
        if exercise.id in found:
            raise CatalogueError(f"exercise {exercise.id!r} is listed twice")
        found[exercise.id] = exercise
    return found

"""The student's workstation and labgen's probe (labgen.vantage): no server, the lab's trust
anchors and the tools that ask the lab."""

from __future__ import annotations

from .. import acme
from ..hostpaths import CLIENT_DIR, PROGRAM, PUBLIC
from .kind import Kind

TOOLS = ("curl", "ldnsutils", "bind9-dnsutils", "openssl", "iputils-ping")
# What a student's exercises (and the grader) run there; the deploy checks that each is installed.
COMMANDS = ("dig", "delv", "curl", "openssl", "ldns-dane")
# The probe's own validating cache (templates/dns/unbound.conf.j2), which drills ask through:
# the lab resolver is the student's, and a flush there would hide what a roll did to caches.
GRADER_CACHE = "/etc/labgen/grader-unbound.conf"
GRADER_CACHE_PORT = 5300


def paths(lab, host) -> dict[str, str]:
    return {"anchor": f"{CLIENT_DIR}/{lab.anchor_domain}.ds"}


def files(lab, host, m, text) -> dict[str, tuple[bytes, int]]:
    tree = {paths(lab, host)["anchor"]: (m.anchor_line.encode(), PUBLIC),
            f"{CLIENT_DIR}/trust-anchors.conf": (m.delv_anchors.encode(), PUBLIC)}
    if lab.certificates.acme:  # the ACME CA's root, trusted once the CA runs (labgen up)
        tree[acme.TRUST_PROGRAM] = (acme.trust_script(lab).encode(), PROGRAM)
    return tree


def probe_files(lab, host, m, text) -> dict[str, tuple[bytes, int]]:
    return {**files(lab, host, m, text),
            GRADER_CACHE: text("dns/unbound.conf.j2", grader_cache=True, grader_cache_port=GRADER_CACHE_PORT,
                               anchor_path=paths(lab, host)["anchor"])}


def after(lab) -> str:
    """Once the lab runs: trust the ACME CA's root, which pebble made at its start."""
    return acme.TRUST_PROGRAM if lab.certificates.acme else ""


CLIENT = Kind(name="client", title="the student's workstation", role="client", packages=TOOLS,
              commands=COMMANDS, paths=paths, files=files, after=after)
PROBE = Kind(name="probe", title="labgen's probe", role="probe", packages=TOOLS, commands=COMMANDS,
             tools=("/usr/bin/curl", "/usr/bin/dig", "/usr/bin/delv", "/usr/bin/openssl",
                    "/usr/bin/sha256sum", "/usr/bin/ldns-dane"), paths=paths, files=probe_files, after=after)

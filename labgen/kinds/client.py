"""The student's workstation and labgen's probe (labgen.vantage): no server, the lab's trust
anchors and the tools that ask the lab (roles/client, roles/probe)."""

from __future__ import annotations

from ..hostpaths import CLIENT_DIR, PUBLIC
from .kind import Kind

TOOLS = ("curl", "ldnsutils", "bind9-dnsutils", "openssl", "iputils-ping")
# The probe's own validating cache (templates/dns/unbound.conf.j2), which drills ask through:
# the lab resolver is the student's, and a flush there would hide what a roll did to caches.
GRADER_CACHE = "/etc/labgen/grader-unbound.conf"
GRADER_CACHE_PORT = 5300


def paths(lab, host) -> dict[str, str]:
    return {"anchor": f"{CLIENT_DIR}/{lab.anchor_domain}.ds"}


def files(lab, host, m, text) -> dict[str, tuple[bytes, int]]:
    return {paths(lab, host)["anchor"]: (m.anchor_line.encode(), PUBLIC),
            f"{CLIENT_DIR}/trust-anchors.conf": (m.delv_anchors.encode(), PUBLIC)}


def probe_files(lab, host, m, text) -> dict[str, tuple[bytes, int]]:
    return {**files(lab, host, m, text),
            GRADER_CACHE: text("dns/unbound.conf.j2", grader_cache=True, grader_cache_port=GRADER_CACHE_PORT,
                               anchor_path=paths(lab, host)["anchor"])}


CLIENT = Kind(name="client", title="the student's workstation", role="client", packages=TOOLS,
              paths=paths, files=files)
PROBE = Kind(name="probe", title="labgen's probe", role="probe", packages=TOOLS,
             tools=("/usr/bin/curl", "/usr/bin/dig", "/usr/bin/delv", "/usr/bin/openssl",
                    "/usr/bin/sha256sum", "/usr/bin/ldns-dane"), paths=paths, files=probe_files)

"""The student's workstation and labgen's probe (labgen.vantage): no server, the lab's trust
anchors and the tools that ask the lab (roles/client, roles/probe)."""

from . import Kind

TOOLS = ("curl", "ldnsutils", "bind9-dnsutils", "openssl", "iputils-ping")

CLIENT = Kind(name="client", title="the student's workstation", role="client", packages=TOOLS)
PROBE = Kind(name="probe", title="labgen's probe", role="probe", packages=TOOLS,
             tools=("/usr/bin/curl", "/usr/bin/dig", "/usr/bin/delv", "/usr/bin/openssl",
                    "/usr/bin/sha256sum", "/usr/bin/ldns-dane"))

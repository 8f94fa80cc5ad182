"""What checks depend on: the lab resolver answering for the lab zone, and each web server
completing a TLS handshake at each of its addresses.

Each is probed once per session. When one is missing, every check that needs it is reported as
not run, with this one cause, instead of as many failures with as many unrelated fixes; and the
check costs nothing, so an unreachable server costs seconds, not a minute of timeouts.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..spec import Host, Lab
from .netutil import address, dig, endpoint, openssl_reason

PROBE_TIMEOUT = 10  # seconds: a handshake on a loaded 2-core machine is well under this


@dataclass(frozen=True)
class Cause:
    """A missing prerequisite: what was seen, and the one thing to fix first."""

    text: str
    fix: str


class NotRun(Exception):
    """Raised in a check's setup: its prerequisite is missing, so the check was not run."""

    def __init__(self, cause: Cause):
        super().__init__(cause.text)
        self.cause = cause


class Prerequisites:
    def __init__(self, lab: Lab, client):
        self.lab, self.client = lab, client
        self._seen: dict[tuple, Cause | None] = {}

    def missing(self, needs: tuple[str, ...], server: Host | None, family: str) -> Cause | None:
        """The first missing prerequisite of a check, or None when it can run."""
        if {"dns", "https"} & set(needs) and (cause := self._once(("dns",), self._dns)):
            return cause
        if server and {"tls", "https"} & set(needs):
            return self._once(("tls", server.name, family), lambda: self._tls(server, family))
        return None

    def _once(self, key: tuple, probe) -> Cause | None:
        if key not in self._seen:
            self._seen[key] = probe()
        return self._seen[key]

    def _dns(self) -> Cause | None:
        resolver = self.lab.role("resolver")
        _, answers, status = dig(self.client, self.lab.domain, "SOA")
        if status == "NOERROR" and answers:
            return None
        if not status:
            return Cause(f"the lab resolver ({resolver.fqdn}, {resolver.ipv4}) does not answer",
                         "Start the resolver (systemctl start unbound on the resolver host) and "
                         "check that it listens on port 53.")
        return Cause(f"the lab resolver answers {status} for {self.lab.domain}: no name of the lab "
                     "resolves", "Fix the zone or the resolver first: the DNSSEC checks say which "
                     "(a resolver that validates refuses a zone whose signatures do not match "
                     "its trust anchor).")

    def _tls(self, server: Host, family: str) -> Cause | None:
        result = self.client.run(
            f"timeout {PROBE_TIMEOUT} openssl s_client -brief -connect {endpoint(server, family)} "
            f"-servername {server.fqdn} </dev/null 2>&1")
        if result.rc == 0:
            return None
        out = result.stdout_bytes.decode("utf-8", "replace")
        where = f"{server.name} does not answer on {address(server, family)} port 443"
        fix = (f"Check that {server.software} runs (systemctl status on {server.name}) and "
               f"listens on port 443 over {family.replace('ip', 'IP')} (ss -ltn).")
        if result.rc == 124:
            return Cause(f"{where}: no answer in {PROBE_TIMEOUT} s", fix)
        if "Connection refused" in out:
            return Cause(f"{where}: connection refused (nothing listens there)", fix)
        if "alert" in out:  # a TLS answer, as netutil.accepted judges it
            return Cause(f"{server.name} refuses every TLS handshake on {address(server, family)} "
                         f"({openssl_reason(out)})",
                         f"Run the server's config test on {server.name} and check its TLS "
                         "protocols, certificate and key.")
        return Cause(f"{where}: the connection failed before TLS", fix)

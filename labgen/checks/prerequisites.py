"""What checks depend on: the lab resolver answering for the lab zone, and each web server
completing a TLS handshake at each of its addresses.

Each is probed once per session. When one is missing, every check that needs it is reported as
not run, with this one cause, instead of as many failures with as many unrelated fixes; and the
check costs nothing, so an unreachable server costs seconds, not a minute of timeouts.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import vantage
from ..errors import LabgenError
from ..spec import Host, Lab
from .netutil import FAMILIES, LAB_RESOLVER, address, dig, endpoint, openssl_reason

PROBE_TIMEOUT = 6  # seconds: a handshake on a loaded 2-core machine is well under this


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


def _listen_fix(server: Host, family: str, port: int) -> str:
    return (f"Check that {server.software} runs (systemctl status on {server.name}) and "
            f"listens on port {port} over {family.replace('ip', 'IP')} (ss -ltn).")


def parallel(probe, commands: list[str]) -> list[tuple[int, str]]:
    """(exit status, output) of each command, run side by side in one shell command on the
    probe: the slowest one sets the time, not their sum."""
    jobs = " ".join(f"( ( {c} ) >$d/{i} 2>&1; echo $? >$d/{i}.rc ) &" for i, c in enumerate(commands))
    marker = "@@labgen-job"
    script = (f"d=$(mktemp -d); {jobs} wait; for i in $(seq 0 {len(commands) - 1}); do "
              f"echo \"{marker} $i $(cat $d/$i.rc)\"; cat $d/$i; echo; done; rm -rf $d")
    text = probe.run(script).stdout_bytes.decode("utf-8", "replace")
    found: dict[int, tuple[int, str]] = {}
    for part in text.split(f"{marker} ")[1:]:
        head, _, body = part.partition("\n")
        index, rc = head.split()
        found[int(index)] = (int(rc), body.removesuffix("\n"))
    return [found.get(i, (-1, "")) for i in range(len(commands))]


class Prerequisites:
    def __init__(self, lab: Lab, probe):
        self.lab, self.probe = lab, probe
        self._seen: dict[tuple, Cause | None] = {}
        self._replaced: dict[str, list[str]] | str | None = None
        self._answers: dict[tuple, tuple[int, str]] | None = None

    def missing(self, needs: tuple[str, ...], server: Host | None, family: str,
                host: Host | None = None) -> Cause | None:
        """The first missing prerequisite of a check, or None when it can run. host: the host
        a check of the host itself runs on (the server, or a DNS host)."""
        if cause := self._once(("tools", vantage.PROBE), lambda: self._tools(self.lab.role(vantage.PROBE))):
            return cause
        if "tools" in needs and (host := host or server):
            if cause := self._once(("tools", host.name), lambda: self._tools(host)):
                return cause
        if {"dns", "https"} & set(needs) and (cause := self._once(("dns",), self._dns)):
            return cause
        if server and "http" in needs and (cause := self._answer("http", server, family)):
            return cause
        if server and {"tls", "https"} & set(needs):
            return self._answer("tls", server, family)
        return None

    def _answer(self, kind: str, server: Host, family: str) -> Cause | None:
        """Whether the server answers (HTTP on port 80 or TLS on 443) over the family. Every
        server's answers are asked for at once, in parallel: a stalled server costs one time
        limit (PROBE_TIMEOUT), not one per check or per address."""
        if self._answers is None:
            jobs = [(k, s, f) for s in self.lab.web for f in FAMILIES for k in ("tls", "http")]
            commands = [self._command(k, s, f) for k, s, f in jobs]
            self._answers = dict(zip([(k, s.name, f) for k, s, f in jobs], parallel(self.probe, commands)))
        rc, out = self._answers[(kind, server.name, family)]
        return self._http(server, family, rc, out) if kind == "http" else self._tls(server, family, rc, out)

    @staticmethod
    def _command(kind: str, server: Host, family: str) -> str:
        if kind == "tls":
            return (f"timeout {PROBE_TIMEOUT} openssl s_client -brief -connect {endpoint(server, family)} "
                    f"-servername {server.fqdn} </dev/null 2>&1")
        host = f"[{address(server, family)}]" if family == "ipv6" else address(server, family)
        return (f"curl -s -o /dev/null -w '%{{http_code}}' --max-time {PROBE_TIMEOUT} "
                f"-H 'Host: {server.fqdn}' http://{host}/")

    def _once(self, key: tuple, probe) -> Cause | None:
        if key not in self._seen:
            self._seen[key] = probe()
        return self._seen[key]

    def _tools(self, host: Host) -> Cause | None:
        if self._replaced is None:  # every host at once: one engine call
            try:
                self._replaced = vantage.replaced_in(self.lab)
            except (OSError, ValueError, LabgenError) as exc:
                self._replaced = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else "no answer"
        if isinstance(self._replaced, str):
            return Cause(f"the grader could not compare the tools on the hosts with the lab "
                         f"image's ({self._replaced})",
                         "Check that the lab is up (labgen status) and run labgen verify again.")
        changed = self._replaced.get(self.lab.container(host), [])
        if not changed:
            return None
        return Cause(f"the tools the grader runs on {host.name} are not the lab image's: "
                     f"{', '.join(changed)} changed or appeared",
                     f"Put the distribution's files back on {host.name} (remove what replaced "
                     "them; /etc/ld.so.preload must not exist): the grader judges a host only "
                     "with its own packaged tools.")

    def _dns(self) -> Cause | None:
        resolver = self.lab.role("resolver")
        # The checks that need "dns" fetch pages by name: the probe's curl resolves through the
        # lab resolver, so that is what must answer here.
        _, answers, status = dig(self.probe, self.lab.domain, "SOA", via=LAB_RESOLVER)
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

    def _http(self, server: Host, family: str, rc: int, out: str) -> Cause | None:
        if rc == 0 and out.strip() not in ("", "000"):
            return None
        where = f"{server.name} does not answer HTTP on {address(server, family)} port 80"
        fix = _listen_fix(server, family, 80)
        if rc == 28:  # curl: operation timed out
            return Cause(f"{where}: no answer in {PROBE_TIMEOUT} s", fix)
        if rc == 7:
            return Cause(f"{where}: connection refused (nothing listens there)", fix)
        return Cause(f"{where} (curl exit status {rc})", fix)

    def _tls(self, server: Host, family: str, rc: int, out: str) -> Cause | None:
        if rc == 0:
            return None
        where = f"{server.name} does not answer on {address(server, family)} port 443"
        fix = _listen_fix(server, family, 443)
        if rc == 124:
            return Cause(f"{where}: no answer in {PROBE_TIMEOUT} s", fix)
        if "Connection refused" in out:
            return Cause(f"{where}: connection refused (nothing listens there)", fix)
        if "alert" in out:  # a TLS answer, as netutil.accepted judges it
            return Cause(f"{server.name} refuses every TLS handshake on {address(server, family)} "
                         f"({openssl_reason(out)})",
                         f"Run the server's config test on {server.name} and check its TLS "
                         "protocols, certificate and key.")
        return Cause(f"{where}: the connection failed before TLS", fix)

"""Doing an exercise's steps on the live hosts, and putting back what its fault changed.

A fault's steps change named files (render.host_paths) on the hosts. Putting them back is the
same for every exercise: the rendered copy of each file goes back in (a file the render does not
have is removed), then the services of the touched hosts reload. That is `exercise solve`; a
`labgen up` does the same for the whole lab.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shlex
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from .. import acme, dnszone, kinds, pki
from ..engine import Engine
from ..errors import LabgenError
from ..lifecycle import retransfer, service
from ..render import host_paths  # the kind's paths (labgen.kinds)
from ..spec import Host, Lab
from . import Exercise, Step, host_for

# Where a certificate fault leaves what "the CA sent": the bad certificate and the good one.
FROM_CA = "/root/from-the-ca"
# Signatures that ended ten days ago: what a zone nobody re-signed looks like.
EXPIRED = "-P -s now-40d -e now-10d"
# Where the flag-day and stale-DS faults make their new key (the lab's own stays in its folder).
NEW_KEYS = "/root/new-keys"
# NSEC3 as an old guide had it: a salt and 10 extra iterations (RFC 9276 asks for neither).
LEGACY_NSEC3 = "-3 5ca1ab1e -H 10"
# Signatures that end in three days: a signer that stopped, days before anything fails.
EXPIRING = "-s now-1d -e now+259200"


class FaultError(LabgenError):
    exit_code = 6
    phase = "exercise"


def facts(lab: Lab, host: Host, server: Host | None) -> dict[str, str]:
    """The {placeholders} a step's script may use: the host's files by name, its names and
    addresses, the exercise's server, and on the name server the command that signs the zone."""
    found = {**host_paths(lab, host), "fqdn": host.fqdn, "name": host.name, "domain": lab.domain,
             "ipv4": str(host.ipv4), "ipv6": str(host.ipv6), "caa_issuer": lab.caa.issuer,
             "hsts": lab.hsts.header}
    if lab.parent:
        found["parent_ns"] = str(lab.parent.ns_ipv4)
    if lab.certificates.acme:  # the ACME CA's management interface (its root, its keys)
        found["acme_management"] = acme.management(lab)
    if server:
        found.update(server_name=server.name, server_fqdn=server.fqdn,
                     server_ipv4=str(server.ipv4), server_ipv6=str(server.ipv6))
    if host.role == "authdns":
        zone = host_paths(lab, host)["zone"]
        found.update(sign=dnszone.resign_command(lab, zone),
                     sign_expired=dnszone.resign_command(lab, zone, EXPIRED),
                     sign_expiring=dnszone.resign_command(lab, zone, EXPIRING),
                     sign_flag_day=dnszone.new_key_command(lab, zone, NEW_KEYS, same_algorithm=False),
                     sign_new_ksk=dnszone.new_key_command(lab, zone, NEW_KEYS, same_algorithm=True),
                     sign_legacy_nsec3=dnszone.resign_command(lab, zone, LEGACY_NSEC3))
    return found


def touched(lab: Lab, exercise: Exercise) -> set[tuple[str, str]]:
    """(host, path) of everything the fault changes: what solve puts back, what conflicts."""
    found = set()
    for step in exercise.fault:
        host = host_for(lab, step.host)
        paths = host_paths(lab, host)
        names = ("crt_ecdsa", "key_ecdsa") if step.certificate == "new-key" else ("crt_ecdsa",)
        for name in (names if step.certificate else step.files):
            found.add((host.name, paths.get(name, name)))
        if step.certificate:
            found.add((host.name, FROM_CA))
    return found


def run_steps(lab: Lab, build: Path, engine: Engine, exercise: Exercise, steps: tuple[Step, ...]) -> None:
    """Do the steps in order, then reload the services of the hosts they touched."""
    server = exercise.server_host(lab)
    reload: dict[str, Host] = {}
    for step in steps:
        host = host_for(lab, step.host)
        if step.certificate:
            _put_certificate(lab, build, engine, host, step.certificate)
        else:
            _sh(lab, engine, host, step.run.format_map(facts(lab, host, server)))
        if step.reload:
            reload[host.name] = host
    reload_services(lab, engine, reload.values())


def reload_services(lab: Lab, engine: Engine, hosts) -> None:
    """Web servers reload; the name server and the resolver restart. When the name server
    changed, the resolver restarts too: it must not answer from its cache."""
    hosts = {h.name: h for h in hosts}
    if any(h.role == "authdns" for h in hosts.values()):
        hosts.setdefault(lab.role("resolver").name, lab.role("resolver"))
    for host in sorted(hosts.values(), key=lambda h: h.role != "authdns"):  # ns1 before the resolver
        unit = service(host)
        if unit:
            verb = "reload-or-restart" if host.role == "web" else "restart"
            _sh(lab, engine, host, f"systemctl {verb} {unit}")


def restore(lab: Lab, build: Path, engine: Engine, exercise: Exercise) -> int:
    """Put back the rendered copy of every file the fault touched; returns how many."""
    hosts: dict[str, Host] = {}
    paths = sorted(touched(lab, exercise))
    for name, path in paths:
        host = next(h for h in lab.hosts if h.name == name)
        rendered = build / "hosts" / name / path.lstrip("/")
        if rendered.is_file():
            engine.run("cp", str(rendered), f"{lab.container(host)}:{path}")
        else:
            _sh(lab, engine, host, f"rm -rf {shlex.quote(path)}")
        hosts[name] = host
    # A web server of an ACME lab as labgen up leaves it: labgen-certs gives it a certificate
    # for its key first (the fault may have taken both), then the reload, the timer, the ACME
    # CA's certificate and a key no TLSA record names replaced by the next key.
    acme_web = {n: h for n, h in hosts.items() if h.role == "web" and lab.certificates.acme}
    reload_services(lab, engine, [h for n, h in hosts.items() if n not in acme_web])
    for host in acme_web.values():
        kind = kinds.of(host)
        _sh(lab, engine, host, f"{kind.prepare(lab)}systemctl reload-or-restart {kind.unit} && "
                               f"systemctl enable --quiet --now {acme.CERTS_TIMER} && {kind.after(lab)}")
    if any(h.role == "authdns" for h in hosts.values()):
        retransfer(lab, engine)
    return len(paths)


def changed(lab: Lab, build: Path, engine: Engine, exercise: Exercise) -> bool:
    """Whether any file the fault touches differs from its rendered copy (content or mode)."""
    for name, path in touched(lab, exercise):
        host = next(h for h in lab.hosts if h.name == name)
        rendered = build / "hosts" / name / path.lstrip("/")
        seen = engine.exec(lab.container(host), "sh", "-c",
                           f"p={shlex.quote(path)}; [ -f \"$p\" ] && echo \"$(stat -c %a \"$p\") "
                           "$(sha256sum < \"$p\" | cut -c1-64)\" || { [ -e \"$p\" ] && echo present; }"
                           ).stdout.strip()
        want = (f"{rendered.stat().st_mode & 0o777:o} {hashlib.sha256(rendered.read_bytes()).hexdigest()}"
                if rendered.is_file() else "")
        if seen != want:
            return True
    return False


def _sh(lab: Lab, engine: Engine, host: Host, script: str) -> None:
    result = engine.exec(lab.container(host), "sh", "-ec", script, timeout=120)
    if result.returncode != 0:
        last = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise FaultError(f"on {host.name}, a step failed (exit status {result.returncode}): {last[0]}")


def _put_certificate(lab: Lab, build: Path, engine: Engine, host: Host, kind: str) -> None:
    """Serve a wrong ECDSA certificate from the lab CA: expired, for another name, or for a new
    key. The CA's delivery folder gets the bad one and, except for a new key, the good one."""
    pkidir, now = build / "pki", dt.datetime.now(dt.timezone.utc)
    load_key = lambda p: serialization.load_pem_private_key(p.read_bytes(), password=None)  # noqa: E731
    ca = load_key(pkidir / "ca.key"), x509.load_pem_x509_certificate((pkidir / "ca.crt").read_bytes())
    key = pki.new_ec_key() if kind == "new-key" else load_key(pkidir / f"{host.name}.ecdsa.key")
    if kind == "expired":
        cert = pki.issue(ca, key, host.fqdn, now - dt.timedelta(days=400), now - dt.timedelta(days=10))
    else:
        name = f"www.{lab.domain}" if kind == "wrong-name" else host.fqdn
        cert = pki.issue(ca, key, name, now - dt.timedelta(hours=1), now + dt.timedelta(days=90))
    paths = host_paths(lab, host)
    rendered = build / "hosts" / host.name / paths["crt_ecdsa"].lstrip("/")
    chain = pki.cert_pem(cert) + (pki.cert_pem(ca[1]) if lab.dane_ca else b"")
    files = {paths["crt_ecdsa"]: chain, _delivered(host, cert): chain}
    if kind == "new-key":
        files[paths["key_ecdsa"]] = pki.key_pem(key)
    else:
        good = x509.load_pem_x509_certificate(rendered.read_bytes())
        files[_delivered(host, good)] = rendered.read_bytes()
    _sh(lab, engine, host, f"rm -rf {FROM_CA} && mkdir -p {FROM_CA}")  # only this delivery
    with tempfile.TemporaryDirectory(prefix="labgen-exercise-") as tmp:
        for n, (path, content) in enumerate(sorted(files.items())):
            local = Path(tmp) / str(n)
            pki.write_private(local, content)
            if path != paths["key_ecdsa"]:
                local.chmod(0o644)
            engine.run("cp", str(local), f"{lab.container(host)}:{path}")


def _delivered(host: Host, cert: x509.Certificate) -> str:
    return f"{FROM_CA}/{host.fqdn}-{cert.serial_number % 16**8:08x}.crt"

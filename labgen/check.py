"""labgen check: judge a rendered build offline with real, independent tools.

Each server's own checker (nginx -t, apache2ctl configtest, named-checkconf -z,
unbound-checkconf) runs against its rendered tree on a root file system of the target's Debian
release; ldns-verify-zone validates the signed zone from the DS labgen wrote; openssl recomputes
every TLSA record from the served certificate and verifies the certificate against the lab CA.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import acme, image, kinds, sandbox
from .kinds import apache
from .hostpaths import ca_trust_path, cert_paths
from .spec import Lab


@dataclass(frozen=True)
class Result:
    title: str
    ok: bool
    detail: str


def release_root(lab: Lab, log=print) -> Path:
    suite = image.SUITES.get(lab.target.name)
    if suite is None:
        raise image.ToolError(f"target {lab.target.name!r} has no Debian release to check against; "
                              f"use one of {', '.join(image.SUITES)}")
    return image.rootfs(suite=suite, log=log)


def _last_lines(text: str, n: int = 4) -> str:
    return "\n".join(text.strip().splitlines()[-n:])


def check_build(lab: Lab, build: Path, root: Path) -> list[Result]:
    results = []
    for host in lab.hosts:
        kind = kinds.of(host)
        if not kind.config_test:
            continue
        script = sandbox.check_script(kind, fqdn=host.fqdn, modules=apache.MODULES,
                                      prepare=kind.prepare(lab))
        run = sandbox.run_over(root, build / "hosts" / host.name, script)
        program, _, arguments = script.split(" && ")[-1].partition(" ")  # as people type it: nginx -t
        results.append(Result(f"{host.fqdn}: {Path(program).name} {arguments}", run.returncode == 0,
                              _last_lines(run.stdout + run.stderr)))
    with tempfile.TemporaryDirectory(prefix="labgen-check-") as tmp:
        tree = Path(tmp) / "tree"
        shutil.copytree(build / "dns", tree / "check")
        run = sandbox.run_over(root, tree, f"ldns-verify-zone -k /check/{lab.domain}.ds "
                                           f"/check/db.{lab.domain}")
        results.append(Result(f"zone {lab.domain}: DNSSEC validates from the DS (ldns-verify-zone)",
                              run.returncode == 0, _last_lines(run.stdout + run.stderr)))
    zone = (build / "dns" / f"db.{lab.domain}").read_text(encoding="utf-8")
    for host in lab.web:
        tree = build / "hosts" / host.name
        for kind in lab.profile.certificate_types:
            # In an ACME lab the rendered certificate is the first one, until the ACME CA's.
            crt = (acme.key_paths(host, kind)["bootstrap"] if lab.certificates.acme
                   else cert_paths(host, kind)["crt"])
            script = (f"openssl verify -CAfile {ca_trust_path(lab)} -verify_hostname {host.fqdn} {crt}"
                      f" && openssl x509 -in {crt} -pubkey -noout | openssl pkey -pubin -outform DER"
                      " | openssl dgst -sha256 -r")
            run = sandbox.run_over(root, tree, script)
            digest = run.stdout.strip().splitlines()[-1].split()[0] if run.returncode == 0 else "?"
            ok = run.returncode == 0 and f"TLSA 3 1 1 {digest}" in zone
            results.append(Result(f"{host.fqdn}: {kind} certificate verifies and matches its TLSA 3 1 1",
                                  ok, _last_lines(run.stdout + run.stderr)))
    return results


def report(results: list[Result]) -> str:
    lines = [f"{'PASS' if r.ok else 'FAIL'}  {r.title}" + ("" if r.ok else "\n      " +
             r.detail.replace("\n", "\n      ")) for r in results]
    passed = sum(r.ok for r in results)
    lines.append(f"{passed} passed, {len(results) - passed} failed")
    return "\n".join(lines)

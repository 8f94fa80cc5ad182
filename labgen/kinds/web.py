"""What every web server's tree holds (nginx.py and apache.py add their own config)."""

from __future__ import annotations

from pathlib import Path

from .. import acme
from ..hostpaths import PROGRAM, PUBLIC, SECRET, WEBROOT, cert_paths

# The ACME client on every web server (labgen.acme): Debian's certbot, driven by labgen-certs.
# certbot's own timer stays off: labgen-certs.timer renews, keeping the key DANE names.
# python3-cffi-backend by name: debootstrap does not resolve the virtual packages that
# python3-cryptography depends on (python3-cffi-backend-api-*), which it provides.
PACKAGES = ("certbot", "python3-cffi-backend")
DISABLED = ("certbot.timer",)


def layout(main_conf: str, site: str, main_template: str, site_template: str):
    """A web server's (paths, files): what every web server has, plus its main config and its
    site (site: a path with {fqdn}), rendered from its two templates."""
    def server_paths(lab, host) -> dict[str, str]:
        return {**paths(lab, host), "main_conf": main_conf, "site": site.format(fqdn=host.fqdn)}

    def server_files(lab, host, m, text) -> dict[str, tuple[bytes, int]]:
        found = server_paths(lab, host)
        return {**files(lab, host, m, text, found), found["main_conf"]: text(main_template),
                found["site"]: text(site_template)}

    return server_paths, server_files


def prepare(lab) -> str:
    """Before the server's config test: in an ACME lab, labgen-certs takes labgen's keys when
    they are new and gives the server a certificate for its key (labgen.acme)."""
    return f"{acme.CERTS_PROGRAM} seed && " if lab.certificates.acme else ""


def after(lab) -> str:
    """Once the lab runs: the ACME CA's certificate (HTTP-01 needs the server up), and a served
    key no TLSA record names moved to the next key (labgen.acme)."""
    return acme.put_back() if lab.certificates.acme else ""


def paths(lab, host) -> dict[str, str]:
    found = {f"{part}_{kind}": path for kind in lab.profile.certificate_types
             for part, path in cert_paths(host, kind).items()}
    if lab.certificates.acme:
        found.update({f"{part}_{kind}": path for kind in lab.profile.certificate_types
                      for part, path in acme.key_paths(host, kind).items()})
        found["certs_config"] = acme.CERTS_CONFIG
    return {**found, "index": f"{WEBROOT}/index.html", "security_txt": f"{WEBROOT}/.well-known/security.txt"}


def files(lab, host, m, text, found: dict[str, str]) -> dict[str, tuple[bytes, int]]:
    """The certificates and keys from the lab CA, the page and security.txt (found: the host's
    paths); in an ACME lab, labgen-certs with its keys, settings and timer instead of the
    served certificate and key, which labgen-certs owns."""
    tree = {}
    for kind, (chain, key) in m.certs[host.name].items():
        if lab.certificates.acme:
            tree[found[f"rendered_key_{kind}"]] = (key, SECRET)
            tree[found[f"rendered_next_{kind}"]] = (m.next_keys[host.name][kind], SECRET)
            tree[found[f"bootstrap_{kind}"]] = (chain, PUBLIC)
        else:
            tree[found[f"crt_{kind}"]] = (chain, PUBLIC)
            tree[found[f"key_{kind}"]] = (key, SECRET)
    if lab.certificates.acme:
        from . import of  # the registry imports this module

        served = {kind: cert_paths(host, kind) for kind in m.certs[host.name]}
        program = (Path(__file__).resolve().parent.parent / "certs_program.py").read_bytes()
        tree.update({acme.CERTS_CONFIG: (acme.certs_config(lab, host, served, of(host).unit).encode(), PUBLIC),
                     acme.CERTS_PROGRAM: (program, PROGRAM),
                     acme.tsig_path(host): (acme.tsig_key(host, m.tsig[host.name]).encode(), SECRET),
                     **{path: (content.encode(), PUBLIC) for path, content in acme.timer_units(lab).items()}})
    tree[found["index"]] = text("web/index.html.j2")
    tree[found["security_txt"]] = text("web/security.txt.j2")
    return tree

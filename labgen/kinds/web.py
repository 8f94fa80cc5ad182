"""What every web server's tree holds (nginx.py and apache.py add their own config)."""

from __future__ import annotations

from ..hostpaths import PUBLIC, SECRET, WEBROOT, cert_paths


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


def paths(lab, host) -> dict[str, str]:
    return {**{f"{part}_{kind}": path for kind in lab.profile.certificate_types
               for part, path in cert_paths(host, kind).items()},
            "index": f"{WEBROOT}/index.html", "security_txt": f"{WEBROOT}/.well-known/security.txt"}


def files(lab, host, m, text, found: dict[str, str]) -> dict[str, tuple[bytes, int]]:
    """The certificates and keys from the lab CA, the page and security.txt (found: the host's paths)."""
    tree = {}
    for kind, (chain, key) in m.certs[host.name].items():
        tree[found[f"crt_{kind}"]] = (chain, PUBLIC)
        tree[found[f"key_{kind}"]] = (key, SECRET)
    tree[found["index"]] = text("web/index.html.j2")
    tree[found["security_txt"]] = text("web/security.txt.j2")
    return tree

"""What every web server's tree holds (nginx.py and apache.py add their own config)."""

from __future__ import annotations

from ..hostpaths import PUBLIC, SECRET, WEBROOT, cert_paths


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

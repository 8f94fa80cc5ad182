"""Golden files: the exact bytes labgen deploys, for every profile x target x server.

A change to a template shows here as a unified diff. To accept it, run
`pytest tests/golden --update-goldens` and review the diff in git.
"""

from __future__ import annotations

import difflib
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from labtest import FIXED_NOW

GOLDEN = Path(__file__).parent / "files"
# Per host: the files that carry policy (keys and certificates differ every render).
FILES = {
    "nginx": ["etc/nginx/nginx.conf", "etc/nginx/conf.d/nginx.lab.example.conf",
              "var/www/labgen/index.html", "var/www/labgen/.well-known/security.txt"],
    "apache": ["etc/apache2/ports.conf", "etc/apache2/sites-available/apache.lab.example.conf",
               "var/www/labgen/index.html"],
    "ns1": ["etc/bind/named.conf"],
    "resolver": ["etc/unbound/unbound.conf"],
}
CASES = [(profile, target) for profile in ("modern", "intermediate") for target in ("debian13", "debian12")]


@pytest.mark.parametrize("profile,target", CASES, ids=[f"{p}-{t}" for p, t in CASES])
def test_rendered_files_match_goldens(render_lab, request, profile, target):
    _, build = render_lab({"profile": profile, "target": target}, now=FIXED_NOW)
    update = request.config.getoption("--update-goldens")
    problems = []
    for host, paths in FILES.items():
        for rel in paths:
            if rel.startswith("var/www") and target != "debian13":
                continue  # the pages do not depend on the target
            got = (build / "hosts" / host / rel).read_text(encoding="utf-8")
            golden = GOLDEN / f"{profile}-{target}" / host / rel
            if update:
                golden.parent.mkdir(parents=True, exist_ok=True)
                golden.write_text(got, encoding="utf-8")
                continue
            want = golden.read_text(encoding="utf-8") if golden.exists() else ""
            if got != want:
                problems.append("".join(difflib.unified_diff(
                    want.splitlines(True), got.splitlines(True), f"golden/{golden.relative_to(GOLDEN)}",
                    f"rendered/{host}/{rel}")))
    assert not problems, "rendered files differ from the goldens " \
        "(run pytest tests/golden --update-goldens to accept):\n" + "\n".join(problems)


def test_goldens_carry_no_dates_or_machine_paths():
    for path in GOLDEN.rglob("*"):
        if path.is_file() and path.name != "security.txt":  # RFC 9116 requires an Expires date
            text = path.read_text(encoding="utf-8")
            assert "2026" not in text, f"{path} contains a date"
            assert "/work/" not in text and "/tmp/" not in text and "/root/" not in text, path


@pytest.mark.skipif(not shutil.which("unbound-checkconf"), reason="unbound-checkconf is not installed")
@pytest.mark.parametrize("profile,target", CASES, ids=[f"{p}-{t}" for p, t in CASES])
def test_the_rendered_unbound_conf_passes_unbound_checkconf(render_lab, tmp_path, profile, target):
    """The Unbound here (CI: Debian's) accepts the resolver's config (ede, remote-control) and the
    probe's own cache's (drills ask through it; no remote control, this host alone)."""
    _, build = render_lab({"profile": profile, "target": target}, now=FIXED_NOW)
    texts = {}
    for host, path in (("resolver", "etc/unbound/unbound.conf"), ("probe", "etc/labgen/grader-unbound.conf")):
        tree = build / "hosts" / host
        texts[host] = text = (tree / path).read_text(encoding="utf-8")
        anchor = re.search(r'trust-anchor-file: "([^"]+)"', text).group(1)
        local = tmp_path / f"{host}.conf"
        local.write_text(text.replace(anchor, str(tree / anchor.lstrip("/"))), encoding="utf-8")
        result = subprocess.run(["unbound-checkconf", str(local)], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
    assert "ede: yes" in texts["resolver"] and "control-interface: /run/unbound.ctl" in texts["resolver"]
    assert "interface: 127.0.0.1@5300" in texts["probe"] and "remote-control" not in texts["probe"]
    assert "0.0.0.0" not in texts["probe"] and "ede: yes" in texts["probe"]

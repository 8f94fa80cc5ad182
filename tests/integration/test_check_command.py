"""`labgen check` on the default lab: every real checker passes; a broken config fails it."""

from __future__ import annotations

from labgen import cli


def test_check_passes_on_the_default_lab_and_fails_on_a_broken_one(tmp_path, capsys, debian13_root):
    assert cli.main(["init", str(tmp_path)]) == 0
    lab, out = str(tmp_path / "lab.yml"), str(tmp_path / "build")
    assert cli.main(["check", "--render", "-c", lab, "-o", out]) == 0
    shown = capsys.readouterr().out
    assert "PASS  nginx.lab.example: nginx -t" in shown
    assert "PASS  apache.lab.example: apache2ctl configtest" in shown
    assert "PASS  zone lab.example: DNSSEC validates from the DS (ldns-verify-zone)" in shown
    assert "7 passed, 0 failed" in shown

    zone = tmp_path / "build/demo/dns/db.lab.example"
    zone.write_text(zone.read_text().replace("IN AAAA 2001:db8:10::14", "IN AAAA 2001:db8:10::99"))
    site = tmp_path / "build/demo/hosts/nginx/etc/nginx/conf.d/nginx.lab.example.conf"
    site.write_text(site.read_text().replace("ssl_session_tickets off;", "ssl_session_tickets maybe;"))
    assert cli.main(["check", "-c", lab, "-o", out]) == 1
    shown = capsys.readouterr().out
    assert "FAIL  nginx.lab.example: nginx -t" in shown and '"maybe"' in shown
    assert "FAIL  zone lab.example" in shown
    assert "PASS  apache.lab.example: apache2ctl configtest" in shown
    assert "5 passed, 2 failed" in shown

"""`labgen verify` on the shared test lab: every required check passes on both servers over
both families; and scenarios break the lab on purpose and show that exactly the expected checks
fail while the rest still pass. Faults a student could be given to repair are exercises
(labgen/exercises/catalogue.yml, tests/integration/test_exercises.py); what stays here are
breakages that are not lessons (a stopped server, disabled services, foreign certificates,
TLS compression). Each scenario undoes its own breakage, and
the module ends by proving the lab is whole again (verify passes, a re-up changes nothing).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

from labgen import deploy, dnszone, pki
from labgen.render import cert_paths, zone_path
from labgen.spec import Lab
from labtest import run, write_lab

NGINX_SITE = "/etc/nginx/conf.d/nginx.lab.example.conf"
APACHE_SITE = "/etc/apache2/sites-available/apache.lab.example.conf"

Key = tuple[str, str, str]  # (check id, target, variant)


def labgen_verify(lab, tmp_path: Path, *extra: str) -> tuple[int, str, dict]:
    report = tmp_path / "verify.json"
    result = subprocess.run([sys.executable, "-m", "labgen", "verify", "-c", str(lab.config),
                             "--json", str(report),
                             *(extra or ("--html", str(tmp_path / "verify.html")))],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, result.stdout, json.loads(report.read_text())


def keys(doc: dict, passed: bool | None = None) -> set[Key]:
    """The outcomes of the checks that apply to the lab (N/A ones left out)."""
    return {(c["id"], t["name"], v["variant"]) for t in doc["targets"] for c in t["checks"]
            for v in c["variants"] if v["applicable"] and (passed is None or v["passed"] is passed)}


def sh(lab, host: str, script: str) -> None:
    result = lab.exec(host, "sh", "-c", script)
    assert result.returncode == 0, f"{host}: {script}\n{result.stderr}"


def copy_in(lab, host: str, local: Path, path: str) -> None:
    lab.engine.run("cp", str(local), f"labgen-{lab.lab.name}-{host}:{path}")


def put(lab, host: str, path: str, text: str, tmp_path: Path) -> None:
    local = tmp_path / Path(path).name
    local.write_text(text, encoding="utf-8")
    local.chmod(0o644)
    copy_in(lab, host, local, path)


@pytest.fixture(scope="module")
def baseline(running_lab, tmp_path_factory):
    code, shown, doc = labgen_verify(running_lab, tmp_path_factory.mktemp("verify"))
    return code, shown, doc


def needs(doc: dict) -> dict[str, set[str]]:
    """Each check's prerequisites, as the checks declare them (@check(needs=...))."""
    return {c["id"]: set(c["needs"]) for t in doc["targets"] for c in t["checks"]}


def pick(all_keys: set[Key], check: str, target: str | None = None, variant: str = "") -> set[Key]:
    """Every outcome of one check, narrowed to a target and a variant substring."""
    found = {k for k in all_keys if k[0] == check and (target is None or k[1] == target)
             and variant in k[2]}
    assert found, f"no outcome of {check} {target or ''} {variant} in the baseline"
    return found


class Scenario:
    """Break the lab with shell scripts (one per host), verify, then undo in reverse order."""

    def __init__(self, lab, tmp_path: Path):
        self.lab, self.tmp_path, self.undo = lab, tmp_path, []

    def backup(self, host: str, *paths: str) -> None:
        for path in paths:
            sh(self.lab, host, f"cp -a {path} {path}.labgen-test")
        restore = "; ".join(f"mv -f {p}.labgen-test {p}" for p in paths)
        self.undo.append((host, restore))

    def do(self, host: str, script: str, undo: str = "") -> None:
        sh(self.lab, host, script)
        if undo:
            self.undo.append((host, undo))

    def failures(self) -> tuple[int, str, set[Key]]:
        code, shown, doc = labgen_verify(self.lab, self.tmp_path)
        return code, shown, keys(doc, passed=False)

    def restore(self, reloads: list[tuple[str, str]]) -> None:
        for host, script in reversed(self.undo):
            sh(self.lab, host, script)
        for host, script in reloads:
            sh(self.lab, host, script)


def run_scenario(running_lab, tmp_path, breaks, reloads, expected: set[Key]) -> str:
    scenario = Scenario(running_lab, tmp_path)
    try:
        breaks(scenario)
        code, shown, failed = scenario.failures()
    finally:
        scenario.restore(reloads)
    assert failed == expected, (f"unexpected failures: {sorted(failed - expected)}\n"
                                f"expected but passed: {sorted(expected - failed)}")
    return shown if code == 1 else pytest.fail(f"verify exited {code} with failures")


def test_verify_refuses_a_lab_that_is_not_up(tmp_path):
    config = write_lab(tmp_path, {"name": "notup"})
    result = run([sys.executable, "-m", "labgen", "verify", "-c", str(config)])
    assert result.returncode == 2 and result.stdout == ""
    assert "lab notup is not up (ns1, resolver, client, probe, nginx, apache not running); run labgen " \
        "up -c" in result.stderr


def test_every_required_check_passes_on_both_servers_and_families(baseline, running_lab):
    code, shown, doc = baseline
    assert code == 0 and doc["passed"], shown
    assert shown.rstrip().endswith("verdict: every required check passes")
    assert not keys(doc, passed=False)
    lab: Lab = running_lab.lab
    targets = {t["name"]: t for t in doc["targets"]}
    assert set(targets) == {"lab"} | {s.name for s in lab.web}
    for server in lab.web:
        assert targets[server.name]["score"] == 100
        assert f"{server.name}: 100%" in shown
        families = {v["variant"] for c in targets[server.name]["checks"] for v in c["variants"]}
        assert {"ipv4", "ipv6"} <= families
    # Every check module contributes, and HTTP/3 is judged where the lab enables it (nginx).
    groups = {c["id"].split(".")[0] for t in doc["targets"] for c in t["checks"]}
    assert groups == {"ipv6", "dnssec", "https", "dane", "caa", "headers", "host"}
    assert pick(keys(doc), "https.h3", "nginx")
    apache_h3 = next(c for t in doc["targets"] if t["name"] == "apache" for c in t["checks"]
                     if c["id"] == "https.h3")
    assert apache_h3["status"] == "n/a" and "does not enable HTTP/3 on apache" in apache_h3["variants"][0]["message"]


def test_the_checks_run_as_plain_pytest_with_testinfra_hosts(baseline, running_lab, tmp_path):
    """What a trainer puts in their own CI: the same checks, without labgen verify."""
    lab = running_lab
    result = run([sys.executable, "-m", "pytest", "--pyargs", "labgen.checks", "-p",
                  "labgen.checks.plugin", "--lab-file", str(lab.config), "-p", "no:cacheprovider", "-q"], cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-2000:]
    passed = int(re.search(r"(\d+) passed", result.stdout).group(1))
    # A check that does not apply to the lab (renegotiation under TLS 1.3 only) is a skip there.
    not_applicable = sum(not v["applicable"] for t in baseline[2]["targets"] for c in t["checks"]
                         for v in c["variants"])
    assert not_applicable and f"{not_applicable} skipped" in result.stdout
    assert passed == len(keys(baseline[2]))


def test_old_tls_no_tls13_dropped_hsts_broken_config_and_disabled_services_fail_exactly_theirs(
        baseline, running_lab, tmp_path):
    all_keys = keys(baseline[2])

    def breaks(s: Scenario):
        s.backup("nginx", NGINX_SITE)
        s.do("nginx", f"sed -i 's/ssl_protocols .*/ssl_protocols TLSv1.1 TLSv1.2 TLSv1.3;"
                      f"\\n    ssl_ciphers DEFAULT:@SECLEVEL=0;/' {NGINX_SITE} && systemctl reload nginx")
        s.backup("apache", APACHE_SITE)
        s.do("apache", f"sed -i -e '/Strict-Transport-Security/d' "
                       f"-e 's/SSLProtocol .*/SSLProtocol -all +TLSv1.2/' {APACHE_SITE} && "
                       "systemctl reload apache2")
        # Written after the reload: the running server is fine, its next reload would fail.
        s.do("apache", "echo 'NoSuchDirective on' > /etc/apache2/conf-enabled/zz-broken.conf",
             "rm -f /etc/apache2/conf-enabled/zz-broken.conf")
        s.do("apache", "systemctl disable apache2", "systemctl enable apache2")
        s.do("resolver", "systemctl disable unbound", "systemctl enable unbound")

    expected = (pick(all_keys, "https.no_tls10_11", "nginx") | pick(all_keys, "https.tls12", "nginx")
                | pick(all_keys, "https.suites", "nginx") | pick(all_keys, "https.hsts", "apache")
                | pick(all_keys, "https.hsts_lab_value", "apache")  # no HSTS: not the lab file's either
                # TLS 1.2 only: no TLS 1.3, a version the modern profile refuses, its default
                # suites, and no hybrid post-quantum group (TLS 1.2 cannot carry it).
                | pick(all_keys, "https.tls13", "apache") | pick(all_keys, "https.tls12", "apache")
                | pick(all_keys, "https.suites", "apache") | pick(all_keys, "https.groups", "apache")
                | pick(all_keys, "host.config_test", "apache") | pick(all_keys, "host.service", "apache")
                | pick(all_keys, "host.dns_service", "lab", "resolver"))
    shown = run_scenario(running_lab, tmp_path, breaks, [("nginx", "systemctl reload nginx"),
                                                          ("apache", "systemctl reload apache2")],
                         expected)
    assert "FAIL  TLS 1.0 and 1.1 are refused" in shown
    assert "why: HSTS makes browsers refuse plain HTTP" in shown
    assert "fix: Send Strict-Transport-Security: max-age=31536000" in shown
    # The HTML report of the same run, as Chromium shows it: the failure with its why and fix.
    text = page_text(tmp_path / "verify.html")
    score = re.search(r"apache: (\d+)%", shown).group(1)
    assert int(score) < 100 and "A required check fails." in text and f"apache: {score}%" in text
    assert "FAIL HSTS is set for at least a year" in text
    assert "Why it matters: HSTS makes browsers refuse plain HTTP" in text


def test_http_layer_breaks_fail_exactly_their_checks(baseline, running_lab, tmp_path):
    all_keys = keys(baseline[2])

    def breaks(s: Scenario):
        s.backup("nginx", NGINX_SITE, "/etc/nginx/nginx.conf")
        s.do("nginx", "sed -i 's/server_tokens off/server_tokens on/' /etc/nginx/nginx.conf && "
                      f"sed -i -e 's/http2 on/http2 off/' -e '/ quic /d' "
                      "-e 's/ssl_early_data off/ssl_early_data on/' "
                      "-e 's/ssl_ecdh_curve .*/ssl_ecdh_curve X25519:secp521r1;/' "
                      "-e '/Content-Security-Policy/d' -e '/X-Content-Type-Options/d' "
                      "-e '/X-Frame-Options/d' -e 's/Referrer-Policy \"[^\"]*\"/Referrer-Policy \"unsafe-url\"/' "
                      f"{NGINX_SITE} && systemctl reload nginx")
        s.backup("apache", APACHE_SITE, "/var/www/labgen/.well-known/security.txt")
        s.do("apache", f"sed -i 's|Redirect permanent / .*|Redirect permanent / https://www.example.org/|' "
                       f"{APACHE_SITE} && rm /var/www/labgen/.well-known/security.txt && "
                       "systemctl reload apache2")

    expected = set().union(*(pick(all_keys, c, "nginx") for c in (
        "host.version_hidden", "https.h2", "https.h3", "https.no_0rtt", "https.groups",
        "headers.csp", "headers.csp_lab_value", "headers.nosniff", "headers.referrer", "headers.xfo")))
    expected |= pick(all_keys, "https.redirect", "apache") | pick(all_keys, "headers.security_txt", "apache")
    shown = run_scenario(running_lab, tmp_path, breaks, [("nginx", "systemctl reload nginx"),
                                                          ("apache", "systemctl reload apache2")],
                         expected)
    assert "WARN  HTTP/2 is offered through ALPN" in shown  # recommended, not required


def _issue(lab, tmp_path: Path, name: str, ca: bool) -> tuple[Path, Path]:
    """A new EC key and a certificate for name: from the lab CA, or self-signed RSA-2048."""
    key, crt = tmp_path / f"{name}.key", tmp_path / f"{name}.crt"
    ext = tmp_path / "ext.cnf"
    ext.write_text(f"subjectAltName=DNS:{name}\n")
    if ca:
        pkidir = lab.build / "pki"
        subprocess.run(f"openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                       f"-keyout {key} -subj /CN={name} | openssl x509 -req -days 30 -sha256 "
                       f"-CA {pkidir}/ca.crt -CAkey {pkidir}/ca.key -extfile {ext} -out {crt}",
                       shell=True, check=True, capture_output=True)
    else:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
                        "-keyout", str(key), "-out", str(crt), "-subj", f"/CN={name}",
                        "-addext", f"subjectAltName=DNS:{name}"], check=True, capture_output=True)
    return key, crt


def test_foreign_certificates_a_readable_key_and_tls_compression_fail_exactly_their_checks(
        baseline, running_lab, tmp_path):
    all_keys = keys(baseline[2])
    lab = running_lab.lab
    nginx, apache = (next(h for h in lab.web if h.software == s) for s in ("nginx", "apache"))
    self_signed = _issue(running_lab, tmp_path, "other.example", ca=False)
    new_key = _issue(running_lab, tmp_path, apache.fqdn, ca=True)

    def breaks(s: Scenario):
        for host, (key, crt) in ((nginx, self_signed), (apache, new_key)):
            paths = cert_paths(host, "ecdsa")
            s.backup(host.name, paths["key"], paths["crt"])
            copy_in(running_lab, host.name, key, paths["key"])
            copy_in(running_lab, host.name, crt, paths["crt"])
        s.do("nginx", f"chmod 600 {cert_paths(nginx, 'ecdsa')['key']} && systemctl reload nginx")
        # The new Apache key is left readable by everyone: host.key_files must notice.
        s.backup("apache", APACHE_SITE)
        s.do("apache", f"chmod 644 {cert_paths(apache, 'ecdsa')['key']} && sed -i "
                       "-e 's/SSLProtocol .*/SSLProtocol -all +TLSv1.2 +TLSv1.3/' "
                       "-e 's/SSLCompression off/SSLCompression on\\n    SSLCipherSuite DEFAULT:@SECLEVEL=0"
                       f"\\n    SSLOpenSSLConfCmd Options Compression/' {APACHE_SITE} && "
                       "systemctl reload apache2")

    # A browser (curl) refuses the self-signed certificate, so every HTTPS request fails too.
    fetches = {c["id"] for t in baseline[2]["targets"] for c in t["checks"]
               if c["fetches"] and any(v["applicable"] for v in c["variants"])}
    expected = set().union(*(pick(all_keys, c, "nginx") for c in (
        {"https.chain", "https.name", "https.key", "https.rsa_size", "dane.match"} | fetches)))
    expected |= set().union(*(pick(all_keys, c, "apache") for c in (
        "dane.match", "host.key_files", "https.tls12", "https.suites", "https.no_compression")))
    run_scenario(running_lab, tmp_path, breaks, [("nginx", "systemctl reload nginx"),
                                                 ("apache", "systemctl reload apache2")], expected)


def _zone(running_lab, tmp_path: Path, *, sign: bool, tlsa_of, caa: str, drop_aaaa=()) -> str:
    """The lab zone rebuilt with labgen's own keys (so the DS still matches), changed as asked."""
    lab, pkidir = running_lab.lab, running_lab.build / "pki"
    store = pki.Store(pkidir, tmp_path / "pki")
    algorithm = lab.dnssec.algorithm
    bogus_dnskey = dnszone.dnskey_for(pki.dnssec_key(store, algorithm, zone="dnssec-bogus"), algorithm)
    changed = dataclasses.replace(lab, caa=dataclasses.replace(lab.caa, issuer=caa))
    now = dt.datetime.now(dt.timezone.utc)
    zone = dnszone.build(changed, {h.name: [tlsa_of(h)] for h in lab.web},
                         dnszone.ds_for(dnszone.bogus_name(lab), bogus_dnskey), now)
    for name in drop_aaaa:
        zone.delete_rdataset(name, "AAAA")
    if sign:
        key = pki.dnssec_key(store, algorithm)
        dnszone.sign(zone, [(key, dnszone.dnskey_for(key, algorithm))], lab.dnssec.denial, now)
    return dnszone.zone_text(zone)


def _served_tlsa(running_lab):
    def tlsa(host):
        return f"3 1 1 {pki.spki_sha256(running_lab.rendered_certificate(host, 'ecdsa'))}"
    return tlsa


DNS_RELOAD = [("ns1", "systemctl restart named"), ("resolver", "systemctl restart unbound")]


def serve_zone(running_lab, text: str, tmp_path: Path):
    """A scenario's breaks: ns1 serves this zone text; both DNS servers restart (no cache)."""
    def breaks(s: Scenario):
        path = zone_path(running_lab.lab)
        s.backup("ns1", path)
        put(running_lab, "ns1", path, text, tmp_path)
        for host, script in DNS_RELOAD:
            s.do(host, script)
    return breaks


def test_a_stopped_server_fails_every_check_that_talks_to_it_and_is_named_once(
        baseline, running_lab, tmp_path):
    all_keys = keys(baseline[2])
    wants = needs(baseline[2])
    apache = next(h for h in running_lab.lab.web if h.software == "apache")

    def breaks(s: Scenario):
        s.do("apache", "systemctl stop apache2", "systemctl start apache2")

    # What still passes judges DNS records or files on the host, not the server.
    talks = {k for k in all_keys if k[1] == "apache" and
             (wants[k[0]] & {"tls", "https"} or k[0] in {"host.service", "host.listen", "https.redirect",
                                                       "ipv6.reachable"})}
    shown = run_scenario(running_lab, tmp_path, breaks, [], talks)
    causes = [f"apache does not answer on {address} port 443: connection refused" for address in
              (apache.ipv4, apache.ipv6)]
    head = shown[:shown.index("FAILURES")]
    assert all(f". {cause}" in head for cause in causes), head
    assert all(shown.count(cause) == 1 for cause in causes)  # named once; its checks point to it
    assert "NOT RUN  TLS 1.0 and 1.1 are refused" in shown
    assert "Traceback" not in shown and "AssertionError" not in shown and ".c:" not in shown


def chromium(*args: str) -> subprocess.CompletedProcess:
    # Headless, no sandbox (root in CI), and every host name unresolvable: nothing is fetched.
    return subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu",
                           "--host-resolver-rules=MAP * ~NOTFOUND", *args],
                          capture_output=True, text=True, timeout=120)


def page_text(html: Path) -> str:
    """The text Chromium shows for the page, tags stripped and spaces collapsed."""
    dom = chromium("--dump-dom", html.as_uri())
    assert dom.returncode == 0, dom.stderr
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom.stdout))


def test_after_the_scenarios_the_lab_is_whole_and_reports_render(baseline, running_lab, tmp_path):
    html, xml = tmp_path / "report.html", tmp_path / "report.xml"
    code, _, doc = labgen_verify(running_lab, tmp_path, "--html", str(html), "--junitxml", str(xml))
    assert code == 0 and keys(doc) == keys(baseline[2]), sorted(keys(doc, passed=False))
    assert deploy.changed(running_lab.up()) == 0
    # JUnit XML: one test case per check variant, each tagged with its check id.
    root = ElementTree.parse(xml).getroot()
    cases = root.iter("testcase")
    tagged = {p.get("value") for case in cases for p in case.iter("property") if p.get("name") == "check"}
    assert tagged == {k[0] for k in keys(doc)}
    # The HTML report as a student's browser shows it.
    text = page_text(html)
    assert f"Lab {running_lab.lab.name} ({running_lab.lab.domain}): verification" in text
    assert "Every required check passes." in text
    for target in ("the lab", "nginx", "apache"):
        assert f"{target}: 100%" in text
    statuses = [c["status"] for t in doc["targets"] for c in t["checks"]]
    assert set(statuses) == {"pass", "n/a"}
    assert text.count("PASS") == statuses.count("pass") and text.count("N/A") == statuses.count("n/a")
    shot = tmp_path / "report.png"
    assert chromium(f"--screenshot={shot}", "--window-size=1280,2400", html.as_uri()).returncode == 0
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000

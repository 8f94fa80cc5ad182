"""The checks internet.nl 1.11 added (NCSC TLS guidelines 2025), each seen failing on a live lab.

On the shared test lab (modern, TLS 1.3 only): a security.txt without Canonical and a CSP with a
bare https: source on nginx; a finite-field group and HTTP compression on Apache; a name server
that no longer answers over IPv6. The TLS 1.2-only properties (Extended Master Secret, the
key-exchange hash, cipher order, DHE suites, RSA-2048) are broken on a second lab of the
intermediate profile, which first scores 100% with every new check. Each scenario asserts that
exactly the expected (check, target, variant) outcomes fail and everything else still passes.
No configuration of nginx or Apache on OpenSSL 3 accepts client-initiated renegotiation, so
https.client_reneg is shown failing on canned s_client output (tests/unit).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import RunningLab
from test_verify import (APACHE_SITE, DNS_RELOAD, NGINX_SITE, Scenario, _served_tlsa, _zone,
                         baseline, copy_in, keys, labgen_verify, pick, run_scenario,  # noqa: F401
                         serve_zone)

from labgen.render import cert_paths

SECURITY_TXT = "/var/www/labgen/.well-known/security.txt"
NAMED_CONF = "/etc/bind/named.conf"
NEW_CHECKS = ("https.ems", "https.kex_hash", "https.client_reneg", "https.cipher_order",
              "https.no_dhe", "https.rsa_size", "https.cert_sig", "https.ocsp",
              "headers.http_compression", "ipv6.ns_reach", "caa.syntax")
TLS12_ONLY = ("https.ems", "https.client_reneg", "https.cipher_order")
RELOAD = [("nginx", "systemctl reload nginx"), ("apache", "systemctl reload apache2")]


def test_the_new_checks_run_and_pass_on_the_modern_lab(baseline):
    code, shown, doc = baseline
    assert code == 0 and not keys(doc, passed=False), shown
    assert {c for c, _, _ in keys(doc)} >= set(NEW_CHECKS) - set(TLS12_ONLY)
    # A TLS 1.3-only server cannot have the TLS 1.2 properties: N/A, with the reason.
    status = {(c["id"], t["name"]): c["status"] for t in doc["targets"] for c in t["checks"]}
    assert all(status[(check, server)] == "n/a" for check in TLS12_ONLY for server in ("nginx", "apache"))
    assert "not applicable: the modern profile offers TLS 1.3 only, and this exists only in TLS 1.2" in shown
    assert "PASS  OCSP stapling: not in the certificate" in shown


def test_no_canonical_a_bare_https_csp_ffdhe_http_compression_and_no_ipv6_name_server_fail_exactly_theirs(
        baseline, running_lab, tmp_path):
    all_keys = keys(baseline[2])

    def breaks(s: Scenario):
        s.backup("nginx", NGINX_SITE, SECURITY_TXT)
        s.do("nginx", f"sed -i '/^Canonical:/d' {SECURITY_TXT} && sed -i \"s/object-src 'none'\\\"/"
                      f"object-src 'none'; img-src https:\\\"/\" {NGINX_SITE} && systemctl reload nginx")
        s.backup("apache", APACHE_SITE)
        s.do("apache", "sed -i -e 's/SSLOpenSSLConfCmd Groups \\(.*\\)/SSLOpenSSLConfCmd Groups \\1:ffdhe2048/' "
                       f"-e '/SetEnv no-gzip/d' {APACHE_SITE} && systemctl reload apache2")
        s.backup("ns1", NAMED_CONF)
        s.do("ns1", f"sed -i 's/listen-on-v6 {{ any; }}/listen-on-v6 {{ none; }}/' {NAMED_CONF} && "
                    "systemctl restart named")
        # The broken-signature check must still pass once the resolver has forgotten its last
        # refusal: refusing again, it tries ns1's unanswering IPv6 address first (about 20 s).
        s.do("resolver", "unbound-control flush_bogus >/dev/null")

    expected = (pick(all_keys, "headers.security_txt", "nginx") | pick(all_keys, "headers.csp", "nginx")
                | pick(all_keys, "headers.csp_lab_value", "nginx")  # a changed CSP is not the lab file's
                | pick(all_keys, "https.no_dhe", "apache") | pick(all_keys, "https.groups", "apache")
                | pick(all_keys, "headers.http_compression", "apache") | pick(all_keys, "ipv6.ns_reach"))
    shown = run_scenario(running_lab, tmp_path, breaks, RELOAD + [("ns1", "systemctl restart named")],
                         expected)
    assert "Canonical: missing; expected https://nginx.lab.example/.well-known/security.txt" in shown
    assert "img-src allows any https: address (a bare https: scheme)" in shown
    assert "WARN  No finite-field Diffie-Hellman" in shown  # recommended: phase out
    assert "WARN  No HTTP compression on HTTPS responses" in shown  # informational


def _resigned(lab: RunningLab, tmp_path: Path, host, digest: str, extensions: str) -> Path:
    """The host's served ECDSA certificate issued again by the lab CA for the same key (so its
    TLSA record still matches), signed over digest, with these extensions."""
    pkidir, crt, ext = lab.build / "pki", tmp_path / f"{host.name}.crt", tmp_path / f"{host.name}.cnf"
    key = lab.build / "hosts" / host.name / cert_paths(host, "ecdsa")["key"].lstrip("/")
    ext.write_text(f"subjectAltName=DNS:{host.fqdn}\n{extensions}")
    subprocess.run(f"openssl req -new -key {key} -subj /CN={host.fqdn} | openssl x509 -req -days 30 "
                   f"-{digest} -CA {pkidir}/ca.crt -CAkey {pkidir}/ca.key -extfile {ext} "
                   f"-out {crt}", shell=True, check=True,
                   capture_output=True)
    return crt


def test_a_sha224_certificate_an_ocsp_address_and_a_malformed_caa_fail_exactly_theirs(
        baseline, running_lab, tmp_path):
    all_keys = keys(baseline[2])
    lab = running_lab.lab
    nginx, apache = (next(h for h in lab.web if h.software == s) for s in ("nginx", "apache"))
    sha224 = _resigned(running_lab, tmp_path, nginx, "sha224", "")
    ocsp = _resigned(running_lab, tmp_path, apache, "sha256",
                     "authorityInfoAccess=OCSP;URI:http://ocsp.lab.example/\n")
    # A parameter without its value: not an issuer domain name with key=value parameters.
    zone = _zone(running_lab, tmp_path, sign=True, caa=f"{lab.caa.issuer}; account",
                 tlsa_of=_served_tlsa(running_lab))

    def breaks(s: Scenario):
        for host, crt, service in ((nginx, sha224, "nginx"), (apache, ocsp, "apache2")):
            path = cert_paths(host, "ecdsa")["crt"]
            s.backup(host.name, path)
            copy_in(running_lab, host.name, crt, path)
            s.do(host.name, f"systemctl reload {service}")
        serve_zone(running_lab, zone, tmp_path)(s)

    expected = (pick(all_keys, "https.cert_sig", "nginx") | pick(all_keys, "https.ocsp", "apache")
                | pick(all_keys, "caa.syntax") | pick(all_keys, "caa.issuer"))
    shown = run_scenario(running_lab, tmp_path, breaks, RELOAD + DNS_RELOAD, expected)
    assert "the ECDSA certificate is signed with ecdsa-with-SHA224; expected SHA-256 or better" in shown
    assert "names the OCSP responder http://ocsp.lab.example/, but the server stapled no" in shown


@pytest.fixture(scope="module")
def intermediate(intermediate_lab):
    return intermediate_lab


@pytest.fixture(scope="module")
def intermediate_baseline(intermediate, tmp_path_factory):
    return labgen_verify(intermediate, tmp_path_factory.mktemp("verify-intermediate"), "--html",
                         str(tmp_path_factory.mktemp("html") / "verify.html"))


def test_the_intermediate_lab_scores_100_with_the_new_checks(intermediate_baseline):
    code, shown, doc = intermediate_baseline
    assert code == 0 and not keys(doc, passed=False), shown
    assert {c for c, _, _ in keys(doc)} >= set(NEW_CHECKS)
    for target in ("the lab", "nginx", "apache"):
        assert f"{target}: 100%" in shown


def test_no_extended_master_secret_and_sha1_handshake_signatures_fail_exactly_theirs(
        intermediate, intermediate_baseline, tmp_path):
    all_keys = keys(intermediate_baseline[2])

    def breaks(s: Scenario):
        s.backup("nginx", NGINX_SITE)
        s.do("nginx", "sed -i 's/ssl_early_data off;/ssl_early_data off;\\n    ssl_conf_command "
                      f"Options -ExtendedMasterSecret;/' {NGINX_SITE} && systemctl reload nginx")
        s.backup("apache", APACHE_SITE)
        # SHA-1 signatures need security level 0 in OpenSSL 3.
        s.do("apache", "sed -i -e 's/SignatureAlgorithms \\(.*\\)/SignatureAlgorithms ecdsa_sha1:rsa_pkcs1_sha1:\\1/' "
                       "-e 's/^    SSLCipherSuite ECDHE\\(.*\\)/    SSLCipherSuite ECDHE\\1:@SECLEVEL=0/' "
                       f"{APACHE_SITE} && systemctl reload apache2")

    expected = pick(all_keys, "https.ems", "nginx") | pick(all_keys, "https.kex_hash", "apache")
    shown = run_scenario(intermediate, tmp_path, breaks, RELOAD, expected)
    assert "the TLS 1.2 handshake went without the Extended Master Secret (RFC 7627)" in shown
    assert "the server accepted a TLS 1.2 handshake signed with ecdsa_sha1; expected it to be refused" \
        in shown


def _rsa2048_from_lab_ca(lab: RunningLab, tmp_path: Path, name: str) -> tuple[Path, Path]:
    key, crt, ext = tmp_path / "rsa2048.key", tmp_path / "rsa2048.crt", tmp_path / "ext.cnf"
    ext.write_text(f"subjectAltName=DNS:{name}\n")
    pkidir = lab.build / "pki"
    subprocess.run(f"openssl req -new -newkey rsa:2048 -nodes -keyout {key} -subj /CN={name} | "
                   f"openssl x509 -req -days 30 -sha256 -CA {pkidir}/ca.crt -CAkey {pkidir}/ca.key "
                   f"-extfile {ext} -out {crt}", shell=True, check=True, capture_output=True)
    return key, crt


def test_an_rsa_2048_certificate_and_a_preferred_dhe_suite_fail_exactly_theirs(
        intermediate, intermediate_baseline, tmp_path):
    all_keys = keys(intermediate_baseline[2])
    nginx = next(h for h in intermediate.lab.web if h.software == "nginx")
    key, crt = _rsa2048_from_lab_ca(intermediate, tmp_path, nginx.fqdn)

    def breaks(s: Scenario):
        paths = cert_paths(nginx, "rsa")
        s.backup("nginx", paths["key"], paths["crt"])
        copy_in(intermediate, "nginx", key, paths["key"])
        copy_in(intermediate, "nginx", crt, paths["crt"])
        s.do("nginx", f"chmod 600 {paths['key']} && systemctl reload nginx")
        s.backup("apache", APACHE_SITE)
        s.do("apache", "sed -i -e 's/^    SSLCipherSuite ECDHE/    SSLCipherSuite DHE-RSA-AES128-GCM-SHA256:ECDHE/' "
                       f"-e 's/SSLHonorCipherOrder off/SSLHonorCipherOrder on/' {APACHE_SITE} && "
                       "systemctl reload apache2")

    expected = (pick(all_keys, "https.rsa_size", "nginx") | pick(all_keys, "https.cipher_order", "apache")
                | pick(all_keys, "https.no_dhe", "apache") | pick(all_keys, "https.suites", "apache"))
    shown = run_scenario(intermediate, tmp_path, breaks, RELOAD, expected)
    assert "the RSA certificate has a 2048-bit key; expected at least 3072 bits" in shown
    assert "the server chose DHE-RSA-AES128-GCM-SHA256 over the good suites it also has" in shown

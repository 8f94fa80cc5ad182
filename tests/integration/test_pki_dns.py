"""The PKI and the signed zone, judged by independent tools: openssl, ldns and BIND's checkers."""

from __future__ import annotations

import re

import pytest

from labtest import run

VARIANTS = [("ECDSAP256SHA256", "nsec"), ("ECDSAP256SHA256", "nsec3"), ("ED25519", "nsec"),
            ("ED25519", "nsec3")]


def openssl_spki_sha256(cert_path) -> str:
    """SHA-256 of the certificate's DER SubjectPublicKeyInfo, as openssl computes it."""
    out = run(f"openssl x509 -in {cert_path} -pubkey -noout | openssl pkey -pubin -outform DER "
              "| openssl dgst -sha256 -r")
    assert out.returncode == 0, out.stderr
    return out.stdout.split()[0]


@pytest.mark.parametrize("profile", ["modern", "intermediate"])
def test_tlsa_records_match_openssl_and_certificates_verify(render_lab, profile):
    lab, build = render_lab({"profile": profile, "dane": {"ca": True}})
    zone = (build / "dns" / f"db.{lab.domain}").read_text()
    for host in lab.web:
        tlsa = set(re.findall(rf"^_443\._tcp\.{host.name} \d+ IN TLSA (\d \d \d \w+)$", zone, re.M))
        certs = sorted((build / "hosts" / host.name / "etc/ssl/labgen").glob("*.crt"))
        assert len(certs) == len(lab.profile.certificate_types)
        expected = {f"3 1 1 {openssl_spki_sha256(c)}" for c in certs}
        expected.add(f"2 1 1 {openssl_spki_sha256(build / 'pki/ca.crt')}")
        assert tlsa == expected
        for cert in certs:
            verify = run(["openssl", "verify", "-CAfile", str(build / "pki/ca.crt"), str(cert)])
            assert verify.returncode == 0 and ": OK" in verify.stdout, verify.stdout + verify.stderr
            text = run(["openssl", "x509", "-in", str(cert), "-noout", "-text"]).stdout
            assert f"DNS:{host.fqdn}" in text
            assert "ecdsa-with-SHA256" in text
            key_line = "Public-Key: (3072 bit)" if ".rsa." in cert.name else "Public-Key: (256 bit)"
            assert key_line in text
            # The name-constrained CA cannot vouch for names outside the lab zone.
            check = run(["openssl", "verify", "-CAfile", str(build / "pki/ca.crt"),
                         "-verify_hostname", "www.example.org", str(cert)])
            assert check.returncode != 0


def test_the_ca_is_constrained_to_the_lab_domain(render_lab):
    _, build = render_lab({"domain": "school.example"})
    text = run(["openssl", "x509", "-in", str(build / "pki/ca.crt"), "-noout", "-text"]).stdout
    assert "X509v3 Name Constraints: critical" in text and "DNS:school.example" in text
    assert "CA:TRUE, pathlen:0" in text


@pytest.mark.parametrize("algorithm,denial", VARIANTS, ids=[f"{a}-{d}" for a, d in VARIANTS])
def test_signed_zone_validates_against_the_ds_labgen_wrote(render_lab, algorithm, denial):
    lab, build = render_lab({"dnssec": {"algorithm": algorithm, "denial": denial}})
    zone, ds = build / "dns/db.lab.example", build / "dns/lab.example.ds"
    ldns = run(["ldns-verify-zone", "-k", str(ds), str(zone)])
    assert ldns.returncode == 0 and "Zone is verified and complete" in ldns.stdout, ldns.stdout + ldns.stderr
    bind = run(["dnssec-verify", "-z", "-o", "lab.example", str(zone)])
    assert bind.returncode == 0 and "Zone fully signed" in bind.stdout + bind.stderr, bind.stderr
    check = run(["named-checkzone", "-i", "full", "lab.example", str(zone)])
    assert check.returncode == 0, check.stdout
    text = zone.read_text()
    assert ("IN NSEC3PARAM 1 0 0 -" in text) is (denial == "nsec3")
    for host in lab.hosts:
        assert re.search(rf"^{host.name} 3600 IN AAAA {host.ipv6}$", text, re.M)
    assert '@ 3600 IN CAA 0 issue "ca.lab.example"' in text


@pytest.mark.parametrize("denial", ["nsec", "nsec3"])
def test_a_tampered_zone_or_a_wrong_ds_fails_validation(render_lab, tmp_path, denial):
    _, build = render_lab({"dnssec": {"denial": denial}})
    zone, ds = build / "dns/db.lab.example", build / "dns/lab.example.ds"
    tampered = tmp_path / "tampered.zone"
    tampered.write_text(zone.read_text().replace("IN A 198.51.100.20", "IN A 203.0.113.66"))
    assert tampered.read_text() != zone.read_text()
    bad = run(["ldns-verify-zone", "-k", str(ds), str(tampered)])
    assert bad.returncode != 0 and "Bogus" in bad.stdout + bad.stderr
    other_ds = tmp_path / "other.ds"
    _, other = render_lab({"name": "other"}, out=tmp_path / "other")
    other_ds.write_text((other / "dns/lab.example.ds").read_text())
    wrong = run(["ldns-verify-zone", "-k", str(other_ds), str(zone)])
    assert wrong.returncode != 0

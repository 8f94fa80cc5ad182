"""Lab CA, server certificates and DNSSEC keys, built with cryptography.

Keys are made once and kept: a render reads the previous build's pki/ folder and carries every
key over, so TLSA and DS records stay the same. A certificate is reissued (with the same key)
only when its names changed or a third of its lifetime is left.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .errors import RenderError
from .spec import Host, Lab

CA_DAYS = 3650
CN_MAX = 64  # upper bound of a commonName (RFC 5280); the SAN carries the full name


def write_private(path: Path, data: bytes) -> None:
    """Write a secret with mode 0600 from the first byte on (never world-readable, not even briefly)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o600)


def key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def spki_sha256(cert_or_key) -> str:
    """SHA-256 of the DER SubjectPublicKeyInfo of a certificate or a private key: the data of a
    TLSA x 1 1 record (RFC 6698)."""
    spki = cert_or_key.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


class Store:
    """Loads each key or certificate from the previous pki/ folder, or makes it; writes all to dest."""

    def __init__(self, previous: Path | None, dest: Path):
        self.previous, self.dest = previous, dest
        dest.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(dest, 0o700)

    def _old(self, name: str, load):
        """The kept key or certificate, or None; a file that is not one stops the render (a
        silently replaced key would change the DS or TLSA records)."""
        if self.previous is None or not (self.previous / name).exists():
            return None
        path = self.previous / name
        try:
            return load(path.read_bytes())
        except (ValueError, TypeError, OSError) as exc:
            problem = exc.strerror if isinstance(exc, OSError) else "not a valid PEM file"
            raise RenderError(f"{path}: cannot load it ({problem}); restore it, or delete it "
                              "to make a new one (its DS or TLSA records then change)") from None

    def key(self, name: str, make, fits):
        """The kept private key if it still fits the lab file (type, size), else a new one."""
        key = self._old(name, lambda data: serialization.load_pem_private_key(data, password=None))
        if key is None or not fits(key):
            key = make()
        write_private(self.dest / name, key_pem(key))
        return key

    def cert(self, name: str, still_good, make) -> x509.Certificate:
        cert = self._old(name, x509.load_pem_x509_certificate)
        if cert is None or not still_good(cert):
            cert = make()
        (self.dest / name).write_bytes(cert_pem(cert))
        return cert


def _fresh(cert: x509.Certificate, now: dt.datetime) -> bool:
    """True while more than a third of the certificate's lifetime is left."""
    life = cert.not_valid_after_utc - cert.not_valid_before_utc
    return cert.not_valid_after_utc - now > life / 3 and cert.not_valid_before_utc <= now


def new_ec_key():
    return ec.generate_private_key(ec.SECP256R1())


def _is_p256(key) -> bool:
    return isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1)


def lab_ca(store: Store, lab: Lab, now: dt.datetime):
    """The lab's root CA, name-constrained to the lab domain so trusting it risks nothing else."""
    key = store.key("ca.key", new_ec_key, _is_p256)
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "labgen"),
                         x509.NameAttribute(NameOID.COMMON_NAME, f"labgen {lab.name} root CA")])

    def good(cert):
        return (_fresh(cert, now) and cert.public_key() == key.public_key()
                and cert.subject == subject and _ca_domain(cert) == lab.domain)

    def make():
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        return (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(hours=1))
                .not_valid_after(now + dt.timedelta(days=CA_DAYS))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                             content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False,
                                             encipher_only=False, decipher_only=False), critical=True)
                .add_extension(x509.NameConstraints(permitted_subtrees=[x509.DNSName(lab.domain)],
                                                    excluded_subtrees=None), critical=True)
                .add_extension(ski, critical=False)
                .sign(key, hashes.SHA256()))

    return key, store.cert("ca.crt", good, make)


def _ca_domain(cert: x509.Certificate) -> str | None:
    try:
        nc = cert.extensions.get_extension_for_class(x509.NameConstraints).value
    except x509.ExtensionNotFound:
        return None
    return nc.permitted_subtrees[0].value if nc.permitted_subtrees else None


def server_cert(store: Store, lab: Lab, host: Host, kind: str, ca, now: dt.datetime):
    """Key and certificate of one kind (ecdsa | rsa) for a web host, issued by the lab CA."""
    ca_key, ca_cert = ca
    key = _server_key(store, lab, f"{host.name}.{kind}.key", kind)
    days = lab.profile.maximum_certificate_lifespan
    names = [x509.DNSName(host.fqdn)]

    def good(cert):
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            return False
        return (_fresh(cert, now) and cert.public_key() == key.public_key()
                and cert.issuer == ca_cert.subject and list(san) == names
                and (cert.not_valid_after_utc - cert.not_valid_before_utc).days <= days)

    def make():
        start = now - dt.timedelta(hours=1)
        return issue(ca, key, host.fqdn, start, start + dt.timedelta(days=days))

    return key, store.cert(f"{host.name}.{kind}.crt", good, make)


def next_key(store: Store, lab: Lab, host: Host, kind: str):
    """The key a web server of an ACME lab uses after its current one (labgen.acme): its TLSA
    record is published from the start."""
    return _server_key(store, lab, f"{host.name}.{kind}.next.key", kind)


def _server_key(store: Store, lab: Lab, name: str, kind: str):
    """A web server's key of one kind (ecdsa | rsa of the profile's size), kept across renders."""
    if kind == "rsa":
        size = lab.profile.rsa_key_size
        return store.key(name, lambda: rsa.generate_private_key(65537, size),
                         lambda k: isinstance(k, rsa.RSAPrivateKey) and k.key_size == size)
    return store.key(name, new_ec_key, _is_p256)


def tsig_secret(ca, name: str) -> str:
    """A TSIG secret (base64, HMAC-SHA256) made from the lab CA's key: as lasting and as secret
    as that key, so a render keeps it without a file of its own."""
    seed = key_pem(ca[0]) + b"\0tsig\0" + name.encode()
    return base64.b64encode(hashlib.sha256(seed).digest()).decode()


def issue(ca, key, name: str, not_before: dt.datetime, not_after: dt.datetime) -> x509.Certificate:
    """A server certificate for name from the lab CA (exercises issue wrong ones on purpose)."""
    ca_key, ca_cert = ca
    usage = x509.KeyUsage(digital_signature=True, key_encipherment=isinstance(key, rsa.RSAPrivateKey),
                          content_commitment=False, data_encipherment=False, key_agreement=False,
                          key_cert_sign=False, crl_sign=False, encipher_only=False,
                          decipher_only=False)
    return (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]
                                    if len(name) <= CN_MAX else []))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            # With an empty subject the SAN must be critical (RFC 5280 section 4.2.1.6).
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=len(name) > CN_MAX)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage, critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))


def dnssec_key(store: Store, algorithm: str, zone: str = "dnssec"):
    """A zone's signing key (one combined KSK/ZSK, flags 257); kept so the DS stays the same."""
    if algorithm == "ED25519":
        return store.key(f"{zone}-ed25519.key", ed25519.Ed25519PrivateKey.generate,
                         lambda k: isinstance(k, ed25519.Ed25519PrivateKey))
    return store.key(f"{zone}-ecdsap256sha256.key", new_ec_key, _is_p256)


def ssh_key(store: Store, name: str) -> tuple[bytes, str]:
    """An Ed25519 SSH key, kept between renders: (private key in OpenSSH's format, public line)."""
    key = store.key(f"ssh-{name}.key", ed25519.Ed25519PrivateKey.generate,
                    lambda k: isinstance(k, ed25519.Ed25519PrivateKey))
    return openssh_pair(key, name)


def openssh_pair(key, comment: str) -> tuple[bytes, str]:
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    return private, f"{public} {comment}"

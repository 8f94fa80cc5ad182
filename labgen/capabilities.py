"""Which server and OpenSSL versions accept which directives: one table, as in Mozilla's
ssl-config-generator, so a config rendered for Debian 12 is one its nginx accepts."""

from __future__ import annotations

from dataclasses import dataclass

# Version presets for the platforms labgen renders for. debian13 is the lab image.
TARGETS: dict[str, dict[str, str]] = {
    "debian13": {"nginx": "1.26", "apache": "2.4.66", "openssl": "3.5"},
    "debian12": {"nginx": "1.22", "apache": "2.4.62", "openssl": "3.0"},
}
DEFAULT_TARGET = "debian13"

# feature -> (software whose version gates it, first version that has it)
FEATURES: dict[str, tuple[str, str]] = {
    # nginx 1.25.1 replaced "listen ... http2" with the "http2 on" directive.
    "nginx_http2_directive": ("nginx", "1.25.1"),
    # HTTP/3 over QUIC (RFC 9114) arrived in nginx 1.25.0.
    "nginx_http3": ("nginx", "1.25.0"),
    # ML-KEM hybrid key exchange (X25519MLKEM768) is in OpenSSL from 3.5.
    "openssl_mlkem": ("openssl", "3.5"),
}

# Groups that need a feature; a group missing here needs nothing special.
GROUP_FEATURES = {"X25519MLKEM768": "openssl_mlkem"}


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


@dataclass(frozen=True)
class Target:
    """The server and OpenSSL versions a config is rendered for."""

    name: str
    nginx: str
    apache: str
    openssl: str

    def has(self, feature: str) -> bool:
        software, first = FEATURES[feature]
        return version_tuple(getattr(self, software)) >= version_tuple(first)

    def groups(self, wanted: list[str]) -> list[str]:
        """The profile's key-exchange groups this OpenSSL offers, in the profile's order."""
        return [g for g in wanted if g not in GROUP_FEATURES or self.has(GROUP_FEATURES[g])]

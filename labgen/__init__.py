"""labgen: one lab file -> a verified secure web-server lab (TLS 1.3, HSTS, DNSSEC, DANE, IPv6)."""

__version__ = "0.1.0"

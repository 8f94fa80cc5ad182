"""labgen: one lab file -> a verified secure web-server lab (TLS 1.3, HSTS, DNSSEC, DANE, IPv6)."""

import warnings

__version__ = "0.1.0"

# labgen's output is labgen's words only. cryptography 48+ deprecates DSA, and dnspython (2.9.x)
# touches its DSA classes when `dns.dnssec` is imported, so every command printed eight lines of
# CryptographyDeprecationWarning first. labgen never signs or validates with DSA. Narrow on
# purpose: that category, raised from dnspython's DSA module, nothing else. Remove this when
# dnspython stops touching cryptography's DSA at import (tests/integration/test_newcomer.py, run
# on the newest releases in CI, fails when any dependency's warning comes back).
try:
    from cryptography.utils import CryptographyDeprecationWarning
except ImportError:  # pragma: no cover - cryptography is a dependency; keep `labgen --help` alive
    pass
else:
    warnings.filterwarnings("ignore", category=CryptographyDeprecationWarning,
                            module=r"dns\.dnssecalgs\.dsa")

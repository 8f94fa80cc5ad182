"""How fast a lab's DNS moves: the zone's TTLs and BIND's dnssec-policy timings, in seconds.

A real zone keeps records for an hour and signatures for two weeks, so a key roll takes days.
A lesson needs the same steps in minutes, and CI in about a minute: same policy, shorter clocks.
`dnssec.pace` picks a preset; `dnssec.timings` changes single values of it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

DAY = 86400


@dataclass(frozen=True)
class Pace:
    name: str
    ttl: int  # every record of the zone
    negative_ttl: int  # SOA minimum: how long "no such name" is cached (RFC 2308)
    dnskey_ttl: int
    publish_safety: int  # extra wait before a new key is used
    retire_safety: int  # extra wait before an old key goes
    zone_propagation_delay: int  # a change reaching every secondary
    parent_ds_ttl: int
    parent_propagation_delay: int  # a DS change reaching every server of the parent
    signatures_validity: int
    signatures_refresh: int  # BIND re-signs when less than this remains
    signatures_jitter: int  # spreads expirations so not every signature is due at once
    purge_keys: int  # how long a removed key's files are kept

    def timings(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "name"}

    def max_zone_ttl(self, *, parent: bool = False) -> int:
        """The policy's max-zone-ttl: the longest TTL in a zone BIND signs at this pace, so that
        every record labgen renders loads. BIND refuses a zone holding a longer one ("out of
        range"); the parent zone holds the child's DS at parent_ds_ttl (a day in production)."""
        return max(self.ttl, self.dnskey_ttl, self.parent_ds_ttl if parent else 0)

    def problems(self) -> list[tuple[str, str]]:
        """(timing, problem) for values BIND or the zone would refuse or that make no sense."""
        found = []
        if self.signatures_refresh * 10 >= self.signatures_validity * 9:
            found.append(("signatures_refresh", f"{self.signatures_refresh} s must be under 90 % of "
                          f"signatures_validity ({self.signatures_validity} s), as BIND requires"))
        if self.signatures_jitter >= self.signatures_validity - self.signatures_refresh:
            found.append(("signatures_jitter", f"{self.signatures_jitter} s must be under "
                          "signatures_validity minus signatures_refresh "
                          f"({self.signatures_validity - self.signatures_refresh} s)"))
        if self.negative_ttl > self.ttl:
            found.append(("negative_ttl", f"{self.negative_ttl} s is longer than ttl ({self.ttl} s)"))
        if self.dnskey_ttl * 2 > self.signatures_validity:
            found.append(("dnskey_ttl", f"{self.dnskey_ttl} s is more than half of "
                          f"signatures_validity ({self.signatures_validity} s)"))
        return found


PACES = {
    # BIND 9.20's own defaults (dnssec-policy "default"), with labgen's hour-long zone TTL.
    "production": Pace("production", ttl=3600, negative_ttl=300, dnskey_ttl=3600,
                       publish_safety=3600, retire_safety=3600, zone_propagation_delay=300,
                       parent_ds_ttl=DAY, parent_propagation_delay=3600,
                       signatures_validity=14 * DAY, signatures_refresh=5 * DAY,
                       signatures_jitter=12 * 3600, purge_keys=90 * DAY),
    # A ZSK roll in about 4 minutes, a KSK roll in under 10: every step still visible.
    "lesson": Pace("lesson", ttl=60, negative_ttl=30, dnskey_ttl=60, publish_safety=10,
                   retire_safety=10, zone_propagation_delay=10, parent_ds_ttl=60,
                   parent_propagation_delay=10, signatures_validity=600, signatures_refresh=500,
                   signatures_jitter=30, purge_keys=600),
    # What CI uses: a ZSK roll in under 2 minutes.
    "test": Pace("test", ttl=10, negative_ttl=10, dnskey_ttl=10, publish_safety=5,
                 retire_safety=5, zone_propagation_delay=5, parent_ds_ttl=10,
                 parent_propagation_delay=5, signatures_validity=300, signatures_refresh=260,
                 signatures_jitter=10, purge_keys=300),
}
DEFAULT_PACE = "production"

# How long a certificate from the lab's ACME CA lives (certificates.lifetime; labgen.acme),
# seconds from issuance to expiry.
LIFETIMES = {
    "short-lived": 6 * DAY,  # Let's Encrypt's short-lived certificates (2025)
    "47-days": 47 * DAY,  # the longest the CA/Browser Forum allows from 2029 (ballot SC-081)
    "90-days": 90 * DAY,  # Let's Encrypt's classic lifetime
    "lesson": 3600,  # renewed on its own every 40 minutes: students see it happen
    "test": 600,  # CI
}
DEFAULT_LIFETIME = "short-lived"

TIMINGS = tuple(PACES[DEFAULT_PACE].timings())
MAX_SECONDS = 365 * DAY


def with_timings(pace: Pace, changes: dict[str, int]) -> Pace:
    return replace(pace, **changes) if changes else pace

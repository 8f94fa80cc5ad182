"""Online signing by BIND (dnssec.signer: bind): dnssec-policy with inline signing on ns1.

labgen still makes the keys, so the DS is known before `up`: a KSK and a ZSK (or one CSK) in
BIND's key-file format, each with a .state file that tells BIND the key is already published,
signing and (for the KSK) named by the DS at the parent. From then on BIND owns them: it signs,
re-signs before signatures run out, publishes CDS/CDNSKEY and rolls keys when asked
(`rndc dnssec -rollover`), recording every step in the .state files.

BIND writes beside the zone and the keys, so it works on copies in WORK_DIR: the rendered zone
and keys stay in /etc/bind/labgen, owned by root and compared by every deploy, and the seed
script (SEED, run by the deploy before named-checkconf) copies them into WORK_DIR.
"""

from __future__ import annotations

import datetime as dt

from . import dnszone
from .spec import Lab

WORK_DIR = "/var/lib/bind/labgen"
WORK_KEYS = f"{WORK_DIR}/keys"
SEED = "/usr/local/sbin/labgen-bind-seed"
POLICY = "labgen"
KEY_LENGTH = 256  # bits: ECDSA P-256 and Ed25519 alike


def online(lab: Lab) -> bool:
    return lab.dnssec.signer == "bind"


def work_zone(lab: Lab) -> str:
    return f"{WORK_DIR}/db.{lab.domain}"


def prepare(lab: Lab) -> str:
    """What the deploy runs before the name server's checker (with its '&&')."""
    return f"{SEED} && " if online(lab) else ""


def roles(lab: Lab) -> list[tuple[str, int]]:
    """(key name in the store, DNSKEY flags) of each key: the first one's DS goes to the parent."""
    if not online(lab) or lab.dnssec.keys == "csk":
        return [("dnssec", 257)]
    return [("dnssec", 257), ("dnssec-zsk", 256)]


def state_text(lab: Lab, tag: int, flags: int, since: dt.datetime) -> str:
    """A key's .state file as BIND 9.20 writes it: every record it takes part in is
    omnipresent already, as the zone is served signed from its first start."""
    stamp = since.strftime("%Y%m%d%H%M%S")
    ksk = flags == 257
    zsk = flags == 256 or lab.dnssec.keys == "csk"
    lines = [f"; This is the state of key {tag}, for {lab.domain}.",
             f"Algorithm: {dnszone.BIND_ALGORITHMS[lab.dnssec.algorithm]}", f"Length: {KEY_LENGTH}",
             "Lifetime: 0", f"KSK: {'yes' if ksk else 'no'}", f"ZSK: {'yes' if zsk else 'no'}",
             f"Generated: {stamp}", f"Published: {stamp}", f"Active: {stamp}",
             f"DNSKEYChange: {stamp}", "DNSKEYState: omnipresent"]
    if ksk:
        lines += [f"KRRSIGChange: {stamp}", "KRRSIGState: omnipresent",
                  f"DSChange: {stamp}", "DSState: omnipresent"]
    if zsk:
        lines += [f"ZRRSIGChange: {stamp}", "ZRRSIGState: omnipresent"]
    return "\n".join(lines + ["GoalState: omnipresent"]) + "\n"


def seed_script(lab: Lab, source: str) -> str:
    """SEED: copy the rendered zone when it changed, and labgen's keys when they are a new set."""
    work = work_zone(lab)
    return f"""#!/bin/sh
# Written by labgen. BIND signs {lab.domain} online and records each key's state beside it, so it
# works on copies in {WORK_DIR}, where it may write. This script puts labgen's rendered zone and
# keys there; the deploy runs it before named-checkconf.
# - The zone is copied when it changed: on its next start or 'rndc reload' BIND signs what changed.
# - The keys are copied only when labgen made a new set (a render with other keys): after that BIND
#   owns them, rolls included, and a deploy must never put a retired key back.
set -eu
install -d -o bind -g bind -m 0750 {WORK_DIR} {WORK_KEYS}
cmp -s {source} {work} || install -o bind -g bind -m 0640 {source} {work}
set -- $(cat {dnszone.KEY_DIR}/K* | sha256sum)
if [ "$(cat {WORK_KEYS}/.labgen-keys 2>/dev/null || true)" != "$1" ]; then
    rm -f {WORK_KEYS}/K* {work}.signed {work}.signed.jnl {work}.jnl {work}.jbk
    install -o bind -g bind -m 0600 {dnszone.KEY_DIR}/K* {WORK_KEYS}/
    echo "$1" > {WORK_KEYS}/.labgen-keys
fi
"""


def policy(lab: Lab) -> list[tuple[str, str]]:
    """The dnssec-policy clause's timing statements, in seconds, from the lab's pace."""
    p = lab.dnssec.pace
    items = [("dnskey-ttl", p.dnskey_ttl), ("max-zone-ttl", p.ttl),
             ("publish-safety", p.publish_safety), ("retire-safety", p.retire_safety),
             ("zone-propagation-delay", p.zone_propagation_delay),
             ("parent-ds-ttl", p.parent_ds_ttl), ("parent-propagation-delay", p.parent_propagation_delay),
             ("signatures-validity", p.signatures_validity),
             ("signatures-validity-dnskey", p.signatures_validity),
             ("signatures-refresh", p.signatures_refresh)]
    if lab.target.has("bind_signatures_jitter"):
        items.append(("signatures-jitter", p.signatures_jitter))
    items.append(("purge-keys", p.purge_keys))
    return [(name, str(value)) for name, value in items]


def source_text(lab: Lab, zone) -> str:
    """The unsigned zone as labgen rendered it, headed by how BIND signs it and how to change it."""
    work = work_zone(lab)
    return (f"; labgen zone {lab.domain}, unsigned. BIND signs it online (dnssec-policy "
            f"\"{POLICY}\", inline signing)\n; and serves the signed copy {work}.signed.\n"
            f"; After a change here, on this host (as root): {SEED} && rndc reload {lab.domain}\n"
            f"; The keys' state: rndc dnssec -status {lab.domain}\n"
            + zone.to_text(sorted=True, want_origin=True))


# What a signature may lack of the refresh interval when the checks look: BIND re-signs when
# less than the interval remains, on a timer that may come round a little late.
REFRESH_GRACE = 60


def refresh(lab: Lab) -> dt.timedelta:
    """How long every signature must still be valid while the signer keeps up: BIND's
    signatures-refresh, or for labgen's own signing the same five days (dnszone)."""
    seconds = lab.dnssec.pace.signatures_refresh if online(lab) else dnszone.SIGNATURE_REFRESH_DAYS * 86400
    return dt.timedelta(seconds=seconds - REFRESH_GRACE)


def describe(span: dt.timedelta) -> str:
    seconds = span.total_seconds()
    if abs(seconds) >= 2 * 86400:
        return f"{seconds / 86400:.1f} days"
    if abs(seconds) >= 2 * 3600:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / 60:.1f} minutes"

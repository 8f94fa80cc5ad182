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


def work_zone(domain: str) -> str:
    return f"{WORK_DIR}/db.{domain}"


def prepare(lab: Lab) -> str:
    """What the deploy runs before the name server's checker (with its '&&')."""
    return f"{SEED} && " if online(lab) else ""


def roles(lab: Lab) -> list[tuple[str, int]]:
    """(key name in the store, DNSKEY flags) of each key: the first one's DS goes to the parent."""
    if not online(lab) or lab.dnssec.keys == "csk":
        return [("dnssec", 257)]
    return [("dnssec", 257), ("dnssec-zsk", 256)]


def state_text(domain: str, algorithm: str, combined: bool, tag: int, flags: int,
               since: dt.datetime) -> str:
    """A key's .state file as BIND 9.20 writes it: every record it takes part in is
    omnipresent already, as the zone is served signed from its first start. combined: a CSK."""
    stamp = since.strftime("%Y%m%d%H%M%S")
    ksk = flags == 257
    zsk = flags == 256 or combined
    lines = [f"; This is the state of key {tag}, for {domain}.",
             f"Algorithm: {dnszone.BIND_ALGORITHMS[algorithm]}", f"Length: {KEY_LENGTH}",
             "Lifetime: 0", f"KSK: {'yes' if ksk else 'no'}", f"ZSK: {'yes' if zsk else 'no'}",
             f"Generated: {stamp}", f"Published: {stamp}", f"Active: {stamp}",
             f"DNSKEYChange: {stamp}", "DNSKEYState: omnipresent"]
    if ksk:
        lines += [f"KRRSIGChange: {stamp}", "KRRSIGState: omnipresent",
                  f"DSChange: {stamp}", "DSState: omnipresent"]
    if zsk:
        lines += [f"ZRRSIGChange: {stamp}", "ZRRSIGState: omnipresent"]
    return "\n".join(lines + ["GoalState: omnipresent"]) + "\n"


def key_files(domain: str, algorithm: str, keys: list[tuple[object, int]],
              now: dt.datetime) -> dict[str, tuple[str, bool]]:
    """Every key of a zone BIND signs, in BIND's format with its .state: (private key, flags)
    pairs, one with flags 257 alone being a CSK."""
    combined = len(keys) == 1
    files = {}
    for key, flags in keys:
        files.update(dnszone.bind_key_files(
            domain, algorithm, key, now, flags,
            lambda tag, f, since: state_text(domain, algorithm, combined, tag, f, since)))
    return files


# In an ACME lab (labgen.acme): the TSIG keys with which each web server changes its TLSA
# record, rendered root-only beside the zone's keys and copied by the seed where named (group
# bind) reads them.
TSIG_SOURCE = f"{dnszone.KEY_DIR}/tlsa-keys.conf"
TSIG_WORK = f"{WORK_DIR}/tlsa-keys.conf"


def seed_script(domain: str, source: str, max_ttl: int, tsig: bool = False) -> str:
    """SEED: check that the rendered zone loads under the policy's max-zone-ttl (max_ttl), copy it
    when it changed, and labgen's keys when they are a new set (tsig: and the TSIG keys named
    reads)."""
    work = work_zone(domain)
    copy_tsig = f"install -o root -g bind -m 0640 {TSIG_SOURCE} {TSIG_WORK}\n" if tsig else ""
    return f"""#!/bin/sh
# Written by labgen. BIND signs {domain} online and records each key's state beside it, so it
# works on copies in {WORK_DIR}, where it may write. This script puts labgen's rendered zone and
# keys there; the deploy runs it before named-checkconf.
# - The zone is copied when labgen's changed: on its next start or 'rndc reload' BIND signs it.
# - The keys are copied only when labgen made a new set (a render with other keys): after that BIND
#   owns them, rolls included, and a deploy must never put a retired key back.
set -eu
# BIND loads the zone under its dnssec-policy's max-zone-ttl and refuses it whole when one
# record's TTL is longer ("out of range"); named-checkconf -z does not apply that limit. So the
# zone is loaded here as the server will, and a zone it would refuse is neither copied nor served.
if ! out=$(named-checkzone -l {max_ttl} {domain} {source} 2>&1); then
    echo "$out" >&2
    exit 1
fi
install -d -o bind -g bind -m 0750 {WORK_DIR} {WORK_KEYS}
# Copied when labgen rendered another zone, not when BIND's copy moved on by itself (dynamic
# updates such as a parent's new DS live in its journal, which then no longer applies).
set -- $(sha256sum < {source})
if [ "$(cat {work}.labgen 2>/dev/null || true)" != "$1" ]; then
    install -o bind -g bind -m 0640 {source} {work}
    rm -f {work}.jnl
    echo "$1" > {work}.labgen
fi
set -- $(cat {dnszone.KEY_DIR}/K* | sha256sum)
if [ "$(cat {WORK_KEYS}/.labgen-keys 2>/dev/null || true)" != "$1" ]; then
    rm -f {WORK_KEYS}/K* {work}.signed {work}.signed.jnl {work}.jnl {work}.jbk
    install -o bind -g bind -m 0600 {dnszone.KEY_DIR}/K* {WORK_KEYS}/
    echo "$1" > {WORK_KEYS}/.labgen-keys
fi
{copy_tsig}"""


def policy(lab: Lab, *, parent: bool = False) -> list[tuple[str, str]]:
    """The dnssec-policy clause's timing statements, in seconds, from the lab's pace; parent:
    the parent zone's (parentzone.py), which holds the lab's DS."""
    p = lab.dnssec.pace
    items = [("dnskey-ttl", p.dnskey_ttl), ("max-zone-ttl", p.max_zone_ttl(parent=parent)),
             ("publish-safety", p.publish_safety), ("retire-safety", p.retire_safety),
             ("zone-propagation-delay", p.zone_propagation_delay),
             ("parent-ds-ttl", p.parent_ds_ttl), ("parent-propagation-delay", p.parent_propagation_delay),
             ("signatures-validity", p.signatures_validity),
             ("signatures-validity-dnskey", p.signatures_validity),
             ("signatures-refresh", p.signatures_refresh),
             # Debian 12's BIND (9.18.49) has it too, and needs it: its default (12 h) is longer
             # than a lesson's whole signature validity.
             ("signatures-jitter", p.signatures_jitter), ("purge-keys", p.purge_keys)]
    return [(name, str(value)) for name, value in items]


def source_text(domain: str, zone, note: str = "", policy: str = POLICY) -> str:
    """The unsigned zone as labgen rendered it, headed by how BIND signs it and how to change it."""
    work = work_zone(domain)
    return (f"; labgen zone {domain}, unsigned. BIND signs it online (dnssec-policy "
            f"\"{policy}\", inline signing)\n; and serves the signed copy {work}.signed.\n"
            f"; After a change here, on this host (as root): {SEED} && rndc reload {domain}\n"
            f"; The keys' state: rndc dnssec -status {domain}\n{note}"
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


# BIND asks the parental agents for the DS at each key event and otherwise about hourly; a roll
# at a lesson's pace waits for the parent sooner. This service has BIND ask again (rndc loadkeys
# runs the key manager, which queries the parental agents) every parent propagation delay.
CHECKDS = "/usr/local/sbin/labgen-checkds"
CHECKDS_UNIT = "labgen-checkds.service"


def every_script(header: str, usage: str, body: str) -> str:
    """A shell program that does body once, or every --every SECONDS (a labgen service)."""
    return (f"#!/bin/sh\n# Written by labgen: {header}\n# Usage: {usage} [--every SECONDS]\n"
            f"while :; do\n{body}    [ \"${{1:-}}\" = --every ] || break\n    sleep \"$2\"\ndone\n")


def every_unit(description: str, program: str, seconds: int) -> str:
    """The systemd service that runs an every_script program every so many seconds."""
    return (f"# Written by labgen: {description}, every {seconds} s ({program}).\n[Unit]\n"
            f"Description=labgen: {description}\nAfter=named.service\n\n[Service]\n"
            f"ExecStart={program} --every {seconds}\nRestart=always\nRestartSec=5\n\n"
            "[Install]\nWantedBy=multi-user.target\n")


def checkds_script(lab: Lab) -> str:
    return every_script(f"have BIND look for the DS of {lab.domain} at its parent (parental-agents)\n"
                        "# now: a KSK roll goes on once BIND has seen the parent change its DS.",
                        CHECKDS, f"    rndc loadkeys {lab.domain} >/dev/null 2>&1\n")


def checkds_unit(lab: Lab) -> str:
    return every_unit(f"BIND checks the DS of {lab.domain} at its parent", CHECKDS,
                      lab.dnssec.pace.parent_propagation_delay)

"""The parent zone of a lab whose zone BIND signs: the lab's domain without its first label,
served by the lab's `parent` host (spec.PARENT_HOST) as a registry would serve it.

It delegates the lab's zone (NS, glue) and publishes its DS, made from the lab's KSK at render
time, and it is signed online by BIND like the lab's zone (signing.py), with a key labgen makes,
so its DS is the one trust anchor of the lab's resolver and client. From then on it follows the
lab: labgen-cds-scan (a service on the parent host) reads the child's CDS and CDNSKEY (RFC 7344)
every scan interval, and when they validate through the DS the parent holds now (dnssec-cds does
that check), replaces the DS set with what they say, by dynamic update (nsupdate -l). A KSK roll
on ns1 thus reaches the parent by itself, and BIND on ns1 sees the new DS there (parental-agents).
"""

from __future__ import annotations

import datetime as dt

import dns.name
import dns.rdata
import dns.zone

from . import dnszone, signing
from .spec import PARENT_NS, Lab

SCAN = "/usr/local/sbin/labgen-cds-scan"
SCAN_UNIT = "labgen-cds-scan.service"
POLICY = "labgen-parent"


def ns_name(lab: Lab) -> str:
    return f"{PARENT_NS}.{lab.parent.domain}"


def build(lab: Lab, child_ds, now: dt.datetime) -> dns.zone.Zone:
    """The unsigned parent zone: its own name server, and the lab's delegation with its DS."""
    parent, pace = lab.parent, lab.dnssec.pace
    origin = dns.name.from_text(parent.domain)
    zone = dns.zone.Zone(origin)
    child = dns.name.from_text(lab.domain).relativize(origin).to_text()
    ns = lab.role("authdns")

    def add(name: str, rdtype: str, text: str, ttl: int = pace.ttl) -> None:
        zone.find_rdataset(name, rdtype, create=True).add(
            dns.rdata.from_text("IN", rdtype, text, origin=origin), ttl)

    add("@", "SOA", f"{PARENT_NS} hostmaster {dnszone.serial_for(now)} 7200 3600 1209600 {pace.negative_ttl}")
    add("@", "NS", PARENT_NS)
    add(PARENT_NS, "A", str(parent.ns_ipv4))
    add(PARENT_NS, "AAAA", str(parent.ns_ipv6))
    add(child, "NS", f"{ns.fqdn}.")
    glue = dns.name.from_text(ns.fqdn).relativize(origin).to_text()
    add(glue, "A", str(ns.ipv4))
    add(glue, "AAAA", str(ns.ipv6))
    add(child, "DS", child_ds.to_text(), pace.parent_ds_ttl)
    return zone


# Shell functions of every parent that follows CDS: a single lab's parent host (scan_script)
# and a class's lab root (classroom/lifecycle.py). Each takes CHILD NS WORK; WORK/dsset holds
# the DS set the parent publishes now, as dig shows it.
CDS_FUNCTIONS = r"""# child_sets: the child's DNSKEY, CDS and CDNSKEY sets with their signatures in WORK/child;
# true when it publishes CDS.
child_sets() {
    for type in DNSKEY CDS CDNSKEY; do
        dig +norec +dnssec +noall +answer +time=2 +tries=1 @"$2" "$1" $type
    done > "$3/child"
    grep -q "[[:space:]]CDS[[:space:]]" "$3/child"
}
# delete_asked: true when the CDS set is RFC 8078's delete form alone (the child is going
# insecure) and validates through the DS set (delv, anchored there). dnssec-cds has no
# delete form: it refuses the set.
delete_asked() {
    [ "$(awk '$4 == "CDS" {print $5, $6, $7, $8}' "$3/child" | sort -u)" = "0 0 0 00" ] || return 1
    awk '$4 == "DS" {d = ""; for (i = 8; i <= NF; i++) d = d $i
        printf "trust-anchors { \"%s\" static-ds %s %s %s \"%s\"; };\n", $1, $5, $6, $7, d}' \
        "$3/dsset" > "$3/anchors"
    timeout 20 delv -a "$3/anchors" +root="$1" @"$2" "$1" CDS 2>/dev/null | grep -q '^; fully validated'
}
# follow_cds [dnssec-cds options]: what dnssec-cds makes of the child's CDS, checked through the
# DS set. It takes CDS signed after the DS file's time only (replay protection); BIND dates its
# signatures an hour back, so the DS set is dated two hours back.
follow_cds() {
    child=$1 work=$3
    shift 3
    touch -d '-2 hours' "$work/dsset"
    dnssec-cds "$@" -f "$work/child" -d "$work/dsset" "$child"
}
"""
DELETED = "the DS set is gone: the child asked with a delete CDS (RFC 8078)"


def scan_script(lab: Lab) -> str:
    """labgen-cds-scan: once, or every --every seconds; one line per child and change."""
    ns = lab.role("authdns")
    ttl = lab.dnssec.pace.parent_ds_ttl
    header = f"""the parent zone {lab.parent.domain} follows the CDS and CDNSKEY records of its
# child {lab.domain} (RFC 7344, RFC 8078). Each scan asks the child's name server for its DNSKEY,
# CDS and CDNSKEY sets with their signatures, and dnssec-cds (or delv, for a delete CDS) checks
# that they validate through the DS the parent publishes now; only then does the DS set become
# what the CDS says (nsupdate -l).
set -u
{CDS_FUNCTIONS}
scan() {{
    work=$(mktemp -d) || return 1
    dig +norec +noall +answer @127.0.0.1 "$1" DS > "$work/dsset"
    if [ -s "$work/dsset" ] && child_sets "$1" "$2" "$work"; then
        if delete_asked "$1" "$2" "$work"; then
            printf 'update del %s. IN DS\\nsend\\n' "$1" | nsupdate -l && echo "$1: {DELETED}"
        elif follow_cds "$1" "$2" "$work" -u -T {ttl} > "$work/update" 2> "$work/error"; then
            if grep -q '^update' "$work/update"; then
                nsupdate -l "$work/update" && echo "$1: the DS set follows its CDS now:" \\
                    $(grep '^update add' "$work/update" | awk '{{print $7, $8, $9}}' | tr '\\n' ' ')
            fi
        else
            echo "$1: CDS not taken: $(tail -n 1 "$work/error")"
        fi
    fi
    rm -rf "$work"
}}"""
    return signing.every_script(header, SCAN, f"    scan {lab.domain} {ns.ipv4}\n")


def scan_unit(lab: Lab) -> str:
    return signing.every_unit(f"{lab.parent.domain} follows the CDS of {lab.domain} (RFC 7344)", SCAN,
                              lab.dnssec.pace.parent_propagation_delay)

"""The lab root: a signed zone above every student's zone, with one delegation per student (NS,
glue, and the student's DS unless the class lets students upload their own), and its DS as the
one trust anchor of the class. Students are rendered first; the root is built from their DS.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import dns.name
import dns.rdata
import dns.zone

from .. import dnszone, pki
from ..render import _locked, _umask, UMASK, render
from ..spec import Lab, Parent
from .spec import Class, Student

ROOT_NS = "ns"  # the root's name server: ns.<root>
ROOT_NS_OFFSET = 10  # its address in the root's subnets
# Its address on every student's network (labgen's own hosts start at .10): each student's
# resolver asks it for the zones of the class, and each student's ns1 notifies it.
ON_STUDENT_NET = 5
ALGORITHM = "ECDSAP256SHA256"


def root_ns_addresses(klass: Class):
    return klass.root_ipv4[ROOT_NS_OFFSET], klass.root_ipv6[ROOT_NS_OFFSET]


def student_lab(klass: Class, student: Student, root_ds) -> Lab:
    """The student's lab as the class runs it: under the lab root, trusting the root's DS."""
    net4, net6 = student.lab.ipv4_network, student.lab.ipv6_network
    return dataclasses.replace(student.lab, parent=Parent(
        klass.root, net4[ON_STUDENT_NET], net6[ON_STUDENT_NET], root_ds.to_text()))


def student_ds(build: Path, domain: str):
    """A student's DS as labgen rendered it (build/<lab>/dns/<zone>.ds)."""
    line = (build / "dns" / f"{domain}.ds").read_text(encoding="utf-8").split()
    return dns.rdata.from_text("IN", "DS", " ".join(line[4:]))


def build(klass: Class, ds: dict[str, object | None], now: dt.datetime) -> dns.zone.Zone:
    """The unsigned root zone; ds maps each student to the DS to publish (None: insecure)."""
    origin = dns.name.from_text(klass.root)
    zone = dns.zone.Zone(origin)
    serial = int(dnszone.signing_window(now)[0].strftime("%Y%m%d00"))

    def add(name: str, rdtype: str, text: str) -> None:
        zone.find_rdataset(name, rdtype, create=True).add(
            dns.rdata.from_text("IN", rdtype, text, origin=origin), dnszone.TTL)

    v4, v6 = root_ns_addresses(klass)
    add("@", "SOA", f"{ROOT_NS} hostmaster {serial} 7200 3600 1209600 {dnszone.NEGATIVE_TTL}")
    add("@", "NS", ROOT_NS)
    add(ROOT_NS, "A", str(v4))
    add(ROOT_NS, "AAAA", str(v6))
    for student in klass.students:
        ns = student.lab.role("authdns")
        add(student.name, "NS", f"{ns.fqdn}.")
        add(f"{ns.name}.{student.name}", "A", str(ns.ipv4))  # glue
        add(f"{ns.name}.{student.name}", "AAAA", str(ns.ipv6))
        if ds.get(student.name) is not None:
            add(student.name, "DS", ds[student.name].to_text())
    return zone


def render_class(klass: Class, out: Path, *, now: dt.datetime | None = None) -> Path:
    """Render every student's lab (the single-lab render), then the signed lab root, into
    out/<class>/: students/<lab>/ and root/ (pki/, dns/db.<root>, dns/<root>.ds)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    folder = out / klass.name
    root = folder / "root"
    folder.mkdir(parents=True, exist_ok=True)
    with _umask(UMASK), _locked(folder):  # the root's key first: every student trusts its DS
        store = pki.Store(root / "pki", root / "pki")  # kept between renders
        key = pki.dnssec_key(store, ALGORITHM, zone="root")
        dnskey = dnszone.dnskey_for(key, ALGORITHM)
    anchor = dnszone.ds_for(klass.root, dnskey)
    ds = {}
    for student in klass.students:
        lab = student_lab(klass, student, anchor)
        build_dir = render(lab, folder / "students", now=now)
        ds[student.name] = student_ds(build_dir, lab.domain) if klass.ds == "root" else None
    with _umask(UMASK), _locked(folder):
        zone = build(klass, ds, now)
        dnszone.sign(zone, key, dnskey, "nsec", now)
        (root / "dns").mkdir(parents=True, exist_ok=True)
        (root / "dns" / f"db.{klass.root}").write_text(dnszone.zone_text(zone), encoding="utf-8")
        (root / "dns" / f"{klass.root}.ds").write_text(dnszone.ds_line(klass.root, anchor),
                                                        encoding="utf-8")
    return folder

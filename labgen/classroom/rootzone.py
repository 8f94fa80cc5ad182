"""The lab root: a signed zone above every student's zone, with one delegation per student (NS,
glue, and the student's DS unless the class lets students upload their own), and its DS as the
one trust anchor of the class. Students are rendered first; the root is built from their DS.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import os
import secrets
import shutil
from pathlib import Path

import yaml

import dns.dnssec
import dns.exception
import dns.name
import dns.rdata
import dns.zone

from .. import dnszone, kinds, pki
from ..engine import endpoint_vars
from ..render import UMASK, _locked, _umask, environment, render, write_manifest, zone_file
from ..errors import UsageError
from ..pace import DEFAULT_PACE, PACES
from ..spec import Lab, Parent, _show
from .access import student_key, student_password_hash
from . import placement
from .spec import ACCESS_ON_STUDENT_NET, ROOT_ON_STUDENT_NET as ON_STUDENT_NET, Class, Machine, Student

ROOT_NS = "ns"  # the root's name server: ns.<root>
ROOT_NS_OFFSET = 10  # its address in the root's subnets
ALGORITHM = "ECDSAP256SHA256"


def root_ns_addresses(klass: Class):
    return klass.root_ipv4[ROOT_NS_OFFSET], klass.root_ipv6[ROOT_NS_OFFSET]


def class_hosts(lab: Lab) -> Lab:
    """A student's lab with the hosts a class runs: the class's lab root is the parent, so a
    lab's own parent host has no place in it."""
    return dataclasses.replace(lab, hosts=tuple(h for h in lab.hosts if h.role != "parent"))


def student_lab(klass: Class, student: Student, root_ds, folder: Path) -> Lab:
    """The student's lab as the class runs it: under the lab root, trusting the root's DS, and
    entered by SSH with the student's key (classroom/access.py)."""
    net4, net6 = student.lab.ipv4_network, student.lab.ipv6_network
    return dataclasses.replace(class_hosts(student.lab), parent=Parent(
        klass.root, net4[ON_STUDENT_NET], net6[ON_STUDENT_NET], root_ds.to_text(), root_container(klass)),
        entry_key=student_key(folder, student), grading=str(net4[ACCESS_ON_STUDENT_NET]),
        endpoint=placement.endpoint_of(klass, folder, student.name),
        entry_password_hash=student_password_hash(folder, student) if klass.access.password else None)


def class_student_lab(klass: Class, student: Student, folder: Path) -> Lab:
    """A student's lab of a rendered class, trusting the lab root's DS as rendered."""
    path = folder / "root" / "dns" / f"{klass.root}.ds"
    if not path.is_file():
        raise UsageError(f"class {klass.name} has no lab root yet ({path} is missing); run "
                         f"labgen class up -c {klass.source} first")
    return student_lab(klass, student, _read_ds(path), folder)


def _read_ds(path: Path):
    """The DS of a trust anchor file as labgen writes it ('<zone>. TTL IN DS <rdata>')."""
    return dns.rdata.from_text("IN", "DS", " ".join(path.read_text(encoding="utf-8").split()[4:]))


def student_ds(build: Path, domain: str):
    """A student's DS as labgen rendered it (build/<lab>/dns/<zone>.ds)."""
    return _read_ds(build / "dns" / f"{domain}.ds")


def build(klass: Class, ds: dict[str, object | None], now: dt.datetime) -> dns.zone.Zone:
    """The unsigned root zone; ds maps each student to the DS records to publish (none: insecure)."""
    origin = dns.name.from_text(klass.root)
    zone = dns.zone.Zone(origin)
    serial = dnszone.serial_for(now)
    pace = PACES[DEFAULT_PACE]

    def add(name: str, rdtype: str, text: str, ttl: int = pace.ttl) -> None:
        zone.find_rdataset(name, rdtype, create=True).add(
            dns.rdata.from_text("IN", rdtype, text, origin=origin), ttl)

    v4, v6 = root_ns_addresses(klass)
    add("@", "SOA", f"{ROOT_NS} hostmaster {serial} 7200 3600 1209600 {pace.negative_ttl}")
    add("@", "NS", ROOT_NS)
    add(ROOT_NS, "A", str(v4))
    add(ROOT_NS, "AAAA", str(v6))
    for student in klass.students:
        ns = student.lab.role("authdns")
        add(student.name, "NS", f"{ns.fqdn}.")
        add(f"{ns.name}.{student.name}", "A", str(ns.ipv4))  # glue
        add(f"{ns.name}.{student.name}", "AAAA", str(ns.ipv6))
        for record in ds.get(student.name) or []:
            # No longer than the student's BIND takes the DS TTL to be (its policy's
            # parent-ds-ttl): a KSK roll removes the old key once that has passed.
            add(student.name, "DS", record.to_text(), min(pace.ttl, student.lab.dnssec.pace.parent_ds_ttl))
    return zone


ROOT_HOST = "root"  # the root's container: labgen-<class>-root; its labels name <class>-root


def root_lab_name(klass: Class) -> str:
    return f"{klass.name}-{ROOT_HOST}"


def root_container(klass: Class) -> str:
    return f"labgen-{klass.name}-{ROOT_HOST}"


def root_anchor(klass: Class, folder: Path):
    """The lab root's DS: its key is made once and kept, as every student's resolver trusts it."""
    folder.mkdir(parents=True, exist_ok=True)
    with _umask(UMASK), _locked(folder):
        store = pki.Store(folder / "root" / "pki", folder / "root" / "pki")
        key = pki.dnssec_key(store, ALGORITHM, zone="root")
    return key, dnszone.ds_for(klass.root, dnszone.dnskey_for(key, ALGORITHM))


# What one student's zone may cost the lab root (and each machine's copy of it), BIND's own
# limits on a secondary zone: a transfer past them fails, and the root keeps serving the copy it
# had, every other zone untouched. A student's lab zone holds about 60 records, signed.
STUDENT_ZONE_LIMITS = (("max-records", "5000"), ("max-transfer-time-in", "2"),  # minutes
                       ("max-transfer-idle-in", "1"), ("max-journal-size", "1M"))
BACKBONE_KEY = "labgen-backbone"  # the TSIG key the copies of the root sign their transfers with
BACKBONE_KEY_SOURCE = "/etc/bind/labgen/keys/backbone.key"  # root-only, as rendered
BACKBONE_KEY_FILE = "/etc/bind/labgen-backbone.key"  # where named (group bind) reads it


@dataclasses.dataclass(frozen=True)
class Copy:
    """One copy of the lab root: on which machine, under which name in the deploy, for which
    students (the ones on its machine; it takes every other student's zone from their copy)."""

    host: str  # its host in the root's inventory (ns, or ns-<machine> for a class over machines)
    machine: Machine
    students: tuple[Student, ...]


def copies(klass: Class, placed: dict[str, str]) -> list[Copy]:
    """The copies of the lab root: one per machine that runs students (one in all on one machine)."""
    if len(klass.machines) == 1:
        return [Copy(ROOT_NS, klass.machines[0], klass.students)]
    found = []
    for machine in klass.machines:
        mine = tuple(s for s in klass.students if placed.get(s.name) == machine.name)
        if mine:
            found.append(Copy(f"{ROOT_NS}-{machine.name}", machine, mine))
    return found


def backbone_secret(folder: Path) -> str:
    """The class's TSIG secret for the backbone (HMAC-SHA256, base64), made once, kept 0600."""
    path = folder / "root" / "pki" / "backbone.secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
    return path.read_text(encoding="utf-8").strip()


def render_root(klass: Class, folder: Path, key, ds: dict, now: dt.datetime,
                placed: dict[str, str] | None = None) -> Path:
    """root/: the signed zone, its DS, and for each copy of the lab root (one per machine) its
    name server's tree, manifest and inventory host."""
    root = folder / "root"
    dnskey = dnszone.dnskey_for(key, ALGORITHM)
    zone = build(klass, ds, now)
    dnszone.sign(zone, [(key, dnskey)], "nsec", now)
    text = dnszone.zone_text(zone)
    every = copies(klass, placed or {})
    spread = len(klass.machines) > 1
    with _umask(UMASK), _locked(folder):
        secret = backbone_secret(folder) if spread else ""
        (root / "dns").mkdir(parents=True, exist_ok=True)
        (root / "dns" / f"db.{klass.root}").write_text(text, encoding="utf-8")
        (root / "dns" / f"{klass.root}.ds").write_text(
            dnszone.ds_line(klass.root, dnszone.ds_for(klass.root, dnskey)), encoding="utf-8")
        for old in (root / "hosts").glob("*") if (root / "hosts").is_dir() else []:
            shutil.rmtree(old)  # a copy on a machine the class no longer uses
        hosts = {}
        machine_of = {s.name: c for c in every for s in c.students}
        for n, copy in enumerate(every):
            tree = root / "hosts" / copy.host
            students = [{"name": s.name, "domain": s.lab.domain, "ns_ipv4": s.lab.role("authdns").ipv4,
                         "machine": machine_of[s.name].machine.name,
                         "from_copy": machine_of[s.name].machine.address if machine_of[s.name] != copy else ""}
                        for s in klass.students if s.name in machine_of]
            conf = {"backbone": spread, "machine": copy.machine.name, "port": klass.backbone_port,
                    "key_name": BACKBONE_KEY, "key_file": BACKBONE_KEY_FILE,
                    "others": [c.machine.address for c in every if c != copy],
                    "root_from": every[0].machine.address if spread and n else ""}
            named = environment().get_template("dns/root-named.conf.j2").render(
                klass=klass, fqdn=f"{ROOT_NS}.{klass.root}", zone_path=zone_file(klass.root), students=students,
                copy=conf, limits=STUDENT_ZONE_LIMITS)
            files = [("/etc/bind/named.conf", named, 0o644)]
            if not conf["root_from"]:
                files.append((zone_file(klass.root), text, 0o644))
            if spread:
                files.append((BACKBONE_KEY_SOURCE, f'key "{BACKBONE_KEY}" {{\n    algorithm hmac-sha256;\n'
                              f'    secret "{secret}";\n}};\n', 0o600))
            for path, content, mode in files:
                (tree / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
                (tree / path.lstrip("/")).write_text(content, encoding="utf-8")
                os.chmod(tree / path.lstrip("/"), mode)
            write_manifest(tree, root / "manifests" / f"{copy.host}.json")
            hostvars = {"ansible_host": root_container(klass), "labgen_tree": f"hosts/{copy.host}",
                        "labgen_fqdn": f"{ROOT_NS}.{klass.root}", "labgen_announce": False,
                        **kinds.hostvars(kinds.KINDS["parent"]), **endpoint_vars(copy.machine.endpoint)}
            if spread:  # named, as group bind, reads the key again on every reload
                hostvars["labgen_prepare"] = (f"install -o root -g bind -m 0640 {BACKBONE_KEY_SOURCE} "
                                              f"{BACKBONE_KEY_FILE} && ")
            hosts[copy.host] = hostvars
        inventory = {"all": {"vars": {"labgen_lab": root_lab_name(klass), "labgen_domain": klass.root},
                             "children": {"authdns": {"hosts": hosts}}}}
        (root / "inventory.yml").write_text("# Ansible inventory of the lab root, rendered by labgen.\n"
                                            + yaml.safe_dump(inventory, sort_keys=False), encoding="utf-8")
    return root


def student_builds(folder: Path) -> Path:
    return folder / "students"


TAKEN = "taken-ds.json"  # the DS set taken in per student (class ds, lab ds submit, or its CDS)


MAX_DS = 4  # DS records a student may have the root publish at once (a roll needs two)


def _taken(folder: Path) -> dict:
    try:
        return json.loads((folder / "root" / TAKEN).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}


def _rendered_ds(folder: Path, student: Student) -> str:
    return student_ds(student_builds(folder) / student.lab.name, student.lab.domain).to_text()


def class_ds(klass: Class, folder: Path) -> dict:
    """What the root publishes for each student, as a list of DS: the DS set taken in since (by
    class ds, lab ds submit or from the student's CDS), else the DS of the rendered zone (ds:
    root) or none (ds: student: the delegation is insecure until a DS is taken in). With ds:
    root a set taken in holds only while the student's rendered keys are the ones it followed."""
    taken, found = _taken(folder), {}
    for s in klass.students:
        entry = taken.get(s.name)
        if isinstance(entry, (str, list)):  # a file from before: the DS text(s) alone
            entry = {"ds": [entry] if isinstance(entry, str) else entry, "since": None}
        rendered = _rendered_ds(folder, s) if klass.ds == "root" else None
        if entry is not None and (klass.ds == "student" or entry.get("since") == rendered):
            found[s.name] = [dns.rdata.from_text("IN", "DS", text) for text in entry["ds"]]
        else:
            found[s.name] = [dns.rdata.from_text("IN", "DS", rendered)] if rendered else []
    return found


def take_ds(klass: Class, folder: Path, student: Student, ds_texts: list[str], dnskeys: list) -> list[str]:
    """Record a student's DS set for the root (it replaces the one before), if each DS matches
    one of the zone's DNSKEYs with the SEP flag, as a DS must; returns the DS set as the root
    will publish it."""
    if not 1 <= len(ds_texts) <= MAX_DS:
        raise UsageError(f"give 1 to {MAX_DS} DS records; got {len(ds_texts)}")
    owner = dns.name.from_text(student.lab.domain)
    found = []
    for ds_text in ds_texts:
        try:
            ds = dns.rdata.from_text("IN", "DS", ds_text)
        except (dns.exception.DNSException, ValueError) as exc:
            raise UsageError(f"{_show(ds_text)} is not a DS record (key tag, algorithm, digest type, "
                             f"digest): {exc}") from None
        digest = {1: "SHA1", 2: "SHA256", 4: "SHA384"}.get(ds.digest_type)
        matches = digest and any(key.flags & 1 and dns.dnssec.make_ds(owner, key, digest) == ds
                                 for key in dnskeys)
        if not matches:
            tags = ", ".join(str(dns.dnssec.key_id(k)) for k in dnskeys) or "none"
            raise UsageError(f"the DS {ds.to_text()} matches no DNSKEY of {student.lab.domain} "
                             f"(the zone's key tags: {tags}); refused")
        if ds.to_text() not in found:
            found.append(ds.to_text())
    record_ds(klass, folder, student, found)
    return found


def record_ds(klass: Class, folder: Path, student: Student, texts: list[str]) -> None:
    """The student's DS set from now on (checked already: against the zone's keys, or by
    dnssec-cds through the DS set before)."""
    taken = _taken(folder)
    taken[student.name] = {"ds": texts, "since": _rendered_ds(folder, student) if klass.ds == "root" else None}
    (folder / "root" / TAKEN).write_text(json.dumps(taken, indent=1) + "\n", encoding="utf-8")


def render_class(klass: Class, out: Path, *, now: dt.datetime | None = None) -> Path:
    """Render every student's lab (the single-lab render, under the lab root), then the signed
    lab root, into out/<class>/: students/<lab>/ and root/."""
    now = now or dt.datetime.now(dt.timezone.utc)
    folder = out / klass.name
    key, anchor = root_anchor(klass, folder)
    for student in klass.students:
        render(student_lab(klass, student, anchor, folder), student_builds(folder), now=now)
    render_root(klass, folder, key, class_ds(klass, folder), now, placement.read(folder))
    return folder

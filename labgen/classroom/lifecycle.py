"""labgen class up / down / status: each student's lab through the single-lab lifecycle, then
the lab root's name server, attached to every student's network.

Each student's network stays internal, so a student's hosts reach their own lab and the lab
root (which routes nothing) and no other student's hosts. DNS still crosses: the root keeps a
copy of every student's zone, and every student's resolver asks it for the class's zones.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import dns.dnssec
import dns.name
import dns.rdata
from dataclasses import dataclass
from pathlib import Path

from .. import deploy, image, kinds, lifecycle, parentzone
from ..engine import LABEL, LIMITS, ROUTES_NOTHING, Engine
from ..errors import DeployError, LabgenError, UsageError
from .spec import ROOT_ON_STUDENT_NET as ON_STUDENT_NET
from .machines import Fleet
from .rootzone import (ROOT_NS, Copy, class_ds, class_hosts, copies, record_ds, render_root, root_anchor,
                       root_container, root_lab_name, student_builds, student_lab, take_ds)
from . import placement
from . import access, firewall, servicectl as service
from ..spec import Lab
from .spec import Class, Student


# Students whose networks and containers are made at once: enough to keep the engine busy
# while containers boot, few enough that a machine's 2 cores are not swamped by systemd.
PREPARING = 4


def _require_podman(engine: Engine) -> None:
    if engine.name != "podman":
        raise UsageError("a class runs on Podman (its lab root joins every student's network); "
                         "use --engine podman")


def up(klass: Class, out: Path, engine: Engine, *, log=print) -> None:
    """Every student's lab and the lab root: each lab's build, network and containers on the
    machine it is placed on, a copy of the lab root on each machine, then one ansible-playbook
    run over all their hosts (a student whose deploy fails is named at the end; the others come
    up), then what needs the root running, the access layer and the service."""
    _require_podman(engine)
    folder = out / klass.name
    fleet = Fleet(klass, folder, engine, placement.settle(klass, folder))
    key, anchor = root_anchor(klass, folder)
    if fleet.spread:
        log("== machines: " + "; ".join(f"{m.name} ({m.ssh}): {len(students)} students"
                                        for m, _, students in fleet.each()))
    labs = _prepare(klass, folder, fleet, anchor, log)
    log(f"== lab root {klass.root} (container {root_container(klass)})")
    root = render_root(klass, folder, key, class_ds(klass, folder), dt.datetime.now(dt.timezone.utc), fleet.placed)
    every = copies(klass, fleet.placed)
    _ensure_roots(klass, fleet, labs[0][2], every, log)
    broken = _deploy(klass, folder, fleet, labs, root, every, engine, log)
    _after(klass, folder, anchor, log, skip={name for name, why in broken.items() if why})
    tag, _ = engine.ensure_image(image.SUITES[klass.students[0].lab.target.name], log=log)
    _open(klass, out, fleet, tag, log)
    if any(broken.values()):  # the others are up; the trainer learns which labs are not
        raise DeployError("the deploy failed for " + "; ".join(
            f"{name} ({why[0]})" for name, why in broken.items() if why) + "; every other student's lab is up")


def _prepare(klass: Class, folder: Path, fleet: Fleet, anchor, log) -> list[tuple[Lab, Path, str]]:
    """Each student's build, network and containers on their machine, several students at once:
    their containers boot while the next ones are made. Each student's lines are printed
    together once that student is ready. Returns (lab, build, image tag) per student."""
    lock, printing, total = threading.Lock(), threading.Lock(), len(klass.students)

    def prepare(numbered):
        n, student = numbered
        lines = [f"== student {n}/{total}: {student.name} (lab {student.lab.name}, {student.lab.domain})"
                 + fleet.engine(student).where]
        lab = student_lab(klass, student, anchor, folder)
        try:
            build, tag = lifecycle.prepare(lab, student_builds(folder), fleet.engine(student),
                                           lifecycle.Phase(lambda line: lines.append(f"   {line}")), lock)
        finally:
            with printing:
                for line in lines:
                    log(line)
        return lab, build, tag

    with ThreadPoolExecutor(max_workers=PREPARING) as pool:
        return list(pool.map(prepare, enumerate(klass.students, 1)))


def _deploy(klass: Class, folder: Path, fleet: Fleet, labs, root: Path, every: list[Copy], engine: Engine,
            log) -> dict[str, list[str]]:
    """One ansible-playbook run over every student's hosts and the root's copies, one line per
    student after it; returns each lab's failed hosts (a failed root stops class up here)."""
    named = [(lab, build, lab.name) for lab, build, _ in labs]  # each lab's hosts as <lab>-<host>
    hosts = sum(len(lab.hosts) for lab, _, _ in named) + len(every)
    log(f"== deploy: one ansible-playbook run on {hosts} hosts ({len(named)} students' labs and the lab root)")
    begun = time.monotonic()
    stats = lifecycle.deploy_labs(named, engine, labs[0][2], log=lambda line: log(f"   {line}"),
                                  also=((root / "inventory.yml", root, root_lab_name(klass)),),
                                  artifacts=folder / ".ansible", tolerate=True, changes_only=True)
    failed, changed = stats.get("failed") or {}, stats.get("changed") or {}
    # Each lab's hosts by their names in the run (a prefix test would mix up students a and a-b).
    own = {lab.name: {f"{prefix}-{host.name}": host.name for host in lab.hosts} for lab, _, prefix in named}
    broken = {name: [f"{host}: {failed[run_name]}" for run_name, host in hosts.items() if run_name in failed]
              for name, hosts in own.items()}
    log(f"   deploy: {lifecycle.count(deploy.changed(stats), 'change')} ({time.monotonic() - begun:.1f} s)"
        + (f"; failed: {', '.join(name for name, why in broken.items() if why)}" if failed else ""))
    for name, hosts in own.items():  # one line per student: what the trainer scans for
        log(f"   {name}: " + (f"FAILED, {broken[name][0]}" if broken[name]
                              else lifecycle.count(sum(changed.get(h, 0) for h in hosts), "change")))
    roots = [f"{root_lab_name(klass)}-{c.host}" for c in every]
    if failing := [f"{name}: {failed[name]}" for name in roots if name in failed]:
        raise DeployError(f"the lab root's deploy failed: {'; '.join(failing)}")
    if any(changed.get(name) for name in roots):  # every student's delegation may have changed
        _flush_resolvers(klass, fleet, [klass.root], log)
    for lab, _, prefix in named:
        if not broken[lab.name]:
            for line in lifecycle.after_deploy(lab, prefix, stats, Engine.of(lab)):
                log(f"   {lab.name}: {line}")
    return broken


def _open(klass: Class, out: Path, fleet: Fleet, tag: str, log) -> None:
    """The class opens to its students: on each machine its access container and walls for its
    own students, then the grading service, then how each student enters."""
    folder = out / klass.name
    for machine, here, students in fleet.each():
        on = f" on {machine.name}" if fleet.spread else ""
        log(f"== access{on}: {access.container(klass)} {access.ensure(klass, folder, here, tag, students)}, "
            f"one SSH port per student on {access.listen(klass, here)}")
        log(f"   firewall{on}: the machine answers none of its {firewall.apply(klass, here, students)} student "
            f"networks (nft table inet {firewall.table(klass)})")
    log(f"   grading service: {service.start(Path(klass.source).resolve(), out.resolve(), klass)}; "
        f"the trainer's board: {service.board_url(klass, folder)}")
    # No status table after this: the deploy has just checked every host's service (the module
    # asks systemd), and asking again cost a class of 30 another 150 engine calls (11 s).
    log(f"class {klass.name} is up: {len(klass.students)} student labs under {klass.root}, every service "
        "running as the deploy found it (labgen class status asks each host again). Each student enters "
        "their workstation with (labgen class handouts writes their key and page):")
    for student in klass.students:
        found = access.entry(klass, student, folder, student_builds(folder))
        log(f"   {student.name}: {found.command}")


def _after(klass: Class, folder: Path, anchor, log, skip: set[str] = frozenset()) -> None:
    """What each host's kind does once its lab runs (Kind.after: the ACME CA's certificates and
    trust), for every student at once after the lab root is up: a student's names resolve only
    once the root delegates them, so a student's own deploy leaves it to this pass."""
    for student in klass.students:
        lab = student_lab(klass, student, anchor, folder)
        if lab.name in skip:
            continue
        done = []
        for host in lab.hosts:
            if command := kinds.of(host).after(lab):
                result = Engine.of(lab).exec(lab.container(host), "sh", "-c", command, timeout=600)
                if result.returncode != 0:
                    raise LabgenError(f"{student.name}: {host.name}: {command} failed: "
                                      f"{(result.stderr or result.stdout).strip()[-400:]}")
                done.append(host.name)
        if done:
            log(f"   {student.name}: the ACME CA's certificates and trust on {', '.join(done)}")


def _root_up(klass: Class, folder: Path, engine: Engine, key, log, changed: list[Student]) -> None:
    """Render the root with the students' DS as they are now, and bring its copies up; changed:
    the students whose DS set changed."""
    fleet = Fleet(klass, folder, engine)
    root = render_root(klass, folder, key, class_ds(klass, folder), dt.datetime.now(dt.timezone.utc), fleet.placed)
    tag, _ = engine.ensure_image(image.SUITES[klass.students[0].lab.target.name], log=log)
    _ensure_roots(klass, fleet, tag, copies(klass, fleet.placed), log)
    artifacts = (root / ".ansible").resolve()
    stats = deploy.run_playbook(deploy.engine_inventory([(root / "inventory.yml", root, "")], artifacts,
                                                        engine.connection),
                                artifacts, {}, envvars=engine.own_env, log=lambda line: log(f"   {line}"))
    log(f"   deploy: {lifecycle.count(deploy.changed(stats), 'change')}")
    if deploy.changed(stats):
        _flush_resolvers(klass, fleet, [s.lab.domain for s in changed], log)


def _flush_resolvers(klass: Class, fleet: Fleet, domains: list[str], log) -> None:
    """The root's DS for these zones changed: every student's resolver forgets what it holds of
    them (records and validated keys: unbound-control flush_zone), and its cached refusals.
    Nothing restarts: one student's DS must not take a classmate's resolver down."""
    script = "".join(f"unbound-control flush_zone {d} >/dev/null; " for d in domains)
    script += "unbound-control flush_bogus >/dev/null; unbound-control flush_negative >/dev/null"

    def flush(student: Student) -> None:
        resolver, engine = student.lab.role("resolver"), fleet.engine(student)
        if (state := engine.state(student.lab.container(resolver))) and state.running:
            engine.exec(student.lab.container(resolver), "sh", "-c", script)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(flush, klass.students))
    log(f"   {', '.join(domains)}: flushed from the {len(klass.students)} students' resolvers")


def ds_taken_text(student: Student, taken: list[str], changed: bool) -> str:
    """What `class ds` and `lab ds submit` answer."""
    return (f"the lab root now publishes the DS of {student.lab.domain}: {'; '.join(taken)}"
            + ("" if changed else " (it did already: nothing was redeployed)"))


def take_in_ds(klass: Class, out: Path, engine: Engine, name: str, ds_texts: list[str] | None,
               log=print) -> tuple[list[str], bool]:
    """ds: student: put a student's DS set into the lab root (given, or made from every
    key-signing key the zone publishes: both during a KSK roll), once each DS matches a DNSKEY
    the student's name server publishes. Returns the set and whether it changed: a set the root
    publishes already redeploys nothing."""
    _require_podman(engine)
    if klass.ds != "student":
        raise UsageError(f"class {klass.name} has ds: root; labgen puts every student's DS in the "
                         "root itself")
    student = klass.student(name)
    folder = out / klass.name
    near = Fleet(klass, folder, engine).engine(student)  # the copy of the root beside the student's lab
    state = near.state(root_container(klass))
    if state is None or not state.running:
        raise UsageError(f"class {klass.name} is not up; run labgen class up -c {klass.source} first")
    ns = student.lab.role("authdns")
    answer = near.exec(root_container(klass), "dig", "+short", "+norecurse", "DNSKEY",
                         student.lab.domain, f"@{ns.ipv4}").stdout
    keys = [dns.rdata.from_text("IN", "DNSKEY", line) for line in answer.splitlines() if line.strip()]
    if not ds_texts:
        sep = [k for k in keys if k.flags & 1]
        if not sep:
            raise UsageError(f"{ns.fqdn} publishes no key-signing DNSKEY for {student.lab.domain}; "
                             "is the zone signed?")
        ds_texts = [dns.dnssec.make_ds(dns.name.from_text(student.lab.domain), k, "SHA256").to_text()
                    for k in sep]
    before = set(class_ds(klass, folder)[student.name])
    taken = take_ds(klass, folder, student, ds_texts, keys)
    if {dns.rdata.from_text("IN", "DS", text) for text in taken} == before:
        return taken, False
    key, _ = root_anchor(klass, folder)
    _root_up(klass, folder, engine, key, log, [student])
    return taken, True


CDS_MARK = "@@labgen-student"
DELETE_MARK = "@@labgen-delete-cds"


def follow_cds(klass: Class, out: Path, engine: Engine, log=print) -> list[str]:
    """The lab root follows its students' CDS (RFC 7344) as a single lab's parent host does
    (parentzone.py): for each student whose name server publishes CDS, dnssec-cds, in the
    root's container, checks that the CDS validates through the DS set the root publishes now,
    and what it says becomes the student's DS set. The root is redeployed once if any changed
    (the one path every DS change takes, as for class ds). One line per change or refusal."""
    _require_podman(engine)
    folder = out / klass.name
    fleet = Fleet(klass, folder, engine)
    current = class_ds(klass, folder)
    out_text = ""
    for _, near, students in fleet.each():  # each machine's copy of the root asks its own students
        state = near.state(root_container(klass))
        if state is None or not state.running:
            raise UsageError(f"class {klass.name} is not up{near.where}; run labgen class up -c {klass.source} first")
        script = ["set -u", parentzone.CDS_FUNCTIONS]
        for student in students:
            if not current[student.name]:
                continue  # an insecure delegation: no chain for a CDS to validate through
            domain, ns = student.lab.domain, student.lab.role("authdns").ipv4
            dsset = "".join(f"{domain}. 3600 IN DS {ds.to_text()}\n" for ds in current[student.name])
            script.append(f"""echo {CDS_MARK} {student.name}
work=$(mktemp -d)
printf '%s' '{dsset}' > $work/dsset
if child_sets {domain} {ns} $work; then
    if delete_asked {domain} {ns} $work; then echo {DELETE_MARK}; else follow_cds {domain} {ns} $work 2>&1; fi
fi
rm -rf $work""")
        out_text += near.exec(root_container(klass), "sh", "-c", "\n".join(script), timeout=300).stdout
    changes = []
    followed: list[Student] = []  # whose DS set the root takes in from their CDS
    for block in out_text.split(f"{CDS_MARK} ")[1:]:
        name, _, text = block.partition("\n")
        student = klass.student(name.strip())
        lines = [line.split() for line in text.splitlines() if line.strip()]
        if not lines:
            continue  # no CDS published
        if lines == [[DELETE_MARK]]:
            record_ds(klass, folder, student, [])
            followed.append(student)
            changes.append(f"{student.name}: {parentzone.DELETED}")
            continue
        if any(fields[:1] == ["dnssec-cds:"] for fields in lines):
            changes.append(f"{student.name}: CDS not taken: {' '.join(lines[-1])[:200]}")
            continue
        found = [" ".join(fields[4:]) for fields in lines if fields[3:4] == ["DS"]]
        if found and {dns.rdata.from_text("IN", "DS", t) for t in found} != set(current[student.name]):
            record_ds(klass, folder, student, found)
            followed.append(student)
            changes.append(f"{student.name}: the DS set follows its CDS now: "
                           + "; ".join(t.split()[0] for t in found))
    if followed:
        key, _ = root_anchor(klass, folder)
        _root_up(klass, folder, engine, key, log, followed)
    return changes


def _ensure_roots(klass: Class, fleet: Fleet, tag: str, every: list[Copy], log) -> None:
    for copy in every:
        here = fleet.engines[copy.machine.name]
        log(f"   container{here.where}: {_ensure_root(klass, here, tag, copy)}")


def _ensure_root(klass: Class, engine: Engine, tag: str, copy: Copy) -> str:
    """A copy of the root's container on its machine: created, started, or replaced when its
    image or networks changed. On several machines it also answers the other copies on its
    machine's backbone address (a network of its own, with the port published there)."""
    name, nets = root_container(klass), access.attachments(copy.students, ON_STUDENT_NET)
    publish: list[str] = []
    if len(klass.machines) > 1:
        backbone = f"labgen-{root_lab_name(klass)}-backbone"
        if engine.run("network", "exists", backbone, check=False).returncode != 0:
            engine.run("network", "create", "--label", f"{LABEL}={root_lab_name(klass)}", backbone)
        nets = [(backbone, "", "")] + nets
        where = f"[{copy.machine.address}]" if ":" in copy.machine.address else copy.machine.address
        publish = [a for proto in ("udp", "tcp") for a in ("-p", f"{where}:{klass.backbone_port}:53/{proto}")]
    key = hashlib.sha256(repr((tag, nets, ROUTES_NOTHING, LIMITS, *([publish] if publish else [])))
                         .encode()).hexdigest()[:16]
    how = engine.converge(name, key, lambda: engine.create_multihomed(
        name, f"{ROOT_NS}.{klass.root}", nets, {LABEL: root_lab_name(klass), "io.labgen.key": key}, tag,
        publish))
    engine.wait_booted(name)
    return how


def down(klass: Class, out: Path, engine: Engine) -> dict[str, list[str]]:
    """The grading service, the access container and the root first (they hold on to every
    student's network), then each student's lab, then the class's firewall table."""
    removed: dict[str, list[str]] = {"services": ["grading"] if service.stop(out, klass) else []}
    fleet = Fleet(klass, out / klass.name, engine)
    for machine in klass.machines:  # a machine that is gone does not keep the others from going down
        here, names = fleet.engines[machine.name], [access.access_name(klass), root_lab_name(klass)]
        names += [s.lab.name for s in klass.students if not fleet.spread or fleet.placed.get(s.name) == machine.name]
        if here.endpoint is not None and not here.reachable():
            removed.setdefault("unreachable machines", []).append(machine.name)
            continue
        for name in names:
            for kind, items in lifecycle.down(name, here).items():
                removed.setdefault(kind, []).extend(items)
        if here.endpoint is not None:
            access.remove_sockets(klass, here)
    removed["firewall tables"] = [f"{firewall.table(klass)}{here.where}" for here in
                                  dict.fromkeys(fleet.engines.values()) if firewall.remove(klass, here)]
    return removed


@dataclass(frozen=True)
class StudentStatus:
    name: str
    lab: str
    healthy: int
    hosts: int

    @property
    def ok(self) -> bool:
        return self.healthy == self.hosts


def status(klass: Class, engine: Engine, folder: Path | None = None) -> tuple[str, list[StudentStatus]]:
    fleet = Fleet(klass, folder or Path("/nonexistent"), engine)
    roots, gone = [], set()
    for machine, here, _ in fleet.each():
        if here.endpoint is not None and not here.reachable():
            roots.append(f"{machine.name}: unreachable")
            gone.add(machine.name)
            continue
        state = here.state(root_container(klass))
        if state is None or not state.running:
            root = "missing" if state is None else "stopped"
        else:
            root = here.exec(root_container(klass), "systemctl", "is-active", "named").stdout.strip()
            root = "named " + (root or "unknown")
        roots.append(f"{machine.name}: {root}" if fleet.spread else root)
    def row(student: Student) -> StudentStatus:
        lab = class_hosts(student.lab)
        gone_with = fleet.machine(student).name in gone
        healthy = 0 if gone_with else sum(r.healthy for r in lifecycle.status(lab, fleet.engine(student)))
        return StudentStatus(student.name, lab.name, healthy, len(lab.hosts))

    with ThreadPoolExecutor(max_workers=PREPARING) as pool:  # students asked a few at a time
        rows = list(pool.map(row, klass.students))
    return "; ".join(roots), rows


def roots_ok(root: str) -> bool:
    """Every copy of the lab root runs named (status's first answer)."""
    return all(part.endswith("named active") for part in root.split("; "))


def status_table(klass: Class, root: str, rows: list[StudentStatus]) -> str:
    lines = [f"class {klass.name}: lab root {klass.root} ({root_container(klass)}: {root}); "
             f"DS {'in the root' if klass.ds == 'root' else 'taken in by the trainer'}",
             f"{'STUDENT':<16} {'LAB':<32} {'ZONE':<30} HOSTS"]
    by_name = {s.name: s for s in klass.students}
    for r in rows:
        lines.append(f"{r.name:<16} {r.lab:<32} {by_name[r.name].lab.domain:<30} "
                     f"{r.healthy}/{r.hosts} healthy")
    lines.append(f"{sum(r.ok for r in rows)} of {len(rows)} student labs healthy")
    return "\n".join(lines)


def status_json(klass: Class, out: Path, root: str, rows: list[StudentStatus], engine: Engine) -> str:
    """The class's state and each student's access, for a trainer's own tools."""
    folder = out / klass.name
    fleet, states = Fleet(klass, folder, engine), {}
    for machine, here, _ in fleet.each():
        state = here.state(access.container(klass)) if here.endpoint is None or here.reachable() else None
        states[machine.name] = "running" if state and state.running else "missing" if state is None else "stopped"
    students = []
    for student, row in zip(klass.students, rows):
        found = access.entry(klass, student, folder, student_builds(folder))
        students.append({"name": student.name, "lab": student.lab.name, "zone": student.lab.domain,
                         "healthy": row.healthy, "hosts": row.hosts,
                         "access": {"ssh_host": found.host, "port": found.port, "user": found.user,
                                    "key_file": found.key_file, "known_hosts": found.known_hosts,
                                    "password_file": str(access.password_file(folder, student))
                                    if klass.access.password else None,
                                    "command": found.command}})
    pid = service.running(folder)
    return json.dumps({"class": klass.name, "root": klass.root, "root_state": root,
                       "service": {"state": f"running (pid {pid})" if pid else "stopped",
                                   "board": service.board_url(klass, folder),
                                   "log": str(service.log_file(folder))},
                       "access": "; ".join(f"{name}: {state}" if fleet.spread else state
                                           for name, state in states.items()),
                       "students": students}, indent=1) + "\n"

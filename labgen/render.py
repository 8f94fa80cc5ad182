"""Render a Lab into build/<lab>/: one file tree per host, pki/, dns/, an inventory and a summary.

Everything is written into a fresh staging folder first and swapped in at the end, so a failure
or an interrupt leaves the previous build exactly as it was. A build carries a marker file:
render replaces only a folder that has it. Ansible later copies these trees as they are.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import shutil
import signal
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError

from . import acme, dnszone, kinds, parentzone, pki, signing
from .kinds import apache
from .errors import NotOwnedError, RenderError
from .hostpaths import (PROGRAM, PUBLIC, SECRET, WEBROOT, anchor_path, bogus_zone_path,  # noqa: F401
                        ca_trust_path, cert_paths, zone_file, zone_path)
from .spec import Host, Lab

# SSH for a class student's lab (ssh_files): the one host key sshd uses, and its settings.
SSH_HOST_KEY = "/etc/ssh/ssh_host_ed25519_key"
WORKSTATION_KEY = "workstation"
LAB_COMMAND = "/usr/local/bin/lab"
# A login not finished in 20 s is dropped (OpenSSH's default is 120): a connection that speaks
# and then stalls holds one of sshd's unauthenticated slots (MaxStartups) that long at most.
SSHD_LIMITS = "LoginGraceTime 20\n"
SSHD_CONFIG = ("# Written by labgen: root logs in with the lab's keys only, never a password.\n"
               f"HostKey {SSH_HOST_KEY}\nPermitRootLogin prohibit-password\n"
               "PasswordAuthentication no\nKbdInteractiveAuthentication no\n" + SSHD_LIMITS)
# A workstation whose class hands out passwords (access.password): the key or the password.
SSHD_PASSWORD_CONFIG = ("# Written by labgen: root logs in with the student's key or the student's password.\n"
                        f"HostKey {SSH_HOST_KEY}\nPermitRootLogin yes\n"
                        "PasswordAuthentication yes\nKbdInteractiveAuthentication no\n" + SSHD_LIMITS)
UMASK = 0o022  # modes of what render writes never depend on the caller's umask
# The ownership marker: render replaces out/<lab> only when this file says labgen made it.
MARKER = ".labgen-build"
MARKER_TEXT = "This folder is a build made by labgen render; the next render replaces it.\n"
# Files of a build that outlive a render: the exercises' record (exercises/state.py).
KEPT = ("exercises.json",)
# What a build made before the marker existed holds (and nothing else): also labgen's.
LEGACY_ENTRIES = {"hosts", "pki", "dns", "manifests", "inventory.yml", "SUMMARY.txt", ".ansible",
                  ".labgen-stamp.json"}


def data_dir(name: str) -> Path:
    """A data folder shipped inside the package (templates, playbooks)."""
    folder = Path(__file__).resolve().parent / name
    if not folder.is_dir():
        raise RenderError(f"labgen's {name}/ folder is missing from {folder.parent}")
    return folder


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(data_dir("templates")), undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                      autoescape=lambda name: bool(name and name.endswith(".html.j2")))
    env.filters["onoff"] = lambda value: "on" if value else "off"
    return env


@dataclass
class Material:
    """What the PKI and the signed zone give the host trees."""

    ca_pem: bytes
    certs: dict[str, dict[str, tuple[bytes, bytes]]]  # host -> kind -> (chain pem, key pem)
    tlsa: dict[str, list[str]]
    zone: str
    zone_source: str  # the unsigned zone, for signing again on ns1
    zone_keys: dict[str, tuple[str, bool]]  # BIND key files: name -> (text, secret)
    ds_line: str  # the zone's own DS (a class's lab root publishes it)
    anchor_line: str  # what the resolver and client trust: that DS, or the lab root's
    delv_anchors: str
    bogus_zone: str  # the child zone with a broken signature (dnszone.BOGUS)
    # SSH, for a class student's lab (lab.entry_key): host name -> (private host key, public
    # line), and the workstation's own key pair under WORKSTATION_KEY.
    ssh: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    # The lab's own parent zone (lab.own_parent): its unsigned source and its key files.
    parent: dict = field(default_factory=dict)
    # certificates: acme (labgen.acme): each web server's next keys (host -> kind -> PEM) and
    # the TSIG secret with which it changes its TLSA record (host -> base64).
    next_keys: dict = field(default_factory=dict)
    tsig: dict = field(default_factory=dict)


def render(lab: Lab, out: Path, *, now: dt.datetime | None = None) -> Path:
    """Render the lab into out/<lab.name> atomically; keys of a previous render are kept."""
    now = now or dt.datetime.now(dt.timezone.utc)
    final = out / lab.name
    with _umask(UMASK), _locked(out):
        _recover(out, lab.name)
        _check_owned(final)
        try:
            staging = Path(tempfile.mkdtemp(prefix=f".{lab.name}.render-", dir=out))
        except OSError as exc:
            raise RenderError(f"cannot write to {out}: {exc.strerror}") from None
        try:
            _write_build(lab, staging, final / "pki" if (final / "pki").is_dir() else None, now)
            for name in KEPT:  # what the build records about the running lab
                if (final / name).is_file():
                    shutil.copy2(final / name, staging / name)
            _swap(staging, final)
        except BaseException as exc:
            shutil.rmtree(staging, ignore_errors=True)
            if isinstance(exc, OSError):
                raise RenderError(f"rendering into {out} failed: {exc}") from None
            if isinstance(exc, TemplateError):
                raise RenderError(f"template error: {exc}") from None
            raise
    return final


def _write_build(lab: Lab, staging: Path, previous: Path | None, now: dt.datetime) -> None:
    material = _material(lab, pki.Store(previous, staging / "pki"), now)
    _write_dns(lab, staging / "dns", material)
    for host in lab.hosts:
        _write_tree(staging / "hosts" / host.name, host_files(lab, host, material, now))
        write_manifest(staging / "hosts" / host.name, staging / "manifests" / f"{host.name}.json")
    (staging / "inventory.yml").write_text(inventory(lab), encoding="utf-8")
    (staging / "SUMMARY.txt").write_text(summary(lab, material), encoding="utf-8")
    (staging / MARKER).write_text(MARKER_TEXT, encoding="utf-8")


@contextlib.contextmanager
def _umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


@contextlib.contextmanager
def _locked(out: Path):
    """One render at a time per output folder (a lock on the folder itself, so nothing is left
    behind): the cleanup of leftovers may then remove every staging folder it finds."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise RenderError(f"cannot write to {out}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # waits for another render into the same folder
        yield
    finally:
        os.close(fd)


def _owned(folder: Path) -> bool:
    """A folder labgen made: it has the marker, or it is a build from before the marker."""
    if folder.is_symlink() or not folder.is_dir():
        return False
    if (folder / MARKER).is_file():
        return True
    entries = {p.name for p in folder.iterdir()}
    return {"hosts", "pki", "SUMMARY.txt"} <= entries <= LEGACY_ENTRIES


def _check_owned(final: Path) -> None:
    if (final.exists() or final.is_symlink()) and not _owned(final):
        raise NotOwnedError(f"{final} exists and was not made by labgen (no {MARKER} marker); "
                            "move it away or render into another folder with -o")


def _recover(out: Path, name: str) -> None:
    """Finish what an interrupted or killed render left: put back a previous build that was
    moved aside (so its keys are kept), then remove staging and moved-aside folders."""
    final = out / name
    for old in sorted(out.glob(f".{name}.old-*")):
        moved = old / "build"
        if not (final.exists() or final.is_symlink()) and _owned(moved):
            os.rename(moved, final)
    for leftover in sorted(out.glob(f".{name}.render-*")) + sorted(out.glob(f".{name}.old-*")):
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)


def _step(name: str) -> None:
    """Called between the steps of the swap; tests replace it to interrupt at each step."""


def _swap(staging: Path, final: Path) -> None:
    """Move the previous build aside, the new one in, then delete the previous one. SIGINT and
    SIGTERM wait until both renames are done; any failure between them puts the previous build
    back, and a kill between them is repaired by the next render (_recover)."""
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    old = None
    try:
        _step("start")
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
            _step("old-folder-made")
            os.rename(final, old / "build")
        _step("previous-moved-aside")
        os.rename(staging, final)
        _step("new-moved-in")
    except BaseException:
        if old is not None:
            if not final.exists() and (old / "build").exists():
                os.rename(old / "build", final)  # the previous build back in place
            shutil.rmtree(old, ignore_errors=True)
        raise
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    _step("done")


def _material(lab: Lab, store: pki.Store, now: dt.datetime) -> Material:
    ca = pki.lab_ca(store, lab, now)
    ca_pem = pki.cert_pem(ca[1])
    certs, tlsa, next_keys, tsig = {}, {}, {}, {}
    if lab.certificates.acme:  # the ACME CA's own HTTPS listener, from the lab CA
        key, cert = pki.server_cert(store, lab, lab.role("acme"), "ecdsa", ca, now)
        certs["acme"] = {"ecdsa": (pki.cert_pem(cert) + ca_pem, pki.key_pem(key))}
    for host in lab.web:
        certs[host.name], tlsa[host.name] = {}, []
        for kind in lab.profile.certificate_types:
            key, cert = pki.server_cert(store, lab, host, kind, ca, now)
            # DANE-TA (2 1 1) needs the CA in the chain the server sends (RFC 7671 section 5.2).
            chain = pki.cert_pem(cert) + (ca_pem if lab.dane_ca else b"")
            certs[host.name][kind] = (chain, pki.key_pem(key))
            # DANE-EE, SPKI, SHA-256 (RFC 7671 section 5.1): survives certificate renewal.
            tlsa[host.name].append(f"3 1 1 {pki.spki_sha256(cert)}")
            if lab.certificates.acme:  # and the next key's, published from the start (labgen.acme)
                upcoming = pki.next_key(store, lab, host, kind)
                next_keys.setdefault(host.name, {})[kind] = pki.key_pem(upcoming)
                tlsa[host.name].append(f"3 1 1 {pki.spki_sha256(upcoming)}")
        if lab.certificates.acme:
            tsig[host.name] = pki.tsig_secret(ca, acme.tsig_name(host))
        if lab.dane_ca:
            tlsa[host.name].append(f"2 1 1 {pki.spki_sha256(ca[1])}")
    algorithm = lab.dnssec.algorithm
    bogus_key = pki.dnssec_key(store, algorithm, zone="dnssec-bogus")
    bogus_dnskey = dnszone.dnskey_for(bogus_key, algorithm)
    bogus = dnszone.build_bogus(lab, now)
    dnszone.sign(bogus, [(bogus_key, bogus_dnskey)], "nsec", now)
    dnszone.break_signatures(bogus, "A")
    # The zone's keys: one combined key, or with BIND signing a KSK (first: its DS goes to the
    # parent) and a ZSK. The same keys sign the copy in build/dns, which `labgen check` verifies.
    keys = [(pki.dnssec_key(store, algorithm, zone=name), flags) for name, flags in signing.roles(lab)]
    pairs = [(key, dnszone.dnskey_for(key, algorithm, flags)) for key, flags in keys]
    zone = dnszone.build(lab, tlsa, dnszone.ds_for(dnszone.bogus_name(lab), bogus_dnskey), now)
    if signing.online(lab):
        source = signing.source_text(lab.domain, zone)
        zone_keys = signing.key_files(lab.domain, algorithm, keys, now)
    else:
        source = dnszone.source_text(lab, zone, zone_path(lab))
        zone_keys = dnszone.bind_key_files(lab.domain, algorithm, keys[0][0], now)
    dnszone.sign(zone, pairs, lab.dnssec.denial, now)
    ds = dnszone.ds_for(lab.domain, pairs[0][1])
    parent, parent_ds = {}, None
    if lab.own_parent:  # the lab's parent zone (parentzone.py): its DS is the trust anchor
        parent_key = pki.dnssec_key(store, algorithm, zone="parent")
        parent_ds = dnszone.ds_for(lab.parent.domain, dnszone.dnskey_for(parent_key, algorithm))
        parent = {"source": signing.source_text(lab.parent.domain, parentzone.build(lab, ds, now),
                                                f"; The DS of {lab.domain} follows its CDS: {parentzone.SCAN}\n",
                                                parentzone.POLICY),
                  "keys": signing.key_files(lab.parent.domain, algorithm, [(parent_key, 257)], now)}
    ssh = {}
    if lab.entry_key:
        ssh = {h.name: pki.ssh_key(store, h.name) for h in ssh_hosts(lab)}
        ssh[WORKSTATION_KEY] = pki.ssh_key(store, WORKSTATION_KEY)
    return Material(ca_pem, certs, tlsa, dnszone.zone_text(zone), source,
                    zone_keys, dnszone.ds_line(lab.domain, ds),
                    *dnszone.anchor(lab, ds, parent_ds), dnszone.zone_text(bogus), ssh, parent,
                    next_keys, tsig)


def ssh_hosts(lab: Lab) -> list[Host]:
    """The hosts a class student enters by SSH: all but labgen's probe."""
    return [h for h in lab.hosts if h.role != "probe"]


def lab_command(address: str) -> bytes:
    """The `lab` program for a class student's workstation, pointed at the grading service."""
    source = (Path(__file__).parent / "classroom" / "lab_command.py").read_text(encoding="utf-8")
    return source.replace("@SERVICE@", address).encode()


def ssh_files(lab: Lab, host: Host, m: Material) -> dict[str, tuple[bytes, int]]:
    """sshd with labgen's host key and key-only root login; the student's key enters the
    workstation, the workstation's key every other host of the lab (ssh ns1, ssh nginx)."""
    if not lab.entry_key or host.name not in m.ssh:
        return {}
    private, public = m.ssh[host.name]
    files = {SSH_HOST_KEY: (private, SECRET), f"{SSH_HOST_KEY}.pub": (f"{public}\n".encode(), PUBLIC),
             "/etc/ssh/sshd_config.d/labgen.conf": (SSHD_CONFIG.encode(), PUBLIC)}
    if host.role == "client":
        if lab.entry_password_hash:
            files["/etc/ssh/sshd_config.d/labgen.conf"] = (SSHD_PASSWORD_CONFIG.encode(), PUBLIC)
        key, pub = m.ssh[WORKSTATION_KEY]
        others = [h for h in ssh_hosts(lab) if h.role != "client"]
        config = "".join(f"Host {h.name} {h.fqdn}\n    HostName {h.fqdn}\n    User root\n" for h in others)
        known = "".join(f"{h.name},{h.fqdn},{h.ipv4},{h.ipv6} {m.ssh[h.name][1]}\n" for h in others)
        files.update({"/root/.ssh/authorized_keys": (f"{lab.entry_key}\n".encode(), PUBLIC),
                      "/root/.ssh/id_ed25519": (key, SECRET),
                      "/root/.ssh/id_ed25519.pub": (f"{pub}\n".encode(), PUBLIC),
                      "/root/.ssh/config": (("# Written by labgen: your lab's hosts by name.\n"
                                             "StrictHostKeyChecking yes\n" + config).encode(), PUBLIC),
                      "/root/.ssh/known_hosts": (known.encode(), PUBLIC)})
        if lab.grading:
            files[LAB_COMMAND] = (lab_command(lab.grading), PROGRAM)
    else:
        files["/root/.ssh/authorized_keys"] = (f"{m.ssh[WORKSTATION_KEY][1]}\n".encode(), PUBLIC)
    return files


def _write_dns(lab: Lab, folder: Path, m: Material) -> None:
    folder.mkdir()
    (folder / f"db.{lab.domain}").write_text(m.zone, encoding="utf-8")
    (folder / f"{lab.domain}.ds").write_text(m.ds_line, encoding="utf-8")
    (folder / "trust-anchors.conf").write_text(m.delv_anchors, encoding="utf-8")


def host_paths(lab: Lab, host: Host) -> dict[str, str]:
    """The files of a host by what they are: the names exercises and docs use for them."""
    return kinds.of(host).paths(lab, host)


def host_files(lab: Lab, host: Host, m: Material, now: dt.datetime) -> dict[str, tuple[bytes, int]]:
    """Absolute path on the host -> (content, mode): the lab CA for every host, what its kind
    holds (labgen.kinds), and SSH for a class student's hosts."""
    env = environment()
    expires = dt.datetime.combine(now.date() + dt.timedelta(days=lab.security_txt.expires_days),
                                  dt.time(), dt.timezone.utc)
    ctx = {
        "lab": lab, "host": host, "profile": lab.profile, "target": lab.target,
        "groups": lab.target.groups(lab.profile.tls_curves), "webroot": WEBROOT,
        "software_title": kinds.of(host).title,
        "alpn": dnszone.alpn(lab, host.software) if host.software else [],
        "certs": [cert_paths(host, kind) for kind in lab.profile.certificate_types],
        "apache_modules": apache.MODULES, "zone_path": zone_path(lab),
        "bogus_zone": dnszone.bogus_name(lab), "bogus_zone_path": bogus_zone_path(lab),
        "anchor_path": anchor_path(lab), "ns": lab.role("authdns"),
        "online": signing.online(lab), "policy": signing.policy(lab), "policy_name": signing.POLICY,
        "work_zone": signing.work_zone(lab.domain), "work_keys": signing.WORK_KEYS,
        "zone_source": zone_path(lab), "grader_cache": False, "tsig_work": signing.TSIG_WORK,
        "tsig_name": acme.tsig_name, "tlsa_owner": acme.tlsa_owner,
        "security_txt_expires": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }

    def text(template: str, **extra) -> tuple[bytes, int]:
        return env.get_template(template).render({**ctx, **extra}).encode("utf-8"), PUBLIC

    return {ca_trust_path(lab): (m.ca_pem, PUBLIC), **kinds.of(host).files(lab, host, m, text),
            **ssh_files(lab, host, m)}


def _write_tree(root: Path, files: dict[str, tuple[bytes, int]]) -> None:
    for path, (content, mode) in sorted(files.items()):
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if mode == SECRET:
            pki.write_private(target, content)
            os.chmod(target.parent, 0o700)
        else:
            target.write_bytes(content)
            os.chmod(target, mode)


def write_manifest(tree: Path, dest: Path) -> None:
    """What the deploy compares with a host: the SHA-256 and mode of every file of its tree and
    the mode of every folder, read from disk (so a hand edit in build/ is deployed too). The
    deploy then copies only what differs."""
    files, dirs = {}, {}
    for path in sorted(tree.rglob("*")):
        name, mode = "/" + path.relative_to(tree).as_posix(), f"{path.stat().st_mode & 0o7777:04o}"
        if path.is_dir():
            dirs[name] = mode
        else:
            files[name] = {"mode": mode, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    dest.parent.mkdir(exist_ok=True)
    dest.write_text(json.dumps({"files": files, "dirs": dirs}, indent=1) + "\n", encoding="utf-8")


def inventory(lab: Lab) -> str:
    """An Ansible inventory: one group per role, host variables from the Lab model."""
    groups: dict[str, dict] = {}
    after: dict[str, None] = {}
    for host in lab.hosts:
        kind = kinds.of(host)
        group = kind.role  # the parent host is a name server like ns1: group authdns
        hostvars = {"ansible_host": lab.container(host), "labgen_tree": f"hosts/{host.name}",
                    "labgen_fqdn": host.fqdn, "labgen_ipv4": str(host.ipv4),
                    "labgen_ipv6": str(host.ipv6),
                    **kinds.hostvars(kind)}
        if kind.prepare(lab):
            hostvars["labgen_prepare"] = kind.prepare(lab)
        extra = []
        if lab.entry_key and host.role != "probe":
            extra.append("ssh.socket")  # sshd runs once a student connects
        if host.role == "authdns" and signing.online(lab) and lab.parent:
            extra.append(signing.CHECKDS_UNIT)
        if host.role == "web" and lab.certificates.acme:
            extra.append(acme.CERTS_TIMER)
        # Once the host's server runs (site.yml); in a class, once the lab root runs too, as the
        # student's names resolve only then (classroom/lifecycle.py runs it).
        if kind.after(lab) and not lab.secondary:
            hostvars["labgen_after"] = kind.after(lab)  # and the group of that name (site.yml)
            after[host.name] = None
        if extra:
            hostvars["labgen_extra_services"] = " ".join(extra)
        if host.role == "parent":  # a name server like ns1, with the CDS scan beside named
            hostvars["labgen_extra_services"] = parentzone.SCAN_UNIT
        if lab.entry_password_hash and host.role == "client":
            hostvars["labgen_root_password_hash"] = lab.entry_password_hash
        groups.setdefault(group, {"hosts": {}})["hosts"][host.name] = hostvars
    if after:
        groups["labgen_after"] = {"hosts": after}
    doc = {"all": {"vars": {"labgen_lab": lab.name, "labgen_domain": lab.domain},
                   "children": groups}}
    return "# Ansible inventory rendered by labgen.\n" + yaml.safe_dump(doc, sort_keys=False)


def summary(lab: Lab, m: Material) -> str:
    p = lab.profile
    lines = [f"Lab {lab.name}: zone {lab.domain}, profile {p.name} ({p.guideline} "
             f"{p.guideline_version}), target {lab.target.name} (nginx {lab.target.nginx}, "
             f"Apache {lab.target.apache}, OpenSSL {lab.target.openssl})",
             f"Network: {lab.ipv4_network}  {lab.ipv6_network}", "", "Hosts:"]
    for h in lab.hosts:
        lines.append(f"  {h.fqdn:<28} {h.software or h.role:<9} {str(h.ipv4):<16} {h.ipv6}")
    lines += ["", f"DS (trust anchor): {m.ds_line.strip()}", "TLSA:"]
    for name, records in m.tlsa.items():
        lines += [f"  _443._tcp.{name}.{lab.domain}. TLSA {r}" for r in records]
    return "\n".join(lines) + "\n"

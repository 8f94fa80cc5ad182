"""The class file: bad ones refused with their exact message, good ones give one ordinary Lab
per student; the lab root zone delegates to every student with the DS of its zone, signed."""

from __future__ import annotations

import datetime as dt
import sys

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.zone
import pytest
import yaml

from labgen.classroom.rootzone import render_class
from labgen.classroom.spec import load_class, parse_class
from labgen.errors import SpecError, UsageError
from labgen.render import data_dir
from labtest import run

BAD = [
    ({"students": 0}, "class.yml: students: 0 is not a number of students from 1 to 300"),
    ({"students": ["ns"]}, "class.yml: students[0]: 'ns' is reserved: the lab root's name server"),
    ({"students": ["a", "a"]}, "class.yml: students[1]: 'a' is given twice"),
    ({"students": ["A b"]}, "class.yml: students[0]: 'A b' is not a student name: 1-15 lowercase "
                            "letters, digits and '-', starting with a letter"),
    ({"network": {"ipv4": "10.100.0.0/23"}}, "class.yml: network.ipv4: 10.100.0.0/23 holds 2 /24 "
     "subnets, too few for 3 students and the lab root; use a /22 or larger"),
    ({"network": {"ipv6": "2001:db8:100::/63"}}, "class.yml: network.ipv6: 2001:db8:100::/63 holds "
     "2 /64 subnets, too few for 3 students and the lab root; use a /62 or larger"),
    ({"network": {"ipv4": "10.88.0.0/16"}}, "class.yml: network.ipv4: 10.88.0.0/16 overlaps "
     "10.88.0.0/16, a container engine's default network"),
    ({"lab": {"name": "x"}}, "class.yml: lab.name: is set by the class (<class>-<student>); remove it"),
    ({"lab": {"network": {}}}, "class.yml: lab.network: is set by the class (the address plan)"),
    ({"lab": {"profile": "moden"}}, "class.yml: lab.profile: 'moden' is not one of modern, "
     "intermediate (did you mean 'modern'?)"),
    ({"lab": {"headers": {"X-Test": "a\nb"}}}, "class.yml: lab.headers.X-Test:"),
    ({"access": {"ssh_port": 80}}, "class.yml: access.ssh_port: 80 is out of range: the ports 80+1 "
     "to 80+3 must lie between 1025 and 65535"),
    ({"access": {"ssh_port": "2200"}}, "class.yml: access.ssh_port: must be a whole number"),
    ({"access": {"listen": "127.0.0.1:22:22 -v /:/host"}}, "class.yml: access.listen: "
     "'127.0.0.1:22:22 -v /:/host' is not an IP address of this machine"),
    ({"access": {"listen": "fe80::1%eth0"}}, "class.yml: access.listen: 'fe80::1%eth0' is not an IP address"),
    ({"access": {"host": "trainer;rm"}}, "class.yml: access.host:"),
    ({"access": {"ports": 1}}, "class.yml: access.ports: unknown key (did you mean 'ssh_port'?)"),
    ({"access": {"board_port": 2202}}, "class.yml: access.board_port: 2202 is out of range: the board's "
     "port must lie between 1025 and 65535 and outside the students' SSH ports 2200+1 to 2200+3"),
    ({"access": {"board_port": 80}}, "class.yml: access.board_port: 80 is out of range"),
    ({"access": {"password": "yes"}}, "class.yml: access.password: must be true or false"),
    ({"name": "Bad"}, "class.yml: name: 'Bad' is not a valid class name"),
    ({"ds": "both"}, "class.yml: ds: 'both' is not one of root, student"),
    ({"student": 3}, "class.yml: student: unknown key (did you mean 'students'?)"),
    ({"root": "bad_root.example"}, "class.yml: root:"),
    # issue 23: a key that is not a text, in every mapping of the class file
    ({"name": "c", 3: "x"}, "class.yml: 3: a key must be a text, got the number 3"),
    ({"network": {None: "x"}}, "class.yml: network.null: a key must be a text, got nothing (null)"),
    ({"access": {True: 1}}, "class.yml: access.true: a key must be a text, got a boolean (true)"),
    ({"backbone": {dt.date(2026, 11, 30): 1}}, "class.yml: backbone.2026-11-30: a key must be a text"),
    ({"machines": [{"name": "a", "ssh": "root@10.0.0.1", 1.5: "x"}, {"name": "b", "ssh": "root@10.0.0.2"}]},
     "class.yml: machines[0].1.5: a key must be a text, got the number 1.5"),
    ({"lab": {7: "x"}}, "class.yml: lab.7: a key must be a text, got the number 7"),
    ({"lab": {"headers": {1: "x"}}}, "class.yml: lab.headers.1: a key must be a text, got the number 1"),
]


@pytest.mark.parametrize("data,message", BAD, ids=[m.split(": ")[1] + str(i) for i, (_, m) in enumerate(BAD)])
def test_a_bad_class_file_is_refused_with_its_key_and_problem(data, message):
    with pytest.raises(SpecError) as caught:
        parse_class(data)
    assert str(caught.value).startswith(message), str(caught.value)


def test_the_cli_refuses_a_bad_class_file_with_exit_2_and_writes_nothing(tmp_path):
    config = tmp_path / "class.yml"
    config.write_text(yaml.safe_dump({"students": ["a", "a"]}))
    result = run([sys.executable, "-m", "labgen", "class", "render", "-c", str(config)])
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip() == f"labgen: error: {config}: students[1]: 'a' is given twice"
    assert not (tmp_path / "build").exists()


def test_each_student_gets_an_ordinary_lab_from_the_plan():
    klass = parse_class({"name": "dnssec101", "students": ["alice", "bob"],
                         "lab": {"profile": "intermediate", "servers": [{"name": "www", "software": "nginx"}]}})
    assert [s.name for s in klass.students] == ["alice", "bob"]
    alice = klass.student("alice").lab
    assert (alice.name, alice.domain, alice.profile.name) == ("dnssec101-alice", "alice.class.example",
                                                               "intermediate")
    assert [h.name for h in alice.web] == ["www"]
    assert str(klass.root_ipv4) == "10.100.0.0/24" and str(alice.ipv4_network) == "10.100.1.0/24"
    assert str(klass.student("bob").lab.ipv6_network) == "2001:db8:100:2::/64"
    with pytest.raises(SpecError, match="no student 'carol' in class dnssec101"):
        klass.student("carol")


def test_the_starter_class_file_is_the_defaults():
    starter = load_class(data_dir("templates") / "class.yml")
    assert starter == parse_class({}, str(data_dir("templates") / "class.yml"))
    assert [s.name for s in starter.students] == ["s01", "s02", "s03"]


def _zone(path, origin):
    return dns.zone.from_file(str(path), origin=origin, relativize=False)


def _validate_signatures(zone, origin, dnskey) -> set:
    """Validate every RRSIG of the zone with the zone's DNSKEY; returns the (name, type) of each
    RRset signed. dnspython files an RRSIG rdataset under the type it covers (rdtype RRSIG,
    covers A), so the signatures are found by their covered type, never as plain 'RRSIG'."""
    signed = set()
    for name, node in zone.nodes.items():
        for rdataset in node.rdatasets:
            if rdataset.rdtype != dns.rdatatype.RRSIG:
                continue
            covered = rdataset.covers
            rrset = zone.find_rrset(name, covered)
            rrsigs = zone.find_rdataset(name, dns.rdatatype.RRSIG, covers=covered)
            for rrsig in rrsigs:
                dns.dnssec.validate_rrsig(rrset, rrsig, {origin: dnskey})
            signed.add((name, covered))
    return signed


def _authoritative(zone, origin) -> set:
    """The (name, type) of every RRset a zone signs (RFC 4035 section 2.2): all of its own data,
    at a delegation only the DS and NSEC, and never the glue below it."""
    cuts = {n for n, node in zone.nodes.items()
            if n != origin and node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.NS)}
    owned = set()
    for name, node in zone.nodes.items():
        if any(name != cut and name.is_subdomain(cut) for cut in cuts):
            continue  # glue
        for rdataset in node.rdatasets:
            if rdataset.rdtype == dns.rdatatype.RRSIG:
                continue
            if name in cuts and rdataset.rdtype not in (dns.rdatatype.DS, dns.rdatatype.NSEC):
                continue
            owned.add((name, rdataset.rdtype))
    return owned


@pytest.mark.parametrize("ds", ["root", "student"])
def test_the_lab_root_delegates_to_every_student_and_validates(tmp_path, ds):
    klass = parse_class({"name": "c", "students": 2, "ds": ds})
    folder = render_class(klass, tmp_path, now=dt.datetime.now(dt.timezone.utc))
    root = _zone(folder / "root" / "dns" / "db.class.example", "class.example")
    origin = dns.name.from_text("class.example")
    dnskey = root.find_rrset(origin, "DNSKEY")
    anchor = (folder / "root" / "dns" / "class.example.ds").read_text().split()
    assert dns.dnssec.make_ds(origin, dnskey[0], "SHA256").to_text() == " ".join(anchor[4:])
    signed = _validate_signatures(root, origin, dnskey)  # every RRSIG verifies with the root's key
    assert signed == _authoritative(root, origin)  # and every RRset the root must sign is signed
    assert len(signed) >= 7 + (2 if ds == "root" else 0)  # SOA NS DNSKEY NSEC, ns A AAAA NSEC (+DS)
    for student in klass.students:
        child = dns.name.from_text(student.lab.domain)
        assert root.find_rrset(child, "NS")[0].target.to_text() == f"ns1.{student.lab.domain}."
        glue = root.find_rrset(dns.name.from_text(f"ns1.{student.lab.domain}"), "A")
        assert glue[0].address == str(student.lab.role("authdns").ipv4)
        published = root.get_rrset(child, "DS")
        if ds == "student":
            assert published is None  # insecure until the trainer takes the DS in
            continue
        zone = _zone(folder / "students" / student.lab.name / "dns" / f"db.{student.lab.domain}",
                     student.lab.domain)
        key = zone.find_rrset(child, "DNSKEY")[0]
        assert published[0] == dns.dnssec.make_ds(child, key, "SHA256")  # the chain holds


@pytest.mark.parametrize("tamper", ["signature", "data", "unsigned"])
def test_the_root_zone_check_fails_on_a_broken_signature(tmp_path, tamper):
    """The check above can fail: one flipped bit in a signature, a record changed after signing,
    or a signature removed."""
    klass = parse_class({"name": "c", "students": 1})
    folder = render_class(klass, tmp_path, now=dt.datetime.now(dt.timezone.utc))
    root = _zone(folder / "root" / "dns" / "db.class.example", "class.example")
    origin = dns.name.from_text("class.example")
    dnskey = root.find_rrset(origin, "DNSKEY")
    name = dns.name.from_text("ns.class.example")
    rrsigs = root.find_rdataset(name, dns.rdatatype.RRSIG, covers=dns.rdatatype.A)
    if tamper == "signature":
        rrsig = rrsigs[0]
        broken = rrsig.replace(signature=rrsig.signature[:-1] + bytes([rrsig.signature[-1] ^ 1]))
        rrsigs.clear()
        rrsigs.add(broken)
    elif tamper == "data":
        a = root.find_rdataset(name, dns.rdatatype.A)
        a.clear()
        a.add(dns.rdata.from_text("IN", "A", "10.100.0.99"))
    else:
        root.find_node(name).delete_rdataset(dns.rdataclass.IN, dns.rdatatype.RRSIG, dns.rdatatype.A)
    if tamper == "unsigned":
        assert _validate_signatures(root, origin, dnskey) != _authoritative(root, origin)
    else:
        with pytest.raises(dns.dnssec.ValidationFailure):
            _validate_signatures(root, origin, dnskey)


def test_a_second_render_keeps_the_root_key(tmp_path):
    klass = parse_class({"name": "c", "students": 1})
    first = (render_class(klass, tmp_path) / "root" / "dns" / "class.example.ds").read_text()
    assert (render_class(klass, tmp_path) / "root" / "dns" / "class.example.ds").read_text() == first


def test_taking_a_ds_in_is_refused_where_labgen_puts_every_ds_in_the_root(tmp_path):
    config = tmp_path / "class.yml"
    config.write_text(yaml.safe_dump({"name": "c", "students": 2}))
    result = run([sys.executable, "-m", "labgen", "class", "ds", "s01", "-c", str(config)])
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip() == ("labgen: error: class c has ds: root; labgen puts every "
                                     "student's DS in the root itself")


def test_a_student_of_a_class_that_is_not_rendered_is_refused(tmp_path):
    config = tmp_path / "class.yml"
    config.write_text(yaml.safe_dump({"name": "c", "students": 2}))
    result = run([sys.executable, "-m", "labgen", "verify", "-c", str(config), "--student", "s01"])
    assert result.returncode == 2
    assert "class c has no lab root yet" in result.stderr and "labgen class up -c" in result.stderr



def test_each_student_has_a_port_and_a_kept_key_and_ssh_files_in_their_lab_only(tmp_path):
    """Student n gets access.ssh_port + n; their key pair is made once (0600) and kept; their
    lab's hosts get sshd with labgen's host keys, the probe gets none, a single lab none."""
    from labgen.classroom import access
    from labgen.classroom.rootzone import class_student_lab, student_builds
    from labgen.render import SSH_HOST_KEY

    klass = parse_class({"students": 2, "access": {"ssh_port": 3000, "listen": "127.0.0.1"}})
    assert [klass.port(s) for s in klass.students] == [3001, 3002]
    folder = render_class(klass, tmp_path / "build")
    s01 = klass.students[0]
    key = access.key_file(folder, s01)
    assert key.stat().st_mode & 0o777 == 0o600 and key.read_bytes().startswith(b"-----BEGIN OPENSSH PRIVATE KEY")
    first = key.read_bytes()
    render_class(klass, tmp_path / "build")
    assert key.read_bytes() == first  # reused on every render and up
    lab = class_student_lab(klass, s01, folder)
    assert lab.entry_key == key.with_suffix(".pub").read_text().strip()
    hosts = student_builds(folder) / lab.name / "hosts"
    client = hosts / "client"
    assert (client / "root/.ssh/authorized_keys").read_text().strip() == lab.entry_key
    assert (client / "root/.ssh/id_ed25519").stat().st_mode & 0o777 == 0o600
    assert "Host ns1 ns1.s01.class.example" in (client / "root/.ssh/config").read_text()
    workstation = (client / "root/.ssh/id_ed25519.pub").read_text()
    for name in ("ns1", "resolver", "nginx", "apache"):
        assert (hosts / name / "root/.ssh/authorized_keys").read_text() == workstation
        assert (hosts / name / SSH_HOST_KEY.lstrip("/")).stat().st_mode & 0o777 == 0o600
        assert "PasswordAuthentication no" in (hosts / name / "etc/ssh/sshd_config.d/labgen.conf").read_text()
    assert not (hosts / "probe" / "root").exists() and not (hosts / "probe" / "etc/ssh").exists()
    entry = access.entry(klass, s01, folder, student_builds(folder))
    assert entry.command == "ssh -i s01_ed25519 -o UserKnownHostsFile=s01_known_hosts -p 3001 root@127.0.0.1"
    assert entry.known_hosts.startswith("[127.0.0.1]:3001 ssh-ed25519 ")


def test_a_student_may_have_several_ds_in_the_root_each_matching_a_key(tmp_path):
    """ds: student, during a KSK roll: the old and the new DS, each checked against the
    zone's key-signing keys; the set given replaces the one before; at most MAX_DS."""
    import dns.name
    import dns.rdata

    from labgen.classroom.rootzone import MAX_DS, build, class_ds, take_ds

    klass = parse_class({"name": "c", "students": 1, "ds": "student"})
    folder = render_class(klass, tmp_path)
    student = klass.students[0]
    owner = dns.name.from_text(student.lab.domain)
    keys = [dns.rdata.from_text("IN", "DNSKEY", line.split(" DNSKEY ")[1]) for line in
            (p.read_text() for p in (folder / "students" / student.lab.name).rglob("K*.key"))]
    ksk = next(k for k in keys if k.flags == 257)
    texts = [dns.dnssec.make_ds(owner, ksk, digest).to_text() for digest in ("SHA256", "SHA384")]
    assert take_ds(klass, folder, student, texts, keys) == texts
    published = build(klass, class_ds(klass, folder), dt.datetime.now(dt.timezone.utc))
    assert sorted(r.to_text() for r in published.find_rdataset(student.name, "DS")) == sorted(texts)
    with pytest.raises(UsageError, match="matches no DNSKEY"):
        take_ds(klass, folder, student, [texts[0], "12345 13 2 " + "ab" * 32], keys)
    with pytest.raises(UsageError, match=f"give 1 to {MAX_DS} DS records; got {len(texts) * 3}"):
        take_ds(klass, folder, student, texts * 3, keys)
    assert take_ds(klass, folder, student, texts[:1], keys) == texts[:1]  # the set is replaced
    assert [r.to_text() for r in class_ds(klass, folder)[student.name]] == texts[:1]


def test_a_class_of_a_hundred_has_its_board_after_the_students_ssh_ports():
    assert parse_class({"students": 3}).access.board_port == 2280
    big = parse_class({"students": 100})
    assert big.access.board_port == 2301 and big.port(big.students[-1]) == 2300

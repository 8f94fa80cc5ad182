"""A class over several machines: the class file's machines, the placement of students (in
proportion to capacity, and stable), and the copies of the lab root that keep each other current
over the backbone (named-checkconf on every copy)."""

from __future__ import annotations

import os
import subprocess

import pytest

from labgen.classroom import placement
from labgen.classroom.rootzone import BACKBONE_KEY_SOURCE, copies, render_class
from labgen.classroom.spec import parse_class
from labgen.engine import endpoint_vars
from labgen.errors import SpecError
from labgen.render import zone_file

M1 = {"name": "m1", "ssh": "root@10.9.0.21"}
M2 = {"name": "m2", "ssh": "trainer@host2.example", "address": "10.9.0.22", "port": 2222}


def klass(students=4, machines=(M1, M2), **more):
    return parse_class({"name": "wide", "students": students, "machines": list(machines),
                        "backbone": {"network": "10.9.0.0/24"}, **more})


BAD = [
    ({"machines": [{"name": "m1", "ssh": "10.9.0.1"}]}, "machines[0].ssh: '10.9.0.1' is not user@host"),
    ({"machines": [{"name": "m1", "ssh": "root@a;b.example"}]}, "machines[0].ssh:"),
    ({"machines": [{"name": "m1", "ssh": "root@host.example"}]}, "machines[0].address: nothing (null) is not "
     "an IP address: give the machine's address on the backbone"),
    ({"machines": [M1, {**M1, "ssh": "root@10.9.0.22"}]}, "machines[1].name: 'm1' is given twice"),
    ({"machines": [M1, {"name": "m2", "ssh": "root@h.example", "address": "10.9.0.21"}]},
     "machines[1].address: 10.9.0.21 is the address of another machine"),
    ({"machines": [{**M1, "capacity": 2}]}, "machines: the machines hold 2 students in all (capacity), "
     "fewer than the class's 3"),
    ({"machines": [{**M1, "capacity": 0}]}, "machines[0].capacity: 0 is not a number of students"),
    ({"machines": [{**M1, "socket": "/run/x.sock; rm -rf /"}]}, "machines[0].socket:"),
    ({"machines": [{**M1, "key": "/nonexistent/key"}]}, "machines[0].key: '/nonexistent/key' is not a file"),
    ({"machines": [{**M1, "port": 0}]}, "machines[0].port: 0 is not a port"),
    ({"machines": [M1], "backbone": {"network": "10.8.0.0/24"}}, "machines[0].address: 10.9.0.21 is not in "
     "the backbone network 10.8.0.0/24"),
    ({"backbone": {"network": "10.8.0.0/24"}}, "backbone.network: names a backbone, but the class lists no machines"),
    ({"backbone": {"port": 70000}}, "backbone.port: 70000 is not a port"),
    ({"machines": [{**M1, "cpus": 2}]}, "machines[0].cpus: unknown key"),
    ({"machines": {"m1": M1}}, "machines: must be a list of machines"),
]


@pytest.mark.parametrize("data,message", BAD, ids=[str(i) for i in range(len(BAD))])
def test_a_bad_machine_is_refused_with_its_key_and_problem(data, message):
    with pytest.raises(SpecError) as caught:
        parse_class({"name": "wide", **data})
    assert str(caught.value).startswith(f"class.yml: {message}"), str(caught.value)


def test_a_machine_is_reached_by_podman_over_ssh():
    k = klass()
    m1, m2 = k.machines
    assert m1.endpoint.url == "ssh://root@10.9.0.21:22/run/podman/podman.sock" and m1.address == "10.9.0.21"
    assert m2.endpoint.url == "ssh://trainer@host2.example:2222/run/podman/podman.sock"
    assert endpoint_vars(m2.endpoint) == {
        "ansible_podman_extra_args": "--url ssh://trainer@host2.example:2222/run/podman/podman.sock"}
    assert endpoint_vars(None) == {} and parse_class({"name": "one"}).machines[0].endpoint is None


def test_students_are_spread_in_proportion_to_capacity():
    k = klass(students=30, machines=({**M1, "capacity": 40}, {**M2, "capacity": 20}))
    placed = placement.place(k, {})
    counts = {m: list(placed.values()).count(m) for m in ("m1", "m2")}
    assert counts == {"m1": 20, "m2": 10}


def test_a_placement_is_stable_and_moves_only_the_students_of_a_machine_that_left():
    k = klass(students=9, machines=(M1, M2, {"name": "m3", "ssh": "root@10.9.0.23"}))
    first = placement.place(k, {})
    assert placement.place(k, first) == first
    more = klass(students=12, machines=(M1, M2, {"name": "m3", "ssh": "root@10.9.0.23"}))
    grown = placement.place(more, first)
    assert all(grown[s] == first[s] for s in first)  # a new student moves no one
    fewer = klass(students=9, machines=(M1, M2))
    after = placement.place(fewer, first)
    assert all(after[s] == first[s] for s in first if first[s] != "m3")
    assert "m3" not in after.values()


def test_a_placement_is_written_down_and_read_back(tmp_path):
    k = klass()
    placed = placement.settle(k, tmp_path)
    assert placement.read(tmp_path) == placed
    assert placement.machine_of(k, placed, "s01").name == placed["s01"]
    assert placement.endpoint_of(k, tmp_path, "s02").machine == placed["s02"]


def test_each_machine_has_a_copy_of_the_root_that_takes_the_others_zones_over_the_backbone(tmp_path):
    k = klass()
    placed = placement.settle(k, tmp_path / "wide")
    folder = render_class(k, tmp_path)
    every = copies(k, placed)
    assert [c.host for c in every] == ["ns-m1", "ns-m2"]
    assert {s.name for c in every for s in c.students} == {s.name for s in k.students}
    primary = (folder / "root/hosts/ns-m1/etc/bind/named.conf").read_text()
    second = (folder / "root/hosts/ns-m2/etc/bind/named.conf").read_text()
    mine, theirs = every[0].students[0], every[1].students[0]
    # the first copy is the root zone's primary and notifies the others; they take it with the key
    assert "type primary;" in primary and "also-notify { labgen-copies; };" in primary
    assert "primaries { 10.9.0.21 port 53 key labgen-backbone; };" in second
    assert "10.9.0.22 port 53 key labgen-backbone;" in primary
    # a student's zone comes from their own ns1 on their machine, from their machine's copy elsewhere
    assert f'zone "{theirs.lab.domain}" {{\n    type secondary;\n    // {theirs.name}' in primary
    assert f"primaries {{ {mine.lab.role('authdns').ipv4}; }};" in primary
    assert "allow-transfer { key labgen-backbone; };" in primary
    key = folder / "root/hosts/ns-m2" / BACKBONE_KEY_SOURCE.lstrip("/")
    assert oct(key.stat().st_mode & 0o777) == "0o600" and (folder / "root/pki/backbone.secret").stat().st_mode & 0o077 == 0
    assert (folder / "root/hosts/ns-m1" / zone_file(k.root).lstrip("/")).is_file()
    assert not (folder / "root/hosts/ns-m2" / zone_file(k.root).lstrip("/")).exists()  # it transfers it
    inventory = (folder / "root/inventory.yml").read_text()
    assert "ns-m2:" in inventory and "--url ssh://trainer@host2.example:2222" in inventory


def test_every_copys_named_conf_passes_named_checkconf(tmp_path):
    k = klass()
    placement.settle(k, tmp_path / "wide")
    folder = render_class(k, tmp_path)
    for copy in ("ns-m1", "ns-m2"):
        tree = folder / "root/hosts" / copy
        conf = (tree / "etc/bind/named.conf").read_text()
        key = (tree / BACKBONE_KEY_SOURCE.lstrip("/")).read_text()
        test = tmp_path / f"{copy}.conf"
        test.write_text(conf.replace('include "/etc/bind/labgen-backbone.key";', key))
        result = subprocess.run(["named-checkconf", str(test)], capture_output=True, text=True,
                                env={**os.environ, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
        assert result.returncode == 0, result.stdout + result.stderr

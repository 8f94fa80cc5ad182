"""certificates: acme without a live lab: the lab file's key and its refusals, what render gives
the ACME CA, the web servers and ns1 (keys, next keys, TLSA, TSIG, update-policy), how the
watch reads a served key against the TLSA record, and how the TLS key roll drill is graded."""

from __future__ import annotations

import dataclasses
import json
import stat
import subprocess

import pytest
import yaml

from labgen import acme, kinds, render, signing, watch
from labgen.classroom.spec import parse_class
from labgen.errors import SpecError
from labgen.exercises import drill
from labgen.hostpaths import cert_paths
from labgen.spec import Parent, parse

ACME = {"dnssec": {"signer": "bind", "pace": "test"}, "certificates": "acme"}


def test_the_short_and_the_long_form_and_the_defaults():
    assert not parse({}, "lab.yml").certificates.acme
    lab = parse(ACME, "lab.yml")
    assert lab.certificates.acme and lab.certificates.lifetime == "short-lived"
    host = lab.role("acme")
    assert (host.fqdn, str(host.ipv4)) == ("acme.lab.example", "198.51.100.14")
    long = parse({**ACME, "certificates": {"issuer": "acme", "lifetime": "lesson"}}, "lab.yml")
    assert acme.lifetime(long) == 3600 and acme.timer_seconds(long) == 300
    assert acme.publish_wait(parse(ACME, "lab.yml")) == 20  # TTL 10 + propagation 5 + safety 5


@pytest.mark.parametrize("data, message", [
    ({**ACME, "certificates": "acmee"}, "lab.yml: certificates: 'acmee' is not one of lab-ca, acme (did you mean 'acme'?)"),
    ({"certificates": "acme"}, "lab.yml: certificates: acme needs dnssec.signer: bind"),
    ({**ACME, "dane": {"ca": True}}, "lab.yml: dane.ca: dane.ca needs certificates: lab-ca"),
    ({"certificates": {"lifetime": "lesson"}}, "lab.yml: certificates.lifetime: a lifetime is for issuer: acme"),
    ({**ACME, "certificates": {"issuer": "acme", "lifetime": "1d"}}, "lab.yml: certificates.lifetime: '1d' is not one of"),
    ({**ACME, "certificates": {"issuer": "acme", "renew": 3}}, "lab.yml: certificates.renew:"),
    ({**ACME, "servers": [{"name": "acme", "software": "nginx"}]}, "lab.yml: servers[0].name: 'acme' is taken"),
])
def test_bad_certificates_settings_name_the_key(data, message):
    with pytest.raises(SpecError) as excinfo:
        parse(data, "lab.yml")
    assert str(excinfo.value).startswith(message), str(excinfo.value)


def test_a_class_student_gets_an_acme_ca_of_their_own_and_the_after_steps_wait_for_the_root(render_lab):
    klass = parse_class({"students": 2, "lab": ACME}, "class.yml")
    assert all(s.lab.role("acme").fqdn == f"acme.{s.name}.class.example" for s in klass.students)
    lab = klass.students[0].lab
    in_class = dataclasses.replace(lab, parent=Parent("class.example", lab.ipv4_network[5], lab.ipv6_network[5],
                                                      "", "labgen-class-root"))
    own = yaml.safe_load(render.inventory(lab))["all"]["children"]["nginx"]["hosts"]["nginx"]
    deferred = yaml.safe_load(render.inventory(in_class))["all"]["children"]["nginx"]["hosts"]["nginx"]
    assert "labgen_after" in own and "labgen_after" not in deferred  # the class runs it once the root runs
    assert "labgen_after" not in yaml.safe_load(render.inventory(in_class))["all"]["children"]  # no play 2


def test_render_gives_each_web_server_its_keys_a_next_key_and_both_tlsa_records(render_lab):
    lab, build = render_lab(ACME)
    zone = (build / "dns" / "db.lab.example").read_text()
    for web in lab.web:
        tree = build / "hosts" / web.name
        paths = acme.key_paths(web, "ecdsa")
        for name in ("rendered_key", "rendered_next"):
            assert stat.S_IMODE((tree / paths[name].lstrip("/")).stat().st_mode) == 0o600
        # the served files are labgen-certs' on the host, not the build's
        assert not (tree / cert_paths(web, "ecdsa")["crt"].lstrip("/")).exists()
        digests = set()
        for name in ("rendered_key", "rendered_next"):
            der = subprocess.run(["openssl", "pkey", "-in", str(tree / paths[name].lstrip("/")), "-pubout",
                                  "-outform", "DER"], capture_output=True).stdout
            digests.add(subprocess.run(["sha256sum"], input=der, capture_output=True).stdout.split()[0].decode())
        assert {line.split()[-1] for line in zone.splitlines() if line.startswith(f"_443._tcp.{web.name} ")
                and " TLSA 3 1 1 " in line} == digests
        config = json.loads((tree / acme.CERTS_CONFIG.lstrip("/")).read_text())
        assert config["directory"] == "https://acme.lab.example:14000/dir" and config["publish_wait"] == 20
        assert config["reload"] == ["systemctl", "reload", kinds.of(web).unit]
        tsig = tree / acme.tsig_path(web).lstrip("/")
        assert stat.S_IMODE(tsig.stat().st_mode) == 0o600 and f'key "tlsa-{web.name}"' in tsig.read_text()
    named = (build / "hosts/ns1/etc/bind/named.conf").read_text()
    assert 'grant "tlsa-nginx" name _443._tcp.nginx.lab.example. TLSA;' in named
    assert f'include "{signing.TSIG_WORK}";' in named
    pebble = json.loads((build / "hosts/acme/etc/labgen/pebble/pebble.json").read_text())["pebble"]
    assert pebble["certificateValidityPeriod"] == 6 * 86400 and pebble["httpPort"] == 80
    inventory = yaml.safe_load((build / "inventory.yml").read_text())["all"]["children"]
    nginx = inventory["nginx"]["hosts"]["nginx"]
    assert nginx["labgen_prepare"] == f"{acme.CERTS_PROGRAM} seed && "
    assert nginx["labgen_after"] == f"{acme.CERTS_PROGRAM} renew --repair"
    assert "labgen-certs.timer" in nginx["labgen_extra_services"]
    assert inventory["client"]["hosts"]["client"]["labgen_after"] == acme.TRUST_PROGRAM
    # site.yml's second play runs on the group of that name: exactly the hosts with a step
    assert set(inventory["labgen_after"]["hosts"]) == {h for g in inventory.values() for h, v in g["hosts"].items()
                                                      if v and "labgen_after" in v}
    # a re-render keeps every key, so the TLSA records stay
    _, again = render_lab(ACME)
    assert (again / "dns" / "db.lab.example").read_text().count(" TLSA 3 1 1 ") == zone.count(" TLSA 3 1 1 ")


def test_a_lab_ca_lab_renders_as_before(render_lab):
    lab, build = render_lab()
    assert "acme" not in {h.role for h in lab.hosts}
    assert (build / "hosts/nginx" / cert_paths(lab.web[0], "ecdsa")["crt"].lstrip("/")).is_file()
    assert not (build / "hosts/nginx" / acme.CERTS_PROGRAM.lstrip("/")).exists()


LAB = parse(ACME, "lab.yml")
KEY_A, KEY_B, KEY_C = "a" * 64, "b" * 64, "c" * 64


def round_log(stamp: str, served: str, named: list[str]) -> str:
    blocks = []
    for q in watch.questions(LAB):
        if q.rtype == watch.DANE:
            text = f"{served}  -\n" if q.name == "nginx.lab.example" else f"{KEY_A}  -\n"
        elif q.rtype == "TLSA":
            records = named if q.name == "_443._tcp.nginx.lab.example" else [KEY_A]
            text = (";; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 1\n;; flags: qr rd ra ad; QUERY: 1\n"
                    + "".join(f"{q.name}. 10 IN TLSA 3 1 1 {r}\n" for r in records))
        else:
            text = (f";; ->>HEADER<<- opcode: QUERY, status: {q.status}, id: 1\n"
                    ";; flags: qr rd ra ad; QUERY: 1\n")
        blocks.append(f"{watch.MARK} {stamp} {q.label}\n{text}")
    return "".join(blocks) + watch.ROUND_END + "\n"


def test_the_watch_takes_each_key_against_the_same_rounds_tlsa_record():
    assert [q.label for q in watch.questions(LAB) if q.rtype == watch.DANE] == ["nginx.lab.example DANE",
                                                                                 "apache.lab.example DANE"]
    assert not [q for q in watch.questions(parse({}, "lab.yml")) if q.rtype == watch.DANE]
    log = (round_log("100.0", KEY_A, [KEY_A, KEY_B]) + round_log("101.0", KEY_B, [KEY_A, KEY_B])
           + round_log("102.0", KEY_C, [KEY_A, KEY_B]) + round_log("103.0", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", [KEY_B]))
    timeline = watch.parse(LAB, log, 4)
    failures = [(f.at, f.question, f.outcome) for f in timeline.failures]
    assert failures == [(2.0, "nginx.lab.example DANE", "dane mismatch"),
                        (3.0, "nginx.lab.example DANE", "no answer")], failures
    assert "is not in the TLSA record" in timeline.failures[0].detail
    bars = {b["label"]: (b["from"], b["to"]) for b in timeline.bars}
    assert bars["served nginx aaaaaaaa"] == (0.0, 0.0) and bars["served nginx bbbbbbbb"] == (1.0, 1.0)
    assert bars["TLSA nginx bbbbbbbb"] == (0.0, 3.0)
    assert "DANE MISMATCH" in watch.summary(timeline)


def test_the_tls_roll_is_complete_when_every_server_serves_a_new_key_its_record_names_alone():
    before = {"nginx": KEY_A, "apache": KEY_A}
    assert drill.tls_problems(before, before, {"nginx": {KEY_A, KEY_B}, "apache": {KEY_A, KEY_B}})[0].startswith(
        "expected apache to serve a new key")
    under_way = drill.tls_problems(before, {"nginx": KEY_B, "apache": KEY_B}, {"nginx": {KEY_A, KEY_B}, "apache": {KEY_B}})
    assert len(under_way) == 1 and "the old key's TLSA record" in under_way[0]
    assert "does not name" in drill.tls_problems(before, {"nginx": KEY_C, "apache": KEY_B},
                                                 {"nginx": {KEY_B}, "apache": {KEY_B}})[0]
    assert drill.tls_problems(before, {"nginx": KEY_B, "apache": KEY_C},
                              {"nginx": {KEY_B, KEY_C}, "apache": {KEY_C, KEY_B}}) == []

"""The hosts themselves, through testinfra: services, listeners, key files, config test and
the version the server tells."""

from __future__ import annotations

import stat

import pytest

from labgen import kinds, vantage
from labgen.checks import check, with_acme
from labgen.checks.netutil import headers
from labgen.acme import CERTS_TIMER
from labgen.hostpaths import cert_paths

# ss's local address of a listener for each family; Apache's one dual-stack socket shows as *.
LISTENERS = {"ipv4": ("0.0.0.0:443", "*:443"), "ipv6": ("[::]:443", "*:443")}


def unit_state(name: str, unit) -> str:
    return (f"expected {name} enabled and running; it is {'' if unit.is_enabled else 'not '}enabled "
            f"and {'' if unit.is_running else 'not '}running")


@check("host.service", "The web server is enabled and running", standard="labgen lab",
       why="A service that is not enabled does not come back after a reboot.",
       fix="systemctl enable --now <service>.", needs=("tools",))
def test_web_service(hosts, server):
    unit = hosts[server.name].service(kinds.of(server).unit)
    assert unit.is_enabled and unit.is_running, unit_state(kinds.of(server).unit, unit)


@pytest.mark.parametrize("role", ["authdns", "resolver"])
@check("host.dns_service", "The name server and the resolver are enabled and running",
       standard="labgen lab",
       why="Without them nothing in the lab resolves, and nothing validates.",
       fix="systemctl enable --now named / unbound.", needs=("tools",))
def test_dns_service(hosts, lab, role):
    host = lab.role(role)
    unit = hosts[host.name].service(kinds.of(host).unit)
    assert unit.is_enabled and unit.is_running, f"on {host.name}: {unit_state(kinds.of(host).unit, unit)}"


@check("host.listen", "Listening on 0.0.0.0:443 and [::]:443", standard="RFC 8200; labgen lab",
       why="A server bound to one family or one address is unreachable on the others.",
       fix="nginx: listen 0.0.0.0:443 ssl; listen [::]:443 ssl; Apache: Listen 443.",
       needs=("tools",))
def test_listening(hosts, server, family, lab):
    if vantage.outside(lab):  # the kernel's sockets, seen with this machine's ss
        local = vantage.listeners(lab, server, 443)
    else:
        local = {line.split()[3] for line in
                 hosts[server.name].run("/usr/bin/ss -Hltn 'sport = :443'").stdout.splitlines()}
    assert local & set(LISTENERS[family]), \
        f"expected a listener on {' or '.join(LISTENERS[family])}; saw {', '.join(sorted(local)) or 'none on port 443'}"


@check("host.key_files", "Private key files are readable by root only",
       standard="labgen lab; NIST SP 800-57 key protection",
       why="Anyone who reads the key can impersonate the server and, without forward secrecy, "
           "decrypt its traffic.",
       fix="chown root:root and chmod 600 the key files.", needs=("tools",))
def test_key_files(hosts, server, lab):
    for kind in lab.profile.certificate_types:
        path = cert_paths(server, kind)["key"]
        if vantage.outside(lab):  # lstat from outside the container, links resolved inside it
            found = vantage.file_owner_mode(lab, server, path)
            assert found is not None, f"{path}: missing"
            uid, mode = found
            assert stat.S_ISREG(mode), f"{path}: not a regular file"
            assert uid == 0 and mode & 0o077 == 0, \
                f"{path}: mode {oct(stat.S_IMODE(mode))}, owner uid {uid}; expected 0600 (or stricter), root"
            continue
        key = hosts[server.name].file(path)
        assert key.exists and key.user == "root" and key.mode & 0o077 == 0, \
            f"{key.path}: {oct(key.mode) if key.exists else 'missing'} {key.user if key.exists else ''}"


@check("host.config_test", "The server's own config test passes", standard="labgen lab",
       why="A config that does not pass its own test will fail the next reload.",
       fix="Run nginx -t / apache2ctl configtest and fix what it names.", needs=("tools",))
def test_config_test(hosts, server):
    command = kinds.of(server).own_test
    result = hosts[server.name].run(command)
    last = (result.stderr or result.stdout).strip().splitlines()
    assert result.rc == 0, f"{command.rsplit('/', 1)[-1]} fails: {last[-1] if last else 'no output'}"


@check("host.renewal_timer", "The renewal timer is enabled and running",
       standard="RFC 8555; Let's Encrypt integration guide (renew automatically)",
       why="A short-lived certificate expires within days unless something renews it: the "
           "timer is what keeps the site up.",
       fix=f"systemctl enable --now {CERTS_TIMER} (it runs labgen-certs renew).",
       needs=("tools",),
       applies=with_acme("the lab CA's certificates are rendered, not renewed on the host (certificates: lab-ca)"))
def test_renewal_timer(hosts, server):
    unit = hosts[server.name].service(CERTS_TIMER)
    assert unit.is_enabled and unit.is_running, unit_state(CERTS_TIMER, unit)


@check("host.served_current", "The server sends the certificate it has on disk",
       standard="RFC 8555 section 7.4.2; certbot deploy hooks",
       why="A renewal that does not reload the server leaves it sending the old certificate "
           "until that one expires: the renewal looks done and the site breaks days later.",
       fix="Reload the server after each renewal (labgen-certs does: its 'reload' setting in "
           "/etc/labgen/acme/certs.json); now: systemctl reload <server>.",
       needs=("tools",),
       applies=with_acme("the lab CA's certificates change only with a deploy, which reloads the server"))
def test_served_is_on_disk(hosts, server, lab):
    host = hosts[server.name]
    fingerprint = "openssl x509 -noout -fingerprint -sha256"
    files = [cert_paths(server, kind)["crt"] for kind in lab.profile.certificate_types]
    on_disk = {host.run(f"{fingerprint} -in {crt}").stdout.strip().split("=")[-1] for crt in files} - {""}
    assert on_disk, f"no certificate at {', '.join(files)}"
    served = host.run(f"openssl s_client -connect 127.0.0.1:443 -servername {server.fqdn} </dev/null "
                      f"2>/dev/null | {fingerprint}").stdout.strip().split("=")[-1]
    assert served in on_disk, (f"expected the server to send the certificate in {', '.join(files)} "
                               f"({', '.join(f[:23] + '...' for f in sorted(on_disk))}); it sends "
                               f"{served[:23] + '...' if served else 'none'}")


@check("host.version_hidden", "The server does not tell its version",
       standard="OWASP secure headers; internet.nl (no version disclosure)",
       why="A version number tells an attacker which known holes to try.",
       fix="nginx: server_tokens off; Apache: ServerTokens Prod and ServerSignature Off.",
       level="recommended",
       needs=("https",))
def test_version_hidden(probe, server):
    answer = headers(probe, f"https://{server.fqdn}/", "ipv4")
    assert answer[":status"], "no HTTPS answer"
    value = answer.get("server", "")
    assert not any(ch.isdigit() for ch in value), f"Server: {value}"
    page = probe.run(f"curl -s https://{server.fqdn}/no-such-page").stdout
    assert not any(f"{word}/" in page for word in ("nginx", "Apache")), "the error page names a version"

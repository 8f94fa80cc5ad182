"""IPv6: every web host and the name server have AAAA records, and each web server serves the
same page and headers over IPv6 as over IPv4 (internet.nl's IPv6 tests)."""

from __future__ import annotations

from labgen.checks import check
from labgen.checks.netutil import dig, headers, records

# Headers that may legitimately differ between two requests.
VOLATILE = {"date", "age", "etag", "last-modified", "alt-svc", "content-length"}


@check("ipv6.aaaa", "The web host has an AAAA record", standard="RFC 3596; internet.nl IPv6",
       why="Without an AAAA record no IPv6-only client can find the site.",
       fix="Publish an AAAA record for the host (labgen renders one per host).",
       needs=("dns",))
def test_web_host_has_aaaa(probe, server):
    assert_aaaa(probe, server)


@check("ipv6.ns_aaaa", "The name server has an AAAA record", standard="RFC 3596; internet.nl IPv6",
       why="A name server reachable only over IPv4 leaves IPv6-only resolvers without answers.",
       fix="Give the name server an IPv6 address and publish its AAAA record.",
       needs=("dns",))
def test_name_server_has_aaaa(probe, lab):
    assert_aaaa(probe, lab.role("authdns"))


def assert_aaaa(probe, host) -> None:
    _, answers, status = dig(probe, host.fqdn, "AAAA")
    assert str(host.ipv6) in records(answers, "AAAA"), f"{host.fqdn} AAAA: {answers or status}"


@check("ipv6.reachable", "The web server answers over IPv6", standard="RFC 8200; internet.nl IPv6",
       why="An AAAA record that points at a server that does not answer breaks the site for IPv6 users.",
       fix="Make the server listen on [::]:443 (nginx: listen [::]:443 ssl; Apache: Listen 443).",
       fetches=True,
       needs=("dns",))
def test_web_server_answers_over_ipv6(probe, server):
    status = headers(probe, f"https://{server.fqdn}/", "ipv6")[":status"]
    assert status == "200", f"expected status 200 over IPv6; saw {status or 'no answer'}"


@check("ipv6.same_content", "Same page and headers over IPv4 and IPv6",
       standard="internet.nl IPv6 (same website)",
       why="Users must get the same site whichever address family their network uses.",
       fix="Serve both families from the same server block or virtual host.",
       needs=("https",))
def test_same_page_and_headers_over_both_families(probe, server):
    url = f"https://{server.fqdn}/"
    v4, v6 = headers(probe, url, "ipv4"), headers(probe, url, "ipv6")
    assert v4[":status"] and v6[":status"], f"no answer over {'IPv4' if not v4[':status'] else 'IPv6'}"
    differ = sorted(k for k in (set(v4) | set(v6)) - set(VOLATILE) if v4.get(k) != v6.get(k))
    assert not differ, f"these headers differ between IPv4 and IPv6: {', '.join(differ)}"
    body = "curl {} -s " + url + " | sha256sum"
    assert probe.run(body.format("-4")).stdout == probe.run(body.format("-6")).stdout, \
        "the page served over IPv6 differs from the one over IPv4"


@check("ipv6.ns_reach", "The name servers answer over IPv6", standard="RFC 3901; internet.nl IPv6 "
       "(name servers reachable)",
       why="An AAAA record for a name server that does not answer over IPv6 leaves IPv6-only "
           "resolvers without answers, as if it had none.",
       fix="Make the name server listen on its IPv6 address (BIND: listen-on-v6 { any; }).",
       needs=("dns",))
def test_name_servers_answer_over_ipv6(probe, lab):
    _, answers, status = dig(probe, lab.domain, "NS")
    servers = records(answers, "NS")
    assert servers, f"{lab.domain} has no NS records ({status}); expected its name servers"
    for name in servers:
        _, answers, status = dig(probe, name, "AAAA")
        addresses = records(answers, "AAAA")
        assert addresses, f"the name server {name} has no AAAA record ({status}); expected one"
        for address in addresses:
            flags, answers, status = dig(probe, lab.domain, "SOA", f"@{address}", "+norec",
                                         "+time=3", "+tries=2")
            assert status == "NOERROR" and "aa" in flags and records(answers, "SOA"), (
                f"the name server {name} did not answer for {lab.domain} at its IPv6 address "
                f"{address} ({status or 'no answer'}); expected an authoritative answer")

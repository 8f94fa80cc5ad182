"""Small helpers the check modules share: addresses, and commands run on the client."""

from __future__ import annotations

import re
import shlex

from ..spec import Host


def address(server: Host, family: str) -> str:
    return str(server.ipv4 if family == "ipv4" else server.ipv6)


def curl_flag(family: str) -> str:
    return "-4" if family == "ipv4" else "-6"


def dig(client, name: str, rtype: str) -> tuple[list[str], list[str], str]:
    """(flags, answer lines, status) of a DNSSEC query through the lab resolver."""
    out = client.run(f"dig +dnssec +noall +comments +answer {shlex.quote(name)} {rtype}").stdout
    flags = re.search(r";; flags: ([a-z ]+);", out)
    status = re.search(r"status: ([A-Z]+)", out)
    answers = [line for line in out.splitlines() if line and not line.startswith(";")]
    return (flags.group(1).split() if flags else [], answers, status.group(1) if status else "")


def headers(client, url: str, family: str) -> dict[str, str]:
    """Response headers (lower-case names) of a GET through the lab resolver, the CA trusted."""
    out = client.run(f"curl {curl_flag(family)} -s -D - -o /dev/null {shlex.quote(url)}").stdout
    result = {}
    for line in out.splitlines()[1:]:
        name, _, value = line.partition(":")
        if value:
            result[name.strip().lower()] = value.strip()
    result[":status"] = out.split()[1] if out.split() else ""
    return result

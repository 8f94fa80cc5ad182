"""Small helpers the check modules share: addresses, and commands run on the probe (labgen.vantage)."""

from __future__ import annotations

import re
import shlex
import time

from ..spec import Host

FAMILIES = ("ipv4", "ipv6")


def address(server: Host, family: str) -> str:
    return str(server.ipv4 if family == "ipv4" else server.ipv6)


def endpoint(server: Host, family: str) -> str:
    """The server's port 443 at its address of the family, as openssl s_client -connect takes it."""
    addr = address(server, family)
    return f"[{addr}]:443" if family == "ipv6" else f"{addr}:443"


def curl_flag(family: str) -> str:
    return "-4" if family == "ipv4" else "-6"


# dig's target for the lab resolver: the probe's resolv.conf. The student runs that resolver, so
# only the checks that judge it ask it (dnssec.validated, dnssec.bogus_refused).
LAB_RESOLVER = ""


def dig(probe, name: str, rtype: str, *options: str, via: str | None = None) -> tuple[list[str], list[str], str]:
    """(flags, answer lines, status) of a DNSSEC query through the grader's own validating
    resolver on the probe (probe.labgen_truth: labgen's trust anchor, the lab's authoritative
    servers), or via=LAB_RESOLVER through the lab resolver; an @server among the options asks
    that server instead."""
    target = "" if any(o.startswith("@") for o in options) else (probe.labgen_truth if via is None else via)
    out = probe.run(f"dig +dnssec +noall +comments +answer {target} {' '.join(options)} "
                     f"{shlex.quote(name)} {rtype}").stdout
    flags = re.search(r";; flags: ([a-z ]+);", out)
    status = re.search(r"status: ([A-Z]+)", out)
    answers = [line for line in out.splitlines() if line and not line.startswith(";")]
    return (flags.group(1).split() if flags else [], answers, status.group(1) if status else "")


def records(answers: list[str], rtype: str) -> list[str]:
    """The rdata texts of the answer lines of one type."""
    return [" ".join(a.split()[4:]) for a in answers if a.split()[3:4] == [rtype]]


def headers(probe, url: str, family: str) -> dict[str, str]:
    """Response headers (lower-case names) of a GET through the lab resolver, the CA trusted.
    One run asks once per URL and family (a dozen checks read the same page's headers); an
    answer that did not come is asked for again."""
    seen = probe.__dict__.setdefault("labgen_headers", {})
    if (url, family) in seen:
        return dict(seen[(url, family)])
    out = probe.run(f"curl {curl_flag(family)} -s -D - -o /dev/null {shlex.quote(url)}").stdout
    result = {}
    for line in out.splitlines()[1:]:
        name, _, value = line.partition(":")
        if value:
            result[name.strip().lower()] = value.strip()
    result[":status"] = out.split()[1] if out.split() else ""
    if result[":status"]:
        seen[(url, family)] = dict(result)
    return result


def s_client(probe, server: Host, family: str, *options: str) -> tuple[bool, str]:
    """One openssl s_client handshake with the server at its address over the family:
    (whether it succeeded, everything s_client printed). A connection that breaks below TLS
    (a reset, a timeout: a server busy restarting) is tried again; a TLS refusal is an answer."""
    target = endpoint(server, family)
    for attempt in range(3):
        # timeout: a resumed 0-RTT connection could otherwise wait for the server's keep-alive;
        # generous, as a loaded 2-core machine can take seconds for a handshake.
        result = probe.run(f"timeout 20 openssl s_client -connect {target} -servername {server.fqdn} "
                            f"{' '.join(options)} </dev/null 2>&1")
        # An HTTP/2 server may send binary frames right after the handshake.
        out = result.stdout_bytes.decode("utf-8", "replace")
        if result.rc == 0 or not (result.rc == 124 or "errno=" in out):
            break
        time.sleep(0.5)
    return result.rc == 0, out


def handshake(probe, server: Host, family: str, *options: str) -> str:
    """openssl s_client's brief summary of one handshake ('' when it failed)."""
    ok, out = s_client(probe, server, family, "-brief", *options)
    return out if ok else ""


def openssl_reason(out: str) -> str:
    """What went wrong, in OpenSSL's words but without its codes and source paths:
    'verify error:num=18:self-signed certificate' -> 'self-signed certificate';
    '40...:error:0A000086:SSL routines:fn:certificate verify failed:../ssl/x.c:2111:' ->
    'certificate verify failed'."""
    reasons = re.findall(r"verify error:num=\d+:([^\n]+)", out)
    reasons += [m.group(1) for m in re.finditer(r":error:[0-9A-F]+:[^:]*:[^:]*:([^:\n]+)", out)]
    if "Connection refused" in out:
        reasons.append("connection refused")
    return "; ".join(dict.fromkeys(r.strip() for r in reasons)) or "no TLS answer"


def summary(out: str) -> str:
    """'TLSv1.2 with ECDHE-ECDSA-AES128-SHA' from s_client -brief's lines."""
    version = re.search(r"Protocol version: (\S+)", out)
    suite = re.search(r"Ciphersuite: (\S+)", out)
    return " with ".join(m.group(1) for m in (version, suite) if m) or "a handshake"


def accepted(probe, server: Host, family: str, *options: str) -> str:
    """For checks that want a handshake refused: '' when the server refused it with a TLS alert,
    what it accepted otherwise. A connection that fails below TLS is no refusal: the check
    fails and says that the server did not answer."""
    ok, out = s_client(probe, server, family, "-brief", *options)
    if ok:
        return summary(out)
    require_refusal(out, server, family)
    return ""


def require_refusal(out: str, server: Host, family: str) -> None:
    """A failed handshake's output: returns when the server refused it with a TLS alert; fails
    the check, saying the server did not answer, when the connection failed below TLS."""
    if "alert" in out:
        return
    reason = "connection refused" if "Connection refused" in out else "no TLS answer"
    raise AssertionError(f"{server.name} did not answer the handshake on {address(server, family)} "
                         f"({reason}); a refusal counts only when the server answers")


def served_certificate(probe, server: Host, family: str) -> str:
    """The text form (openssl x509 -text) of the certificate the server sends."""
    target = endpoint(server, family)
    return probe.run(f"openssl s_client -connect {target} -servername {server.fqdn} </dev/null "
                      "2>/dev/null | openssl x509 -noout -text").stdout


def served_spki(probe, server: Host, family: str) -> str:
    """SHA-256 of the served certificate's public key (what a TLSA 3 1 1 record names); ''
    when no certificate came."""
    target = endpoint(server, family)
    out = probe.run(f"openssl s_client -connect {target} -servername {server.fqdn} </dev/null 2>/dev/null "
                    "| openssl x509 -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum").stdout
    return spki_digest(out)


def spki_digest(text: str) -> str:
    """sha256sum's digest of a public key; '' for what it prints on empty input (no
    certificate came) or anything else."""
    found = text.split()[0] if text.split() else ""
    return "" if found == EMPTY_SHA256 or not re.fullmatch(r"[0-9a-f]{64}", found) else found


EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


# Client-initiated renegotiations asked for in one connection: internet.nl accepts a server that
# stops them before 10 ("allowed with a low limit").
RENEGOTIATIONS = 10


def renegotiation_probe(probe, server: Host, family: str) -> str:
    """Everything s_client printed for one TLS 1.2 connection in which the client asks for
    renegotiation up to RENEGOTIATIONS times ('R' on its input); a server that refuses ends the
    connection, and the writer stops at its next line (broken pipe)."""
    target = endpoint(server, family)
    writer = (f"(sleep 0.3; i=0; while [ $i -lt {RENEGOTIATIONS} ]; do printf 'R\\n' || exit; "
              "sleep 0.3; i=$((i+1)); done; sleep 0.3)")
    return probe.run(f"{writer} | timeout 20 openssl s_client -connect {target} -servername "
                      f"{server.fqdn} -tls1_2 2>&1").stdout_bytes.decode("utf-8", "replace")


def renegotiations(out: str) -> tuple[bool, int, bool]:
    """(the first handshake succeeded, renegotiations the server completed, the server refused
    one) in the output of renegotiation_probe."""
    first, *rest = out.split("RENEGOTIATING")
    established = bool(re.search(r"^New, TLSv1\.2", first, re.M))
    refused = "no renegotiation" in out or bool(rest and re.search(r"alert|:error:", rest[-1]))
    completed = sum(1 for part in rest if "depth=0" in part and not re.search(r"alert|:error:", part))
    return established, completed, refused


def certificate_text(probe, server: Host, family: str, *options: str) -> str:
    """The text form (openssl x509 -text) of the certificate the server sends for a handshake
    with these s_client options ('' when the handshake failed)."""
    target = endpoint(server, family)
    return probe.run(f"openssl s_client -connect {target} -servername {server.fqdn} "
                      f"{' '.join(options)} </dev/null 2>/dev/null | openssl x509 -noout -text").stdout

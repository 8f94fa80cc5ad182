"""https.client_reneg on canned s_client output: no configuration of nginx or Apache on
OpenSSL 3 accepts a client-initiated renegotiation, so the accepting server is OpenSSL's own
`s_server -client_renegotiation` (its output, shortened, is below)."""

from __future__ import annotations

import pytest
from testinfra.backend.base import CommandResult

from labgen.checks.netutil import renegotiations
from labgen.checks.test_tls import test_client_renegotiation_refused as reneg_check
from labgen.spec import parse

HANDSHAKE = ("CONNECTED(00000003)\ndepth=1 O=labgen, CN=labgen root CA\nverify return:1\n"
             "depth=0 CN=nginx.lab.example\nverify return:1\n---\n"
             "New, TLSv1.2, Cipher is ECDHE-ECDSA-AES256-GCM-SHA384\n"
             "Secure Renegotiation IS supported\n---\n")
AGAIN = ("RENEGOTIATING\ndepth=1 O=labgen, CN=labgen root CA\nverify return:1\n"
         "depth=0 CN=nginx.lab.example\nverify return:1\n")
ACCEPTED = HANDSHAKE + AGAIN * 5 + "DONE\n"
REFUSED = HANDSHAKE + ("RENEGOTIATING\n4087CD66EF7F0000:error:0A000153:SSL routines:"
                       "ssl3_read_bytes:no renegotiation:../ssl/record/rec_layer_s3.c:935:\n")
LIMITED = HANDSHAKE + AGAIN * 3 + REFUSED[len(HANDSHAKE):]


class Canned:
    """A testinfra-like host whose every command prints the same output and succeeds."""

    def __init__(self, out: str):
        self.out = out

    def run(self, command: str) -> CommandResult:
        return CommandResult(None, 0, command.encode(), self.out.encode(), b"")


def test_the_probe_output_is_read_as_established_completed_refused():
    assert renegotiations(ACCEPTED) == (True, 5, False)
    assert renegotiations(REFUSED) == (True, 0, True)
    assert renegotiations(LIMITED) == (True, 3, True)
    assert renegotiations("CONNECTED(00000003)\nerror\n")[0] is False


@pytest.mark.parametrize("out,ok", [(REFUSED, True), (LIMITED, True), (ACCEPTED, False)])
def test_client_renegotiation_fails_only_when_the_server_keeps_accepting(out, ok):
    lab = parse({"profile": "intermediate"})
    server = lab.web[0]
    if ok:
        reneg_check(Canned(out), server, "ipv4", lab)
    else:
        with pytest.raises(AssertionError, match="completed 5 client-initiated renegotiations"):
            reneg_check(Canned(out), server, "ipv4", lab)

"""The grading service's front door, on a real Unix socket without containers: who asks comes
only from the forwarder's first line; bad requests get a clear refusal with the right status;
the rate limit refuses with Retry-After; the board needs the trainer's token."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
import yaml

from labgen.classroom import service
from labgen.classroom.access import service_dir

CLASS = {"name": "unit", "students": 2, "network": {"ipv4": "10.150.0.0/16", "ipv6": "2001:db8:150::/48"}}


@pytest.fixture
def served(tmp_path, monkeypatch):
    monkeypatch.setattr(service, "READ_LIMIT", 0.5)
    config = tmp_path / "class.yml"
    config.write_text(yaml.safe_dump(CLASS), encoding="utf-8")
    out = tmp_path / "build"
    grading = service.Service(config, out, engine=None, log=logging.getLogger("test"))
    return grading, service_dir(out / "unit") / "t.sock"


def ask(served, *messages: bytes, pause: float = 0) -> list[str]:
    grading, path = served

    async def one(data: bytes) -> str:
        reader, writer = await asyncio.open_unix_connection(str(path))
        writer.write(data)
        if pause:
            await asyncio.sleep(pause)
        got = await reader.read()
        writer.close()
        return got.decode()

    async def main():
        server = await asyncio.start_unix_server(grading.handle, str(path), limit=service.MAX_HEAD)
        try:
            return [await one(m) for m in messages]
        finally:
            server.close()
    return asyncio.run(main())


STUDENT = b"LABGEN student s01 10.150.1.12\n"


def body(answer: str) -> dict:
    return json.loads(answer.split("\r\n\r\n", 1)[1])


def test_bad_requests_are_refused_with_a_reason(served):
    garbage, head, big, chunked, unknown, nobody = ask(
        served, STUDENT + bytes(range(1, 256)) + b"\r\n\r\n",
        STUDENT + b"GET /status HTTP/1.1\r\nX: " + b"y" * 20000 + b"\r\n\r\n",
        STUDENT + b"POST /ds HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n",
        STUDENT + b"POST /ds HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
        STUDENT + b"GET /etc/passwd HTTP/1.1\r\n\r\n",
        b"LABGEN student s99 10.150.1.12\nGET /status HTTP/1.1\r\n\r\n")
    assert garbage.startswith("HTTP/1.1 400 ") and body(garbage)["text"] == "refused: not an HTTP request"
    assert head.startswith("HTTP/1.1 413 ") and "head must be under 8192 bytes" in body(head)["text"]
    assert big.startswith("HTTP/1.1 413 ") and "body must be under 4096 bytes" in body(big)["text"]
    assert chunked.startswith("HTTP/1.1 411 ")
    assert unknown.startswith("HTTP/1.1 404 ") and "lab help" in body(unknown)["text"]
    assert nobody.startswith("HTTP/1.1 403 ") and "s99 is not a student of class unit" in body(nobody)["text"]
    for answer in (garbage, head, big, chunked, unknown, nobody):
        assert body(answer)["ok"] is False


def test_only_the_forwarders_first_line_says_who_asks(served):
    # without it (anything that is not the access container's forwarder) nothing is answered
    assert ask(served, b"GET /status HTTP/1.1\r\nX-Student: s01\r\n\r\n",
               b"LABGEN root s01 10.150.1.5\nGET /status HTTP/1.1\r\n\r\n") == ["", ""]


def test_a_slow_request_is_cut_off(served):
    (answer,) = ask(served, STUDENT + b"GET /status HTTP/1.1\r\n", pause=1)
    assert answer.startswith("HTTP/1.1 408 ") and "did not arrive within" in body(answer)["text"]


def test_the_rate_limit_refuses_with_retry_after(served):
    answers = ask(served, *[STUDENT + b"GET /nothing HTTP/1.1\r\n\r\n"] * (service.BURST["student"] + 2))
    codes = [int(a.split()[1]) for a in answers]
    assert codes[:service.BURST["student"]] == [404] * service.BURST["student"] and codes[-1] == 429
    assert "Retry-After: 1\r\n" in answers[-1] and "too many requests" in body(answers[-1])["text"]
    other = ask(served, b"LABGEN student s02 10.150.2.12\nGET /nothing HTTP/1.1\r\n\r\n")
    assert other[0].startswith("HTTP/1.1 404 ")  # one student's burst costs the others nothing


def test_the_board_needs_the_trainers_token(served):
    grading, _ = served
    trainer = b"LABGEN trainer trainer 10.89.0.1\n"
    guess, page, rows, post = ask(
        served, trainer + b"GET /board/guess HTTP/1.1\r\n\r\n",
        trainer + f"GET /board/{grading.token} HTTP/1.1\r\n\r\n".encode(),
        trainer + f"GET /board/{grading.token}/rows HTTP/1.1\r\n\r\n".encode(),
        trainer + f"POST /board/{grading.token}/rows HTTP/1.1\r\n\r\n".encode())
    assert guess.startswith("HTTP/1.1 403 ") and "trainer's link" in body(guess)["text"]
    assert page.startswith("HTTP/1.1 200 ") and "Class unit: 2 students" in page
    doc = body(rows)
    assert [r["student"] for r in doc["rows"]] == ["s01", "s02"] and not any(r["checked"] for r in doc["rows"])
    assert post.startswith("HTTP/1.1 405 ")
    # a student cannot read the board, whatever path they try
    (student,) = ask(served, STUDENT + f"GET /board/{grading.token}/rows HTTP/1.1\r\n\r\n".encode())
    assert student.startswith("HTTP/1.1 404 ")


def test_requests_without_the_token_never_starve_the_board(served):
    """Anyone on the classroom network reaches the board's port: a burst of guesses is limited
    in a bucket of its own, charged after the token, and the trainer's board still answers."""
    grading, _ = served
    trainer = b"LABGEN trainer trainer 10.89.0.1\n"
    burst = service.BURST["trainer"] + 5
    answers = ask(served, *([trainer + b"GET /board/guess HTTP/1.1\r\n\r\n"] * burst),
                  trainer + f"GET /board/{grading.token}/rows HTTP/1.1\r\n\r\n".encode())
    codes = [int(a.split()[1]) for a in answers]
    assert codes[:service.BURST["trainer"]] == [403] * service.BURST["trainer"]
    assert codes[service.BURST["trainer"]:-1] == [429] * 5
    assert codes[-1] == 200

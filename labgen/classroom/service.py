"""The class's grading service: students ask it with the `lab` command, the trainer's board
reads it. It runs on the trainer's machine (it needs the container engine to grade) and listens
on one Unix socket only, mounted into the access container (forwarder.py), which opens it for
each connection and first writes who asks: a student, known by the network the request arrived
on, or the trainer's page. Nothing a request says changes who asked.

A check runs labgen's own grader (labgen exercise check or labgen verify for that student, from
the lab's probe, which no student can enter), GRADERS at a time. The queue is first come, first
served, with at most one place per student: asking again while a check waits or runs gets that
check's answer. Each student has a rate limit on every request.

labgen class up starts it in the background (its log: build/<class>/service/service.log);
labgen class serve runs it in the foreground (a systemd unit, README); labgen class down stops it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import json
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import unquote

from .. import lifecycle
from ..engine import Engine
from ..errors import LabgenError, SpecError, UsageError
from ..exercises import catalogue, session
from ..exercises.state import State
from ..render import environment
from ..text import printable
from . import access
from .servicectl import board_url, log_file, pid_file, running, socket_file, token
from .rootzone import MAX_DS, class_student_lab, student_builds
from .machines import Fleet
from .scoreboard import VERIFY_LIMIT, Row, groups_of, row_of
from .spec import Class, load_class

TUNNEL_EVERY = 5  # seconds between looks at the SSH tunnels to other machines
GRADERS = 3  # checks at once: each mostly waits on the lab's servers; more only queue on 2 cores
MAX_HEAD = 8192  # bytes of request line and headers
MAX_BODY = 4096  # bytes of body: a DS is under 200
READ_LIMIT = 10  # seconds to send a whole request
# Per asker: BURST requests at once, then one every 1/REFILL seconds.
BURST, REFILL = {"student": 10, "trainer": 60}, {"student": 1.0, "trainer": 10.0}
BOARD_REFRESH = 5  # seconds between the board's updates


@dataclass(frozen=True)
class Answer:
    status: int
    doc: dict | None = None
    html: str = ""

    @staticmethod
    def text(status: int, text: str, ok: bool = True, **more) -> "Answer":
        return Answer(status, {"text": text, "ok": ok, **more})


REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
           408: "Request Timeout", 411: "Length Required", 413: "Content Too Large",
           429: "Too Many Requests", 500: "Internal Server Error"}


class Service:
    def __init__(self, config: Path, out: Path, engine: Engine, log: logging.Logger):
        self.config, self.out, self.engine, self.log = config, out, engine, log
        self.klass = load_class(config)
        self.folder = out / self.klass.name
        self.results_file = access.service_dir(self.folder) / "results.json"
        self.token = token(self.folder)
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self.pending: dict[str, asyncio.Future] = {}
        self.busy: dict[str, asyncio.Lock] = {}
        self.ds_lock = asyncio.Lock()
        self.buckets: dict[str, tuple[float, float]] = {}
        self.results: dict[str, dict] = self._load_results()

    # -- the class file may change while the service runs (class up re-reads it too)
    def _class(self) -> Class:
        """The class file as it is now; one that no longer reads keeps the last good one."""
        mtime = self.config.stat().st_mtime_ns
        if mtime != getattr(self, "_mtime", None):
            self._mtime = mtime
            try:
                self.klass = load_class(self.config)
            except LabgenError as error:
                self.log.warning("the class file changed and does not read (%s); keeping the last good one",
                                 error)
        return self.klass

    def _load_results(self) -> dict[str, dict]:
        try:
            return json.loads(self.results_file.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return {}

    def _save_results(self) -> None:
        tmp = self.results_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.results), encoding="utf-8")
        tmp.replace(self.results_file)

    # -- other machines' access containers reach this socket through SSH (ssh -R)
    async def tunnels(self, socket_path: Path) -> None:
        """One `ssh -N -R` per other machine of the class, put there again when it ends (the
        machine rebooted, the link dropped) and ended when the machine leaves the class file."""
        running: dict[str, asyncio.subprocess.Process] = {}
        said: dict[str, str] = {}  # the last thing logged per machine: a machine that stays gone is logged once
        try:
            while True:
                klass = self._class()
                wanted = {name: engine for name, engine in Fleet(klass, self.folder, self.engine).engines.items()
                          if engine.endpoint is not None}
                for name, proc in list(running.items()):
                    if proc.returncode is not None or name not in wanted:
                        if proc.returncode is None:
                            proc.terminate()
                        why = (await proc.stderr.read()).decode(errors="replace").strip().splitlines()[-1:]
                        del running[name]
                        self._said(said, name, f"tunnel to {name} ended ({' '.join(why) or 'no reason given'})")
                for name, engine in wanted.items():
                    if name not in running:
                        try:
                            running[name] = await self._tunnel(klass, engine, socket_path)
                            self._said(said, name, f"tunnel to {name}: its access container reaches this service")
                        except (LabgenError, OSError) as error:  # gone, or no ssh here: tried again
                            self._said(said, name, f"tunnel to {name}: {error}")
                await asyncio.sleep(TUNNEL_EVERY)
        finally:
            for proc in running.values():
                if proc.returncode is None:
                    proc.terminate()

    def _said(self, said: dict[str, str], name: str, text: str) -> None:
        if said.get(name) != text:
            said[name] = text
            self.log.info("%s", text)

    async def _tunnel(self, klass: Class, engine: Engine, socket_path: Path) -> asyncio.subprocess.Process:
        there = await asyncio.to_thread(access.sockets, klass, self.folder, engine)
        remote = f"{there}/{access.SOCKET}"
        # sshd will not bind over a socket an earlier tunnel left (StreamLocalBindUnlink is off)
        await asyncio.to_thread(engine.on_machine, "rm", "-f", remote)
        proc = await asyncio.create_subprocess_exec(
            *engine.ssh("-N", "-o", "ExitOnForwardFailure=yes", "-o", "ServerAliveInterval=10",
                        "-o", "ServerAliveCountMax=3", "-R", f"{remote}:{socket_path.resolve()}"),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        return proc

    # -- the connection: who asks (from the forwarder), one HTTP request, one answer
    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        started, who, peer, request = time.monotonic(), "?", "?", "-"
        try:
            line = await asyncio.wait_for(reader.readline(), READ_LIMIT)
            match = re.fullmatch(rb"LABGEN (student|trainer) ([a-z0-9-]+) ([0-9a-f.:]+)\n", line)
            if not match:
                writer.close()
                return
            role, who, peer = (m.decode() for m in match.groups())
            answer, request = await self._request(role, who, reader)
        except (asyncio.TimeoutError, TimeoutError):
            answer = Answer.text(408, f"refused: the request did not arrive within {READ_LIMIT} s", False)
        except Exception as error:  # one bad request never stops the service
            self.log.exception("internal error")
            answer = Answer.text(500, f"the grading service failed on this request ({type(error).__name__}); "
                                 "tell your trainer", False)
        self.log.info("%s %s %s -> %d (%.1f s)", who, peer, request, answer.status,
                      time.monotonic() - started)
        try:
            writer.write(_http(answer))
            await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _request(self, role: str, who: str, reader) -> tuple[Answer, str]:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_LIMIT)
        except asyncio.LimitOverrunError:
            return Answer.text(413, f"refused: a request's head must be under {MAX_HEAD} bytes", False), "-"
        except asyncio.IncompleteReadError:
            return Answer.text(400, "refused: not an HTTP request", False), "-"
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or not parts[1].startswith("/"):
            return Answer.text(400, "refused: not an HTTP request", False), "-"
        method, target = parts[0], unquote(parts[1].split("?")[0])
        request = printable(f"{method} {target}", 120, keep_newlines=False)
        headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:] if h)}
        if "chunked" in headers.get("transfer-encoding", ""):
            return Answer.text(411, "refused: send the body with a Content-Length", False), request
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            return Answer.text(400, "refused: Content-Length is not a number", False), request
        if not 0 <= length <= MAX_BODY:
            return Answer.text(413, f"refused: a body must be under {MAX_BODY} bytes", False), request
        body = await asyncio.wait_for(reader.readexactly(length), READ_LIMIT) if length else b""
        # The board's limit is charged after its token: requests without it (anyone on the
        # classroom network may send them) share a bucket of their own and never starve the board.
        key = f"trainer:{'board' if self._has_token(target) else 'guess'}" if role == "trainer" else f"{role}:{who}"
        if wait := self._limited(key, role):
            return Answer.text(429, f"refused: too many requests; ask again in {wait:.0f} s", False,
                               retry_after=round(wait)), request
        if role == "trainer":
            return await self._trainer(method, target), request
        return await self._student(who, method, target, body), request

    def _limited(self, key: str, role: str) -> float:
        """0 when the request may go on, else the seconds to wait (a token bucket per asker)."""
        now = time.monotonic()
        tokens, stamp = self.buckets.get(key, (BURST[role], now))
        tokens = min(BURST[role], tokens + (now - stamp) * REFILL[role])
        if tokens < 1:
            self.buckets[key] = (tokens, now)
            return (1 - tokens) / REFILL[role]
        self.buckets[key] = (tokens - 1, now)
        return 0

    # -- the student's side
    async def _student(self, name: str, method: str, target: str, body: bytes) -> Answer:
        klass = self._class()
        try:
            student = klass.student(name)
        except SpecError:
            return Answer.text(403, f"refused: {name} is not a student of class {klass.name}", False)
        routes = {("GET", "/exercises"): self._exercises, ("GET", "/status"): self._status,
                  ("POST", "/check"): self._check, ("POST", "/ds"): self._ds}
        if (method, target) in routes:
            handler = routes[(method, target)]
            return await (handler(student, body) if handler == self._ds else handler(student))
        if method == "POST" and re.fullmatch(r"/hint/[a-z0-9-]{1,64}", target):
            return await self._hint(student, target.removeprefix("/hint/"))
        return Answer.text(404, "unknown request; lab help lists what you can ask", False)

    def _lab(self, student):
        lab = class_student_lab(self.klass, student, self.folder)
        return lab, student_builds(self.folder) / lab.name

    async def _exercises(self, student) -> Answer:
        lab, build = self._lab(student)
        state = State.load(build)
        solved = {r["id"] for r in state.history if r["result"] == "solved"}
        ids = list(dict.fromkeys([*self.klass.exercises, *state.active]))
        lines = [f"{'ID':<24} {'STATE':<11} TITLE"]
        for exercise_id in ids:
            mark = "active" if exercise_id in state.active else "solved" if exercise_id in solved else "not started"
            lines.append(f"{exercise_id:<24} {mark:<11} {catalogue()[exercise_id].title}")
        lines.append(f"{len(ids)} exercises for {student.name}; your trainer starts each one. "
                     "lab hint ID helps with an active one; lab check grades it.")
        return Answer.text(200, "\n".join(lines), exercises=[{"id": i, "active": i in state.active,
                                                              "solved": i in solved} for i in ids])

    async def _hint(self, student, exercise_id: str) -> Answer:
        lab, build = self._lab(student)
        async with self.busy.setdefault(student.name, asyncio.Lock()):
            try:
                return Answer.text(200, session.for_students(session.hint(lab, build, exercise_id)))
            except UsageError as error:
                return Answer.text(400, session.for_students(str(error)), False)

    async def _status(self, student) -> Answer:
        lab, build = self._lab(student)
        hosts = await asyncio.to_thread(lifecycle.status, lab, Engine.of(lab))
        last = self.results.get(student.name)
        lines = [f"{student.name}: lab {lab.name}, zone {lab.domain}; "
                 f"{sum(h.healthy for h in hosts)} of {len(hosts)} hosts healthy",
                 session.for_students(session.status(lab, build))]
        lines.append(f"last check: {last['at']}, {'every required check passes' if last['passed'] else 'failing'}"
                     if last else "last check: none yet (lab check)")
        return Answer.text(200, "\n".join(lines))

    async def _ds(self, student, body: bytes) -> Answer:
        from .lifecycle import ds_taken_text, take_in_ds

        try:
            text = body.decode("utf-8").strip()
        except UnicodeDecodeError:
            return Answer.text(400, "refused: the DS must be text", False)
        given = [line.strip() for line in text.splitlines() if line.strip()]
        if len(given) > MAX_DS or any(len(line.split()) != 4 for line in given):
            return Answer.text(400, f"refused: give up to {MAX_DS} DS, one per line, each as 'TAG "
                               "ALGORITHM DIGEST-TYPE DIGEST', or none to have them made from your "
                               "zone's key-signing DNSKEYs", False)
        async with self.ds_lock:  # one redeploy of the lab root at a time
            try:
                taken, changed = await asyncio.to_thread(take_in_ds, self.klass, self.out, self.engine,
                                                student.name, given, lambda line: None)
            except UsageError as error:
                return Answer.text(400, f"refused: {printable(str(error), 400, keep_newlines=False)}", False)
        return Answer.text(200, ds_taken_text(student, taken, changed))

    async def follower(self) -> None:
        """The lab root follows the students' CDS (lifecycle.follow_cds) every parent propagation
        delay, when BIND signs the students' zones: a student's KSK roll needs no trainer."""
        from .lifecycle import follow_cds

        while True:
            lab = self._class().students[0].lab
            if lab.dnssec.signer != "bind":
                return
            await asyncio.sleep(lab.dnssec.pace.parent_propagation_delay)
            async with self.ds_lock:  # one redeploy of the lab root at a time
                try:
                    changes = await asyncio.to_thread(follow_cds, self.klass, self.out, self.engine,
                                                      lambda line: None)
                except Exception as error:  # noqa: BLE001 - the next round tries again
                    self.log.warning("following the students' CDS failed: %s",
                                     printable(str(error), 300, keep_newlines=False))
                    continue
            for line in changes:
                self.log.info("lab root: %s", line)

    async def _check(self, student) -> Answer:
        asked = time.monotonic()
        future = self.pending.get(student.name)
        if future is None:
            future = self.pending[student.name] = asyncio.get_running_loop().create_future()
            self.queue.put_nowait(student.name)
        result = await asyncio.shield(future)
        waited = time.monotonic() - asked
        return Answer.text(200, f"{result['text']}\n(checked {result['at']}, {waited:.0f} s after you asked)",
                           result["passed"], waited=round(waited, 1), took=result["took"])

    async def grader(self) -> None:
        while True:
            name = await self.queue.get()
            try:
                result = await self._grade(self.klass.student(name))
            except Exception as error:
                self.log.exception("grading %s failed", name)
                result = {"text": f"the check could not run ({type(error).__name__}); tell your trainer",
                          "passed": False, "at": _now(), "took": 0, "row": None}
            self.results[name] = result
            self._save_results()
            self.pending.pop(name).set_result(result)

    async def _grade(self, student) -> dict:
        lab, build = self._lab(student)
        started = time.monotonic()
        async with self.busy.setdefault(student.name, asyncio.Lock()):
            with tempfile.TemporaryDirectory(prefix="labgen-service-") as tmp:
                report = Path(tmp) / "report.json"
                what = ["exercise", "check"] if State.load(build).active else ["verify"]
                code, out, err = await _run([sys.executable, "-m", "labgen", *what, "-c", str(self.config),
                                             "-o", str(self.out), "--student", student.name,
                                             "--json", str(report)], VERIFY_LIMIT)
                doc = json.loads(report.read_text(encoding="utf-8")) if code in (0, 1) and report.exists() \
                    else None
        if doc is None:
            seen = "timed out" if code is None else (err.strip().splitlines() or ["failed"])[-1]
            text, passed = f"the check did not finish: {seen.removeprefix('labgen: error: ')}", False
        else:
            text, passed = session.for_students(out.strip()), code == 0
        row = row_of(self.klass, student, doc if doc else text, self.out)
        return {"text": printable(text, 20000), "passed": passed, "at": _now(),
                "took": round(time.monotonic() - started, 1), "row": asdict(row)}

    # -- the trainer's side: the board, behind the token
    def _has_token(self, target: str) -> bool:
        parts = target.strip("/").split("/")
        return len(parts) >= 2 and parts[0] == "board" and hmac.compare_digest(parts[1], self.token)

    async def _trainer(self, method: str, target: str) -> Answer:
        parts = target.strip("/").split("/")
        if not self._has_token(target):
            return Answer.text(403, "refused: this page needs the trainer's link (labgen class status --json "
                               "shows it)", False)
        if method != "GET":
            return Answer.text(405, "refused: the board only reads", False)
        rest = parts[2:]
        if not rest:
            return Answer(200, html=environment().get_template("report/board.html.j2").render(
                klass=self.klass, refresh=BOARD_REFRESH))
        if rest == ["rows"]:
            return Answer(200, self._board())
        if len(rest) == 2 and rest[0] == "student" and rest[1] in self.results:
            return Answer(200, self.results[rest[1]])
        return Answer.text(404, "unknown page", False)

    def _board(self) -> dict:
        rows = [Row(**{**r["row"], "failures": [tuple(f) for f in r["row"]["failures"]]})
                if (r := self.results.get(s.name)) and r.get("row") else Row(s.name, s.lab.name)
                for s in self._class().students]
        return {"class": self.klass.name, "groups": groups_of(rows),
                "rows": [{"student": r.student, "score": r.score, "passed": r.passed, "error": r.error,
                          "groups": r.groups, "solved": r.solved, "failing": len(r.failures),
                          "checked": self.results.get(r.student, {}).get("at", "")} for r in rows]}


async def _run(command: list[str], limit: int) -> tuple[int | None, str, str]:
    proc = await asyncio.create_subprocess_exec(*command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                                stdin=subprocess.DEVNULL)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), limit)
    except asyncio.TimeoutError:
        proc.terminate()  # the grader records nothing when interrupted
        await proc.wait()
        return None, "", ""
    return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _http(answer: Answer) -> bytes:
    if answer.html:
        body, kind = answer.html.encode(), "text/html; charset=utf-8"
    else:
        body, kind = (json.dumps(answer.doc) + "\n").encode(), "application/json"
    extra = f"Retry-After: {answer.doc['retry_after']}\r\n" if answer.doc and "retry_after" in answer.doc else ""
    return (f"HTTP/1.1 {answer.status} {REASONS.get(answer.status, '')}\r\nContent-Type: {kind}\r\n"
            f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\n{extra}Connection: close\r\n\r\n"
            ).encode() + body


def serve(config: Path, out: Path, engine: Engine, foreground: bool = True) -> None:
    """Run the service until SIGTERM or Ctrl-C."""
    klass = load_class(config)
    folder = out / klass.name
    if (pid := running(folder)) and pid != os.getpid():
        raise UsageError(f"the grading service of class {klass.name} already runs (pid {pid}); "
                         f"labgen class down -c {config} stops it")
    access.make_socket_dir(folder)
    socket_path = socket_file(folder)
    if len(str(socket_path.resolve())) > 100:
        raise UsageError(f"the build folder's path is too long for a Unix socket ({socket_path}); "
                         "use a shorter -o")
    log = logging.getLogger("labgen.service")
    log.setLevel(logging.INFO)
    # the log file always; the terminal too in the foreground (the background's output is the file)
    handlers = [logging.FileHandler(log_file(folder))] + ([logging.StreamHandler(sys.stdout)] if foreground else [])
    for handler in handlers:
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%dT%H:%M:%S"))
        log.addHandler(handler)
    pid_file(folder).write_text(str(os.getpid()), encoding="utf-8")
    asyncio.run(_main(Service(config, out, engine, log), socket_path, klass))


async def _main(service: Service, socket_path: Path, klass: Class) -> None:
    socket_path.unlink(missing_ok=True)
    server = await asyncio.start_unix_server(service.handle, str(socket_path), limit=MAX_HEAD)
    os.chmod(socket_path, 0o600)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    graders = [asyncio.create_task(service.grader()) for _ in range(GRADERS)]
    graders.append(asyncio.create_task(service.follower()))
    graders.append(asyncio.create_task(service.tunnels(socket_path)))
    service.log.info("class %s: grading service up for %d students; board %s", klass.name,
                     len(klass.students), board_url(klass, service.folder))
    await stop.wait()
    server.close()
    for task in graders:
        task.cancel()
    socket_path.unlink(missing_ok=True)
    service.log.info("class %s: grading service stopped", klass.name)



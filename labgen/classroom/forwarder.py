"""The access container's program (python3 of the lab image, no systemd). It listens:

- on the classroom side (the container's own network, whose ports are published on the trainer's
  machine): one SSH port per student, forwarded to that student's workstation, and the trainer's
  scoreboard port, forwarded to the grading service;
- on each student's network (its address there): the student end of the grading service, port 80.

The grading service itself runs on the trainer's machine behind a Unix socket mounted here; this
program opens it for each connection and first writes one line saying who is asking, learnt
from where the connection arrived: the listener's network, and a peer address that must be one
of that student's own hosts (not the lab root, not labgen's probe). Nothing a request says can
change that line. A connection from a student's network to the classroom ports is refused, so
no student reaches another student's workstation through here.

Run as: python3 -c "$(cat forwarder.py)" CONFIG_JSON (classroom/access.py writes it).
"""

import asyncio
import ipaddress
import json
import subprocess
import sys

CONNECT_LIMIT = 10  # seconds to reach a workstation or the service before giving up
OPEN_LIMIT = 8  # connections one student may hold open to the grading service at once
# The classroom side (SSH ports, the board): a client that says nothing for FIRST_BYTE_LIMIT
# seconds after connecting is closed (an SSH client sends its banner at once), and one address
# holds at most PEER_LIMIT connections to a port, so idle connections cannot fill a classmate's
# sshd (MaxStartups) or the board's share of the service.
FIRST_BYTE_LIMIT = 10
PEER_LIMIT = 6
LAB_PORT = 80  # the student end of the grading service, on each student's network


async def pipe(reader, writer):
    """One direction; at its end only that direction closes (a client that has sent its whole
    request may close its sending side and still wait for the answer)."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
            return
    except (ConnectionError, OSError):
        pass
    writer.close()


async def splice(reader, writer, up_reader, up_writer, answered_ends=False):
    """Both directions; with answered_ends (the grading service answers once), the connection
    ends with the answer, so an idle client holds nothing open."""
    upstream = asyncio.ensure_future(pipe(reader, up_writer))
    await pipe(up_reader, writer)
    if answered_ends:
        upstream.cancel()
    await asyncio.gather(upstream, return_exceptions=True)
    writer.close()
    up_writer.close()


def refuse(writer, status, text):
    """An HTTP answer from here (the service never saw the request), then close."""
    body = (text + "\n").encode()
    writer.write(f"HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\n"
                 f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
    writer.close()


def peer_of(writer):
    return ipaddress.ip_address(writer.get_extra_info("peername")[0].split("%")[0])


def classroom(handle, student_nets):
    """A classroom-side listener: nothing from a student's network gets through; per address at
    most PEER_LIMIT connections at once, each closed unless it speaks within FIRST_BYTE_LIMIT."""
    open_from: dict = {}

    async def guarded(reader, writer):
        peer = peer_of(writer)
        if any(peer in net for net in student_nets) or open_from.get(peer, 0) >= PEER_LIMIT:
            writer.close()
            return
        open_from[peer] = open_from.get(peer, 0) + 1
        try:
            try:
                first = await asyncio.wait_for(reader.read(65536), FIRST_BYTE_LIMIT)
            except (asyncio.TimeoutError, ConnectionError, OSError):
                first = b""
            if not first:
                writer.close()
                return
            await handle(Replayed(first, reader), writer)
        finally:
            open_from[peer] -= 1
            if not open_from[peer]:
                del open_from[peer]
    return guarded


class Replayed:
    """A reader whose first read gives back what was already read."""

    def __init__(self, first, reader):
        self.first, self.reader = first, reader

    async def read(self, n=-1):
        if self.first:
            data, self.first = self.first, b""
            return data
        return await self.reader.read(n)


def to_workstation(target):
    async def handle(reader, writer):
        try:
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(target, 22),
                                                          CONNECT_LIMIT)
        except (OSError, asyncio.TimeoutError):
            writer.close()
            return
        await splice(reader, writer, up_reader, up_writer)
    return handle


def to_service(socket_path, who, allowed=None):
    """Forward to the grading service, saying first who asks (a student, or the trainer's page)."""
    open_now = [0]

    async def handle(reader, writer):
        peer = peer_of(writer)
        if allowed is not None and peer not in allowed:
            refuse(writer, "403 Forbidden", f"refused: {peer} is not one of {who}'s hosts; the lab "
                   "command works from your own workstation and servers")
            return
        if open_now[0] >= OPEN_LIMIT:
            refuse(writer, "429 Too Many Requests", f"refused: {who} already has {OPEN_LIMIT} requests "
                   "open; wait for their answers")
            return
        open_now[0] += 1
        try:
            try:
                up_reader, up_writer = await asyncio.wait_for(asyncio.open_unix_connection(socket_path),
                                                              CONNECT_LIMIT)
            except (OSError, asyncio.TimeoutError):
                refuse(writer, "503 Service Unavailable", "the class's grading service is not running; "
                       "tell your trainer (labgen class up starts it)")
                return
            role = "trainer" if allowed is None else "student"
            up_writer.write(f"LABGEN {role} {who} {peer}\n".encode())
            await splice(reader, writer, up_reader, up_writer, answered_ends=True)
        finally:
            open_now[0] -= 1
    return handle


def own_addresses():
    found = json.loads(subprocess.run(["ip", "-j", "addr"], capture_output=True, text=True,
                                      check=True).stdout)
    return [ipaddress.ip_address(a["local"]) for link in found for a in link.get("addr_info", [])
            if a.get("scope") == "global"]


async def main(config):
    student_nets = [ipaddress.ip_network(n) for n in config["student_nets"]]
    outside = [str(a) for a in own_addresses() if not any(a in n for n in student_nets)]
    socket_path = config["socket"]
    listeners = [(to_workstation(target), port, outside) for port, target in config["ssh"].items()]
    listeners.append((to_service(socket_path, "trainer"), config["board_port"], outside))
    listeners = [(classroom(handle, student_nets), port, where) for handle, port, where in listeners]
    for student in config["students"]:
        allowed = {ipaddress.ip_address(a) for a in student["hosts"]}
        listeners.append((to_service(socket_path, student["name"], allowed), LAB_PORT, student["listen"]))
    servers = [await asyncio.start_server(handle, address, int(port))
               for handle, port, where in listeners for address in where]
    print(f"forwarding {len(config['ssh'])} SSH ports and the board on {', '.join(outside)}; the "
          f"grading service on {len(config['students'])} student networks", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))

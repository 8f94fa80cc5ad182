"""The access container's program: one TCP port per student, each forwarded to that student's
workstation on port 22. It runs inside the lab image (python3, no systemd) and listens only on
the container's classroom-side addresses: from a student's network nothing listens there.

Run as: python3 -c "$(cat forwarder.py)" '{"2201": "10.100.1.12", ...}' '["10.100.1.6", ...]'
(the ports and their workstations; the container's own addresses on the students' networks).
"""

import asyncio
import json
import subprocess
import sys

CONNECT_LIMIT = 10  # seconds to reach a workstation before the student's connection is closed


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


def handler(target):
    async def handle(reader, writer):
        try:
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(target, 22),
                                                          CONNECT_LIMIT)
        except (OSError, asyncio.TimeoutError):
            writer.close()
            return
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
    return handle


def classroom_addresses(exclude):
    found = json.loads(subprocess.run(["ip", "-j", "-4", "addr"], capture_output=True,
                                      text=True, check=True).stdout)
    return [a["local"] for link in found for a in link.get("addr_info", [])
            if a["local"] not in exclude and not a["local"].startswith("127.")]


async def main(table, exclude):
    addresses = classroom_addresses(set(exclude))
    servers = [await asyncio.start_server(handler(target), address, int(port))
               for port, target in table.items() for address in addresses]
    print(f"forwarding {len(table)} ports on {', '.join(addresses)}", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1]), json.loads(sys.argv[2])))

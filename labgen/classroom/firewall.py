"""The trainer machine's own walls around a class (nftables, one table per class).

A student's network is internal, but the trainer's machine still has an address on it (the
bridge's), and a container's traffic to that address reaches every service of the machine:
its sshd, a web server, anything listening on 0.0.0.0. And the machine routes: a packet a
student crafts for another student's network, or for the machine's other addresses, would be
forwarded. So for every student network's bridge:

- input: only answers to what the machine itself opened, and IPv6 neighbour discovery, enter;
  nothing a student's host opens reaches the trainer's machine (the grading service is reached
  through the access container, never on the machine's own addresses);
- forward: traffic stays on its own bridge (with br_netfilter, bridged packets pass this hook);
  nothing enters or leaves a student's network through the machine.

class up writes the table (replacing it, as bridges can change), class down deletes it.
"""

from __future__ import annotations

import json
import shutil

from ..engine import Engine, network_name
from ..errors import EngineError, LabgenError
from .spec import Class


def table(klass: Class) -> str:
    return "labgen_" + klass.name.replace("-", "_")


def bridges(students, engine: Engine) -> list[str]:
    names = [network_name(s.lab) for s in students]
    found = json.loads(engine.run("network", "inspect", *names).stdout)
    return [net["network_interface"] for net in found]


def rules(klass: Class, ifaces: list[str]) -> str:
    own = ", ".join(f'"{i}"' for i in ifaces)
    same = ", ".join(f'"{i}" . "{i}"' for i in ifaces)
    return f"""table inet {table(klass)} {{
    set students {{ type ifname; elements = {{ {own} }}; }}
    chain input {{
        type filter hook input priority filter - 10; policy accept;
        iifname @students ct state established,related accept
        iifname @students icmpv6 type {{ nd-neighbor-solicit, nd-neighbor-advert }} accept
        iifname @students counter drop
    }}
    chain forward {{
        type filter hook forward priority filter - 10; policy accept;
        iifname . oifname {{ {same} }} accept
        iifname @students counter drop
        oifname @students counter drop
    }}
}}
"""


def _nft(engine: Engine, script: str) -> None:
    """nft on the machine the engine runs its containers on (this one, or another over SSH)."""
    if engine.endpoint is None and not shutil.which("nft"):
        raise LabgenError("a class needs nftables on the trainer's machine (apt install nftables): "
                          "it keeps students' hosts away from the machine's own services")
    result = engine.on_machine("nft", "-f", "-", input=script)
    if result.returncode != 0:
        raise LabgenError(f"nft{engine.where} refused the class's rules: {result.stderr.strip()}")


def apply(klass: Class, engine: Engine, students=None) -> int:
    """Write the class's table on the engine's machine, for these students' networks (all: the
    class's); returns how many student networks it walls."""
    ifaces = bridges(klass.students if students is None else students, engine)
    _nft(engine, f"table inet {table(klass)}\ndelete table inet {table(klass)}\n" + rules(klass, ifaces))
    return len(ifaces)


def remove(klass: Class, engine: Engine) -> bool:
    """Delete the class's table on the engine's machine (False: there was none, or no nft)."""
    if engine.endpoint is None and not shutil.which("nft"):
        return False
    try:
        return engine.on_machine("nft", "delete", "table", "inet", table(klass)).returncode == 0
    except EngineError:
        return False

"""The lab an exercise is graded against, pinned at `exercise start`.

The checks take their expected values from the lab file (the CAA issuer, whether HTTP/3 is on,
the HSTS max-age, ...). A student who edits the lab file after `exercise start` could otherwise
move the goal to the broken lab (name the foreign CA as the issuer, turn HTTP/3 off) instead of
repairing the servers. So `start` records a digest of each value of the parsed lab (the Lab
model, not the file's bytes: comments and layout do not count), keyed by the lab-file key it
comes from, and `check` refuses a lab whose parsed model differs, naming the keys.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import json
from collections.abc import Mapping
from typing import Any

from ..capabilities import Target
from ..errors import UsageError
from ..profiles import Profile
from ..spec import _LAB_KEYS, Lab

# Keys of a class student's lab that the class file sets itself (classroom.spec.CLASS_KEYS),
# named as the class file writes them; every other key lives under `lab:` in the class file.
_CLASS_KEYS = {"name": "name", "domain": "root", "network.ipv4": "network.ipv4",
               "network.ipv6": "network.ipv6", "parent": "root"}


def _plain(value: Any) -> Any:
    """A value of the model as JSON: dataclasses as mappings, addresses as text."""
    if isinstance(value, Profile):
        return {"name": value.name, "data": _plain(dict(value.data))}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)
                if f.compare}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address, ipaddress.IPv4Network,
                          ipaddress.IPv6Network)):
        return str(value)
    return value


def _digest(value: Any) -> str:
    text = json.dumps(_plain(value), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def fingerprint(lab: Lab) -> dict[str, str]:
    """Lab-file key -> digest of its parsed value, for every value of the Lab model.

    One entry per leaf a student may edit (`caa.issuer`, `hsts.max_age`, `http3`,
    `headers.Content-Security-Policy`, ...), and `*` for the whole model, so that a value this
    table does not break out still counts."""
    flat: dict[str, str] = {}
    for field in dataclasses.fields(lab):
        if not field.compare:  # the file's name, not its content
            continue
        value = getattr(lab, field.name)
        key = _LAB_KEYS.get(field.name, field.name)
        if field.name == "hosts":
            # Web servers as the lab file lists them; the addresses and names of every host
            # follow from network.* and domain, pinned under their own keys.
            flat[key] = _digest([(h.name, h.software) for h in lab.web])
        elif field.name == "headers":
            for name, text in value:
                flat[f"headers.{name}"] = _digest(text)
        elif isinstance(value, (Profile, Target)) or not dataclasses.is_dataclass(value):
            flat[key] = _digest(value)
        else:
            for sub in dataclasses.fields(value):
                flat[f"{key}.{sub.name}"] = _digest(getattr(value, sub.name))
    flat["*"] = _digest(lab)
    return flat


def changed_keys(pinned: Mapping[str, str], lab: Lab) -> list[str]:
    """The lab-file keys whose value differs from the pinned one (added or removed keys count)."""
    now = fingerprint(lab)
    keys = sorted(k for k in set(pinned) | set(now) if k != "*" and pinned.get(k) != now.get(k))
    if not keys and pinned.get("*") != now.get("*"):
        return ["*"]
    return keys


def key_names(keys: list[str], lab: Lab) -> list[str]:
    """Keys as the person editing the file writes them: a class student's lab keys live under
    `lab:` in the class file, except those the class sets itself."""
    if lab.entry_key is None:  # not a class student's lab
        return ["the lab as a whole" if k == "*" else k for k in keys]
    names = []
    for key in keys:
        name = ("the lab as a whole" if key == "*" else _CLASS_KEYS.get(key) or f"lab.{key}")
        if name not in names:
            names.append(name)
    return names


def require_unchanged(pins: Mapping[str, Mapping[str, str] | None], lab: Lab, file: str) -> None:
    """Refuse (exit 2) when the lab differs from the one pinned by any exercise in pins
    (exercise id -> pinned fingerprint): grading would otherwise follow the edited file."""
    for exercise_id, pinned in pins.items():
        if not pinned:
            raise UsageError(
                f"exercise {exercise_id} was started without a pinned lab (by an older labgen), so "
                f"it cannot be graded safely; labgen exercise solve {exercise_id} puts the lab "
                f"back, then start it again")
        keys = changed_keys(pinned, lab)
        if not keys:
            continue
        names = key_names(keys, lab)
        which = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
        one = len(names) == 1
        raise UsageError(
            f"{file} changed since exercise {exercise_id} started: {which} "
            f"{'differs' if one else 'differ'} from the lab the exercise is graded against. "
            f"Put {'it' if one else 'them'} back as {'it was' if one else 'they were'} at the "
            f"start, or end the exercise first "
            f"(labgen exercise solve {exercise_id}, or labgen up, which ends every exercise) "
            f"and then change the lab")

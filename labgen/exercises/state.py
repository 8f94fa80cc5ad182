"""Which exercises run on a lab, since when and with how many hints: build/<lab>/exercises.json.

render carries the file over to the next build, so a re-render does not forget a lesson.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

FILE = "exercises.json"


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def duration(seconds: float) -> str:
    """'6 min 12 s', '45 s', '1 h 3 min'."""
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"


def took(record: dict) -> float:
    """Seconds from the start of an ended exercise to its end."""
    return (dt.datetime.fromisoformat(record["ended"]) - dt.datetime.fromisoformat(record["started"])
            ).total_seconds()


@dataclass
class State:
    path: Path
    # id -> {"started": iso, "hints": n, "lab": {lab-file key: digest}} (the pinned lab)
    active: dict[str, dict] = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)  # ended ones: id, started, ended, hints, result

    @classmethod
    def load(cls, build: Path) -> "State":
        path = build / FILE
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(path)
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: cannot read it ({exc}); delete it to forget the exercises") from None
        return cls(path, dict(doc.get("active", {})), list(doc.get("history", [])))

    def save(self) -> None:
        tmp = self.path.with_name(f".{FILE}.tmp")
        tmp.write_text(json.dumps({"active": self.active, "history": self.history}, indent=1) + "\n",
                       encoding="utf-8")
        os.replace(tmp, self.path)

    def start(self, exercise_id: str, lab: dict[str, str]) -> None:
        """lab: the pinned lab (pin.fingerprint), which check grades against."""
        self.active[exercise_id] = {"started": now().isoformat(), "hints": 0, "lab": lab}

    def pins(self, exercise_ids=None) -> dict[str, dict[str, str] | None]:
        """Exercise id -> the lab pinned at its start (None: started by an older labgen)."""
        ids = self.active if exercise_ids is None else exercise_ids
        return {i: self.active[i].get("lab") for i in ids}

    def elapsed(self, exercise_id: str) -> float:
        return (now() - dt.datetime.fromisoformat(self.active[exercise_id]["started"])).total_seconds()

    def end(self, exercise_id: str, result: str) -> dict:
        entry = self.active.pop(exercise_id)
        entry.pop("lab", None)  # the pin matters while the exercise runs
        record = {"id": exercise_id, **entry, "ended": now().isoformat(), "result": result}
        self.history.append(record)
        return record

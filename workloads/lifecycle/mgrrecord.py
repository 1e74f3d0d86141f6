"""manager.json: what the manager alone keeps about a workload across agent restarts (its restart
count, whether the user stopped it, whether it is paused). Written atomically by the manager,
read back at adoption; a record of the wrong shape raises CorruptRecord (the count is reset)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workloads.supervisor.record import CorruptRecord

MANAGER = "manager.json"


@dataclass(frozen=True)
class ManagerRecord:
    restarts: int = 0
    stopped_by_user: bool = False
    paused: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "restarts": self.restarts,
            "stopped_by_user": self.stopped_by_user,
            "paused": self.paused,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any], path: str = MANAGER) -> ManagerRecord:
        restarts = d.get("restarts", 0)
        if isinstance(restarts, bool) or not isinstance(restarts, int) or restarts < 0:
            raise CorruptRecord(path, f"restarts: expected a count, got {restarts!r}")
        flags = {}
        for key in ("stopped_by_user", "paused"):
            value = d.get(key, False)
            if not isinstance(value, bool):
                raise CorruptRecord(path, f"{key}: expected true or false, got {value!r}")
            flags[key] = value
        return cls(restarts, flags["stopped_by_user"], flags["paused"])

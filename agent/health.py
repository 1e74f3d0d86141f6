"""What the agent knows about itself, for its self-metrics, the watchdog and the self-monitor."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class Health:
    started_wall: float = field(default_factory=time.time)
    # part name -> failures since start (every part listed from start-up, so rates start at 0)
    part_failures: dict[str, int] = field(default_factory=dict)
    shed_level: int = 0  # 0: everything; 1: slow files 4x rarer; 2: also shorter history

    def failed(self, part: str) -> None:
        self.part_failures[part] = self.part_failures.get(part, 0) + 1

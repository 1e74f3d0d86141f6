"""`pystats run/ps/logs/stop/kill/rm/inspect`. Placeholder until workloads land."""

from __future__ import annotations

from typing import Any


def register(sub: Any) -> None:
    return None

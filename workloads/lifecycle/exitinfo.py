"""How a workload's end reads to a person: one phrase, for the agent's log and the live view."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def describe_exit(status: Mapping[str, Any]) -> str:
    """ "exited with status 137, OOM-killed (error)" from a status record or a listing entry."""
    code = status.get("exit_code")
    oom = ", OOM-killed" if status.get("oom_killed") else ""
    err = f" ({status['error']})" if status.get("error") else ""
    return f"exited with status {'?' if code is None else code}{oom}{err}"

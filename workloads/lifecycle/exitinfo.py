"""How a workload's end reads to a person: one phrase, for the agent's log and the live view."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workloads.supervisor.record import RunStatus


def describe_exit(status: RunStatus | Mapping[str, Any]) -> str:
    """ "exited with status 137, OOM-killed (error)" from a run's status or a listing entry."""
    d = status.to_json() if isinstance(status, RunStatus) else status
    code, oom, error = d.get("exit_code"), d.get("oom_killed"), d.get("error")
    dropped = d.get("log_bytes_dropped")
    oom_s = ", OOM-killed" if oom else ""
    err = f" ({error})" if error else ""
    lost = f", {dropped} bytes of output lost" if dropped else ""
    return f"exited with status {'?' if code is None else code}{oom_s}{lost}{err}"

"""Ask a running agent where it works (``GET /v1/agent``); None when no agent answers."""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AgentFacts:
    """Where the running agent works (the body of ``GET /v1/agent``)."""

    root: str  # the agent's cgroup root (absolute path)
    policies_root: str  # the policy engine's root: <root>/policies
    pid: int


def agent_facts(socket_path: str, timeout: float = 2.0) -> AgentFacts | None:
    from agent.api import wire

    try:
        resp = wire.request(socket_path, "GET", "/v1/agent", timeout=timeout)
    except OSError:
        return None
    try:
        if resp.status != 200:
            return None
        d = json.loads(resp.read())
        return AgentFacts(str(d["root"]), str(d["policies_root"]), int(d["pid"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    finally:
        resp.close()

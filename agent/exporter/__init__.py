"""Prometheus exporter: /metrics from the in-memory store (see README.md in this folder)."""

from __future__ import annotations

from agent.exporter.agentinfo import AgentInfo
from agent.exporter.exporter import Exporter

__all__ = ["AgentInfo", "Exporter"]

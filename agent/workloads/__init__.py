"""Workload lifecycle: records, restart policies, re-adoption (see manager.py)."""

from agent.workloads.manager import WorkloadManager

__all__ = ["WorkloadManager"]

"""Workload lifecycle: the manager (create, start, stop, adopt, restart policies, records)."""

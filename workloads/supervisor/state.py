"""Durable JSON records: atomic writes, and corrupt records reported and set aside.

The functions live in workloads.supervisor.record beside the typed records, so the fork server
loads one module for both; this name is kept for the manager and the rest of the house.
"""

from __future__ import annotations

from workloads.supervisor.record import (
    CorruptRecord,
    fsync_dir,
    read_json,
    set_aside,
    write_json_atomic,
)

__all__ = ["CorruptRecord", "fsync_dir", "read_json", "set_aside", "write_json_atomic"]

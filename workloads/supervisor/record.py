"""The typed records between the manager and the shim, and the names of their files.

``config.json`` (ShimConfig) is written by the manager before a launch and read by the shim;
``status.json`` (RunStatus) is written by the shim (and by the manager only when the shim is gone)
and read by the manager. Both carry a format ``version``; a record without one is version 1, the
format of agents before it existed, so workloads running under an old agent are re-adopted.
A record of the wrong shape raises ``CorruptRecord`` (the manager sets it aside), never a
KeyError or TypeError somewhere later.

Every record is written to a temporary file, fsynced, renamed over the old one, and the directory
is fsynced, so a crash leaves either the old record or the new one, never half of one. (This
module holds that I/O too, so the fork server preloads one module for records, not two:
workloads.supervisor.state names the same functions for the rest of the house.)
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from dataclasses import dataclass, fields, replace
from enum import StrEnum
from typing import Any

from workloads.runtime.spec import WorkloadSpec

CONFIG = "config.json"
STATUS = "status.json"
VERSION = 2  # 1: the unversioned records of earlier agents (same fields, no log drops)


class CorruptRecord(Exception):
    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: corrupt record ({reason})")
        self.path = path
        self.reason = reason


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomic(path: str, obj: Any) -> None:
    data = json.dumps(obj, sort_keys=True, indent=1).encode() + b"\n"
    # Unique per thread too: the agent writes one record (an image's, its tags) from two
    # request threads at once, and a shared name made the second rename fail.
    tmp = f"{path}.tmp.{os.getpid()}.{threading.get_ident()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except BaseException:
        # A full disk must not leave half-written temporaries behind to fill it further.
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(os.path.dirname(path) or ".")


def read_json(path: str) -> dict[str, Any]:
    """The record at ``path``; FileNotFoundError if absent, CorruptRecord if unreadable."""
    with open(path, "rb") as f:
        raw = f.read()
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise CorruptRecord(path, f"not JSON: {e}") from None
    if not isinstance(obj, dict):
        raise CorruptRecord(path, "not a JSON object")
    return obj


def set_aside(path: str) -> str:
    """Rename a corrupt record out of the way (kept for inspection); returns its new path."""
    dest = f"{path}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    os.rename(path, dest)
    return dest


class State(StrEnum):
    """A workload's state as ``pystats ps`` shows it (the value is the wire spelling)."""

    CREATED = "created"  # launched, the shim has not yet placed it in its cgroup
    RUNNING = "running"
    EXITED = "exited"
    RESTARTING = "restarting"  # exited, a restart is pending (manager only, never on disk)
    PAUSED = "paused"  # running, its cgroup frozen (manager only, never on disk)


def _check(path: str, d: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    """``d[key]`` if it is of ``kind`` or None (bool is not an int here)."""
    value = d.get(key)
    if value is None:
        return None
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        raise CorruptRecord(path, f"{key}: expected {_names(kinds)}, got {value!r}")
    if not isinstance(value, kinds):
        raise CorruptRecord(path, f"{key}: expected {_names(kinds)}, got {value!r}")
    return value


def _names(kinds: tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in kinds)


def _version(path: str, d: dict[str, Any]) -> int:
    v = _check(path, d, "version", int)
    if v is None:
        return 1
    if not 1 <= v <= VERSION:
        raise CorruptRecord(path, f"format version {v} is not one this agent reads (1..{VERSION})")
    return int(v)


def _required(path: str, d: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = _check(path, d, key, kind)
    if value is None:
        raise CorruptRecord(path, f"{key} missing")
    return value


@dataclass(frozen=True)
class RunStatus:
    """One run of a workload as its shim records it (``status.json``)."""

    run: int
    state: State
    shim_pid: int | None = None
    shim_start: int | None = None  # start time in clock ticks: identity across PID reuse
    pid: int | None = None
    pid_start: int | None = None
    started_at: float | None = None  # wall clock, seconds since the epoch
    finished_at: float | None = None
    exit_code: int | None = None
    signal: int | None = None
    oom_killed: bool = False
    error: str | None = None
    log_bytes_dropped: int = 0  # output the log writer could not store (disk full, I/O error)
    # When the command's exec succeeded (the runtime's error pipe closed on exec): until then a
    # "running" workload is still being set up, and may yet end as 126/127 without running.
    exec_at: float | None = None
    version: int = VERSION

    def to_json(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["state"] = self.state.value
        d["version"] = VERSION
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any], path: str = STATUS) -> RunStatus:
        version = _version(path, d)
        raw_state = _required(path, d, "state", str)
        try:
            st = State(raw_state)
        except ValueError:
            raise CorruptRecord(path, f"state: unknown {raw_state!r}") from None
        num = (int, float)
        return cls(
            run=_required(path, d, "run", int),
            state=st,
            shim_pid=_check(path, d, "shim_pid", int),
            shim_start=_check(path, d, "shim_start", int),
            pid=_check(path, d, "pid", int),
            pid_start=_check(path, d, "pid_start", int),
            started_at=_float(_check(path, d, "started_at", num)),
            finished_at=_float(_check(path, d, "finished_at", num)),
            exit_code=_check(path, d, "exit_code", int),
            signal=_check(path, d, "signal", int),
            oom_killed=bool(_check(path, d, "oom_killed", bool)),
            error=_check(path, d, "error", str),
            log_bytes_dropped=_check(path, d, "log_bytes_dropped", int) or 0,
            exec_at=_float(_check(path, d, "exec_at", num)),
            version=version,
        )

    def but(self, **changes: Any) -> RunStatus:
        """A copy with ``changes`` (the record is frozen: every update is a new record)."""
        return replace(self, **changes)


def _float(v: int | float | None) -> float | None:
    return None if v is None else float(v)


@dataclass(frozen=True)
class ShimConfig:
    """What the shim needs to launch one workload (``config.json``, written by the manager)."""

    spec: WorkloadSpec
    root: str  # the agent's cgroup root (absolute path of the cgroup2 directory)
    created_at: float
    log_max_bytes: int
    log_keep: int
    version: int = VERSION

    def to_json(self) -> dict[str, Any]:
        return {
            "spec": self.spec.to_json(),
            "root": self.root,
            "created_at": self.created_at,
            "log_max_bytes": self.log_max_bytes,
            "log_keep": self.log_keep,
            "version": VERSION,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any], path: str = CONFIG) -> ShimConfig:
        version = _version(path, d)
        spec = d.get("spec")
        if not isinstance(spec, dict):
            raise CorruptRecord(path, "spec: expected an object")
        try:
            parsed = WorkloadSpec.from_json(spec)
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise CorruptRecord(path, f"spec: {e!r}") from None
        log_max = _required(path, d, "log_max_bytes", int)
        if log_max < 1:
            raise CorruptRecord(path, f"log_max_bytes: must be positive, got {log_max}")
        return cls(
            spec=parsed,
            root=_required(path, d, "root", str),
            created_at=float(_required(path, d, "created_at", (int, float))),
            log_max_bytes=log_max,
            log_keep=_required(path, d, "log_keep", int),
            version=version,
        )

"""Durable events: OOM kills with their victims, workload starts/exits/restarts, placements,
agent starts and stops. One record per event in the ``events`` segment stream."""

from __future__ import annotations

import marshal
from dataclasses import astuple, dataclass

import zstandard

from collectors.recorder.format import FormatError
from collectors.sample import OomEvent

KINDS = ("oom", "start", "exit", "restart", "placement", "agent_start", "agent_stop")
_Z = zstandard.ZstdCompressor(level=3)
_DZ = zstandard.ZstdDecompressor()


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    wall: float
    kind: str  # one of KINDS
    cgroup: str = ""  # as the store names it (relative to the collect root); "" for none/root
    workload: str | None = None
    pid: int | None = None  # OOM victim, placed process
    comm: str | None = None
    count: int = 1  # OOM kills this event stands for
    total: int | None = None  # the cgroup's oom_kill counter after it, as the kernel said
    text: str = ""


def from_oom(ev: OomEvent, workload: str | None = None) -> RecordedEvent:
    return RecordedEvent(
        ev.wall, "oom", ev.cgroup, workload, ev.pid, ev.comm, ev.count, ev.total, ev.what()
    )


def encode_event(ev: RecordedEvent) -> bytes:
    return _Z.compress(marshal.dumps(astuple(ev)))


def decode_event(frame: bytes) -> RecordedEvent:
    try:
        fields = marshal.loads(_DZ.decompress(frame))
        return RecordedEvent(*fields)
    except (zstandard.ZstdError, ValueError, EOFError, TypeError) as e:
        raise FormatError(f"undecodable event: {e}") from None

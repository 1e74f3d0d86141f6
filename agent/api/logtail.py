"""``GET /v1/workloads/NAME/logs``: a workload's log records as the client asked for them.

``mux=1`` sends docker's multiplexed stream (agent.api.logframes), so the client keeps stdout
and stderr apart; without it the output comes merged, as raw bytes (an attached ``run``).
``timestamps=1`` puts each line's RFC3339Nano time before it, as ``docker logs -t``.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.api.logframes import STDERR_ID, STDOUT_ID, frame
from workloads.supervisor.logread import STDERR, STDOUT, Record, in_window
from workloads.supervisor.logs import format_time

STREAM_IDS = {STDOUT: STDOUT_ID, STDERR: STDERR_ID}


@dataclass(frozen=True)
class LogQuery:
    follow: bool = False
    tail: int | None = None  # the last N lines only; None: everything
    since_ns: int | None = None
    until_ns: int | None = None
    timestamps: bool = False
    mux: bool = False


class Renderer:
    """Records to the bytes sent; remembers per stream whether a line is open (a P record), so
    a timestamp goes only before the start of a line."""

    def __init__(self, q: LogQuery) -> None:
        self.q = q
        self._open = {STDOUT: False, STDERR: False}
        self.past_until = False  # a record after --until was met: nothing more to send

    def render(self, records: list[Record]) -> bytes:
        out: list[bytes] = []
        q = self.q
        for rec in records:
            if q.until_ns is not None and rec.ns is not None and rec.ns > q.until_ns:
                self.past_until = True
                break
            if not in_window(rec, q.since_ns, q.until_ns):
                continue
            data = rec.data
            if q.timestamps and rec.ns is not None and not self._open[rec.stream]:
                data = format_time(rec.ns) + b" " + data
            self._open[rec.stream] = not rec.ends_line
            out.append(frame(STREAM_IDS[rec.stream], data) if q.mux else data)
        return b"".join(out)

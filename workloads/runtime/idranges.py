"""Which host ids are already someone's: accounts, groups and subordinate ranges.

A --userns workload's ids BASE..BASE+65535 must belong to nobody else. If they overlap a real
account, files of that account are the workload root's; if they overlap a range in /etc/subuid or
/etc/subgid, that user's rootless containers (podman, rootless docker) share ids with it and can
signal or trace each other's processes. runc and docker leave this to the operator; we check it
at `pystats run` time, from the same files shadow-utils writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

# (path, kind): kind "account" lines are name:x:ID:..., kind "range" lines are name:start:count.
ID_FILES = (
    ("/etc/passwd", "account"),
    ("/etc/group", "account"),
    ("/etc/subuid", "range"),
    ("/etc/subgid", "range"),
)


@dataclass(frozen=True, slots=True)
class Taken:
    """Host ids first..last (inclusive) used by ``owner``, as line ``line`` of ``path`` says."""

    path: str
    line: int
    owner: str
    first: int
    last: int

    def describe(self) -> str:
        ids = str(self.first) if self.first == self.last else f"{self.first}..{self.last}"
        what = "id" if self.first == self.last else "ids"
        return f"{what} {ids} of {self.owner!r} ({self.path}:{self.line})"


def _entries(path: str, kind: str) -> Iterator[Taken]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return
    for n, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split(":")
        try:
            if kind == "account":
                first = last = int(fields[2])
            else:
                first = int(fields[1])
                last = first + int(fields[2]) - 1
        except (IndexError, ValueError):
            continue  # not ours to judge; shadow-utils' own tools report malformed lines
        if last >= first:
            yield Taken(path, n, fields[0], first, last)


def taken(files: tuple[tuple[str, str], ...] | None = None) -> list[Taken]:
    """Every id or range in use, in file order (a file that is missing holds none)."""
    return [
        t for path, kind in (ID_FILES if files is None else files) for t in _entries(path, kind)
    ]


def overlaps(first: int, last: int, used: list[Taken]) -> list[Taken]:
    return [t for t in used if t.first <= last and first <= t.last]


def free_base(size: int, used: list[Taken], at_least: int, align: int = 65_536) -> int:
    """The lowest ``align``-aligned base >= ``at_least`` whose ``size`` ids nobody uses."""
    base = -(-at_least // align) * align
    while clash := overlaps(base, base + size - 1, used):
        top = max(t.last for t in clash) + 1
        base = -(-top // align) * align
    return base

"""--userns=auto: a distinct 65,536-id range per workload (podman's --userns=auto), durably.

The allocations live in ``<state>/userns-auto.json`` ({"version": 1, "size": 65536, "ranges":
{name: base}}), rewritten atomically (temporary file, fsync, rename, fsync of the directory)
while an exclusive flock is held on ``<state>/userns-auto.lock``: two processes allocating at
once get distinct ranges, and a crash leaves the old file or the new one. The lock is a file of
its own because each atomic write replaces the data file's inode.

Where ranges come from: 65,536-aligned ranges in host ids 0x70000000..0x7FFDFFFF (4094 ranges),
the span systemd's UIDS-GIDS.md leaves unused: above systemd-nspawn's container ranges
(524288..1879048191), below 2^31 (tools that keep ids in a signed int) and below systemd's
foreign range (0x7FFE0000). Each candidate is also checked, as a fixed --userns-base is, against
/etc/passwd, /etc/group, /etc/subuid and /etc/subgid (workloads.runtime.idranges), and against
the fixed ranges of this agent's other --userns workloads.

The workloads' own records (config.json holds the base each was given) are the truth: at start
the manager reconciles the file with them (reconcile()), which drops ranges of workloads that no
longer exist (a crash between create and record, or a record set aside as corrupt) and rebuilds
a corrupt file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TypeGuard

from workloads.runtime import idranges
from workloads.runtime.spec import USERNS_SIZE, SpecError, WorkloadSpec, check_userns_range
from workloads.supervisor import state

ALLOC_FILE = "userns-auto.json"
LOCK_FILE = "userns-auto.lock"
VERSION = 1
POOL_FIRST = 0x7000_0000  # 1879048192
POOL_END = 0x7FFE_0000  # exclusive: 2147352576, where systemd's foreign range begins


class IdAllocError(SpecError):
    """No range can be given (pool exhausted, unreadable allocation file); shown as is."""


@dataclass(frozen=True, slots=True)
class Allocation:
    name: str
    base: int
    size: int = USERNS_SIZE

    @property
    def last(self) -> int:
        return self.base + self.size - 1


class IdAllocator:
    """The allocation file of one agent's state directory."""

    def __init__(
        self,
        state_dir: str,
        *,
        first: int = POOL_FIRST,
        end: int = POOL_END,
        size: int = USERNS_SIZE,
        id_files: tuple[tuple[str, str], ...] | None = None,
    ) -> None:
        self.path = os.path.join(state_dir, ALLOC_FILE)
        self.lock_path = os.path.join(state_dir, LOCK_FILE)
        self.first, self.end, self.size = first, end, size
        self.id_files = id_files  # None: the host's (idranges.ID_FILES)

    # ---- the file, under the lock ------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _read(self) -> dict[str, int]:
        try:
            doc = state.read_json(self.path)
        except FileNotFoundError:
            return {}
        except state.CorruptRecord as e:
            raise IdAllocError(
                f"--userns=auto: {e}; the agent rebuilds it from the workload records at start"
            ) from None
        ranges = doc.get("ranges")
        if doc.get("version") != VERSION or doc.get("size") != self.size or not _is_ranges(ranges):
            raise IdAllocError(
                f"--userns=auto: {self.path} is not a version {VERSION} allocation file of "
                f"{self.size}-id ranges; the agent rebuilds it from the workload records at start"
            )
        return dict(ranges)

    def _write(self, ranges: Mapping[str, int]) -> None:
        state.write_json_atomic(
            self.path,
            {"version": VERSION, "size": self.size, "ranges": dict(sorted(ranges.items()))},
        )

    # ---- operations ------------------------------------------------------------------------

    def allocations(self) -> list[Allocation]:
        with self._locked():
            ranges = self._read()
        return [Allocation(n, b, self.size) for n, b in sorted(ranges.items(), key=lambda i: i[1])]

    def allocate(self, name: str, exclude: Iterable[tuple[int, int]] = ()) -> int:
        """The base of ``name``'s range: the one it holds already, or the lowest free one.
        ``exclude``: more (first, last) host-id spans in use (fixed --userns-base ranges)."""
        with self._locked():
            ranges = self._read()
            if name in ranges:
                return ranges[name]
            used = idranges.taken(self.id_files)
            used += [
                idranges.Taken(self.path, 0, n, b, b + self.size - 1) for n, b in ranges.items()
            ]
            used += [idranges.Taken("--userns-base", 0, "a workload", f, t) for f, t in exclude]
            base = idranges.free_base(self.size, used, at_least=self.first, align=self.size)
            if base + self.size > self.end:
                raise IdAllocError(
                    f"--userns=auto: no free range of {self.size} host ids left in "
                    f"{self.first}..{self.end - 1} ({len(ranges)} workloads hold one): "
                    "remove workloads, or give one a fixed --userns-base"
                )
            ranges[name] = base
            self._write(ranges)
            return base

    def release(self, name: str) -> bool:
        """Give ``name``'s range back; False when it held none."""
        with self._locked():
            try:
                ranges = self._read()
            except IdAllocError:
                return False  # rebuilt at the next start, from the records that remain
            if ranges.pop(name, None) is None:
                return False
            self._write(ranges)
            return True

    def reconcile(self, held: Mapping[str, int]) -> list[str]:
        """Make the file say exactly ``held`` ({name: base} of the workloads recorded with
        --userns=auto). Returns what changed, for the log."""
        with self._locked():
            try:
                ranges = self._read()
                notes: list[str] = []
            except IdAllocError as e:
                ranges, notes = {}, [f"{e} (rebuilt)"]
            notes += [
                f"released the range of {n} (base {b}): no such workload"
                for n, b in ranges.items()
                if n not in held
            ]
            notes += [f"recorded the range of {n} (base {b})"
                      for n, b in held.items() if ranges.get(n) != b]  # fmt: skip
            if notes:
                self._write(held)
            return notes

    def holder(self, first: int, last: int) -> Allocation | None:
        """The auto range overlapping host ids first..last, if any."""
        for a in self.allocations():
            if a.base <= last and first <= a.last:
                return a
        return None


def _is_ranges(obj: object) -> TypeGuard[dict[str, int]]:
    return isinstance(obj, dict) and all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
        for k, v in obj.items()
    )


def assign(alloc: IdAllocator, spec: WorkloadSpec, others: Iterable[WorkloadSpec]) -> WorkloadSpec:
    """The spec to record and launch. --userns=auto: its base is allocated (and released again if
    the range does not suit the spec). A fixed --userns-base may not overlap an auto range."""
    if not spec.userns:
        return spec
    if not spec.userns_auto:
        last = spec.userns_base + USERNS_SIZE - 1
        clash = alloc.holder(spec.userns_base, last)
        if clash is not None and clash.name != spec.name:
            raise IdAllocError(
                f"--userns-base {spec.userns_base}: host ids {clash.base}..{clash.last} are "
                f"workload {clash.name!r}'s (--userns=auto); choose another base or --userns=auto"
            )
        return spec
    fixed = [
        (o.userns_base, o.userns_base + USERNS_SIZE - 1)
        for o in others
        if o.userns and not o.userns_auto and o.name != spec.name
    ]
    base = alloc.allocate(spec.name, exclude=fixed)
    assigned = dataclasses.replace(spec, userns_base=base)
    try:
        check_userns_range(assigned)
    except SpecError:
        alloc.release(spec.name)
        raise
    return assigned


def held_ranges(specs: Iterable[WorkloadSpec]) -> dict[str, int]:
    """{name: base} of the workloads recorded with --userns=auto (for reconcile)."""
    return {s.name: s.userns_base for s in specs if s.userns and s.userns_auto}

"""Discovery of the cgroups to sample, each tick: depth limit, include/exclude globs, and what
appeared or vanished since the last scan, by (path, inode) from the directory walk alone.

Globs match the path relative to the collector's root ("" is the root itself) with fnmatch
rules, where ``*`` also crosses "/". A cgroup is sampled when it matches no exclude glob and,
if include globs are given, at least one of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

Walk = Callable[[], Iterable[tuple[str, int]]]


@dataclass(slots=True)
class TreeDiff:
    current: list[tuple[str, int]]  # (rel, inode) in walk order: parents before children
    new: list[tuple[str, int]] = field(default_factory=list)  # first seen, or a new inode
    vanished: list[tuple[str, int]] = field(default_factory=list)  # gone, or replaced


class Tree:
    def __init__(
        self, walk: Walk, include: Sequence[str] = (), exclude: Sequence[str] = ()
    ) -> None:
        self._walk = walk
        self._include = tuple(include)
        self._exclude = tuple(exclude)
        self._wanted: dict[str, bool] = {}  # glob verdict per path, cached (paths repeat)
        self._known: dict[str, int] = {}

    def wanted(self, rel: str) -> bool:
        w = self._wanted.get(rel)
        if w is None:
            w = not any(fnmatchcase(rel, g) for g in self._exclude) and (
                not self._include or any(fnmatchcase(rel, g) for g in self._include)
            )
            if len(self._wanted) > 200_000:  # churn of unique names: don't grow forever
                self._wanted.clear()
            self._wanted[rel] = w
        return w

    def _filtered(self) -> Iterator[tuple[str, int]]:
        if not self._include and not self._exclude:
            yield from self._walk()
            return
        wanted = self.wanted
        for rel, ino in self._walk():
            if wanted(rel):
                yield rel, ino

    def scan(self) -> TreeDiff:
        old = self._known
        cur = list(self._filtered())
        known = dict(cur)
        diff = TreeDiff(cur)
        for rel, ino in cur:
            prev = old.get(rel)
            if prev != ino:
                if prev is not None:
                    diff.vanished.append((rel, prev))
                diff.new.append((rel, ino))
        if len(known) != len(old) or diff.new:
            diff.vanished.extend((rel, ino) for rel, ino in old.items() if rel not in known)
        self._known = known
        return diff

    @property
    def known(self) -> dict[str, int]:
        return self._known

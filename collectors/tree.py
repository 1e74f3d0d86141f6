"""Discovery of the cgroups to sample, each tick: depth limit, include/exclude globs, and what
appeared or vanished since the last scan, by (path, inode).

Listing a cgroup directory costs ~22 us in the kernel (measured: about as much as reading all
of its cheap files), so with ``watch_dirs`` the tree walks once and then follows inotify
IN_CREATE / IN_DELETE / IN_MOVED_* on every cgroup directory: a quiet tick costs one read()
that answers EAGAIN, and a created cgroup walks only its own subtree. A full walk still runs
every ``rescan_every`` scans (and after an inotify queue overflow or when watches cannot be
added), so a missed event heals. Without inotify, every scan is a full walk.

Globs match the path relative to the collector's root ("" is the root itself) with fnmatch
rules, where ``*`` also crosses "/". A cgroup is sampled when it matches no exclude glob and,
if include globs are given, at least one of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from cgroupfs.errors import CgroupError
from collectors.watch import (
    IN_CREATE,
    IN_DELETE,
    IN_IGNORED,
    IN_ISDIR,
    IN_MOVED_FROM,
    IN_MOVED_TO,
    IN_ONLYDIR,
    IN_Q_OVERFLOW,
    Inotify,
)

# walk(start, max_depth) -> (rel, inode) of start and below it, parents first, depth relative
# to start; nothing when start does not exist.
WalkFrom = Callable[[str, int | None], Iterable[tuple[str, int]]]
DIR_MASK = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ONLYDIR


@dataclass(slots=True)
class TreeDiff:
    current: list[tuple[str, int]]  # (rel, inode); parents before children after a full walk
    new: list[tuple[str, int]] = field(default_factory=list)  # first seen, or a new inode
    vanished: list[tuple[str, int]] = field(default_factory=list)  # gone, or replaced


def _depth(rel: str) -> int:
    return 0 if rel == "" else rel.count("/") + 1


class Tree:
    def __init__(
        self,
        walk: WalkFrom,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        *,
        max_depth: int | None = None,
        resolve: Callable[[str], str] | None = None,
        watch_dirs: bool = False,
        rescan_every: int = 60,
    ) -> None:
        """``resolve(rel) -> absolute dir``: needed with ``watch_dirs``."""
        self._walk = walk
        self._include = tuple(include)
        self._exclude = tuple(exclude)
        self.max_depth = max_depth
        self._resolve = resolve
        self.rescan_every = max(1, rescan_every)
        self._wanted: dict[str, bool] = {}  # glob verdict per path, cached (paths repeat)
        self._all: dict[str, int] = {}  # every cgroup walked (wanted or not): rel -> inode
        self._known: dict[str, int] = {}  # the wanted ones
        self._current: list[tuple[str, int]] = []
        self._since_full = 0
        self._full_needed = True
        self._ino: Inotify | None = None
        self._wd: dict[int, str] = {}
        self._watched: dict[str, int] = {}  # rel -> inode with a watch (re-adding costs ~100 us)
        self.watch_reason = ""
        if watch_dirs and resolve is not None:
            ino = Inotify()
            if ino.fd >= 0:
                self._ino = ino
            else:
                self.watch_reason = ino.reason
        self.full_walks = 0

    @property
    def watching(self) -> bool:
        return self._ino is not None

    def wanted(self, rel: str) -> bool:
        if not self._include and not self._exclude:
            return True
        w = self._wanted.get(rel)
        if w is None:
            w = not any(fnmatchcase(rel, g) for g in self._exclude) and (
                not self._include or any(fnmatchcase(rel, g) for g in self._include)
            )
            if len(self._wanted) > 200_000:  # churn of unique names: don't grow forever
                self._wanted.clear()
            self._wanted[rel] = w
        return w

    def _watch(self, rel: str, inode: int) -> None:
        ino, resolve = self._ino, self._resolve
        if ino is None or resolve is None or self._watched.get(rel) == inode:
            return
        if self.max_depth is not None and _depth(rel) >= self.max_depth:
            return  # its children are beyond the limit
        wd, err = ino.add(resolve(rel), DIR_MASK)
        if wd >= 0:
            self._wd[wd] = rel
            self._watched[rel] = inode
        elif err not in (2, 20):  # ENOENT/ENOTDIR: gone already; else (ENOSPC): stop watching
            self.watch_reason = f"inotify_add_watch: errno {err}"
            self._stop_watching()

    def _stop_watching(self) -> None:
        if self._ino is not None:
            self._ino.close()
        self._ino = None
        self._wd.clear()
        self._watched.clear()

    def _walk_from(self, start: str) -> Iterable[tuple[str, int]]:
        md = self.max_depth
        if md is not None:
            md -= _depth(start)
            if md < 0:
                return
        try:
            for rel, inode in self._walk(start, md):
                self._watch(
                    rel, inode
                )  # before its listing (the walk lists a directory after yielding)
                yield rel, inode
        except (CgroupError, OSError):  # a name the walk refuses, or a racing removal
            return

    def scan(self) -> TreeDiff:
        self._since_full += 1
        if self._ino is None or self._full_needed or self._since_full >= self.rescan_every:
            return self._full()
        changed = False
        diff = TreeDiff(self._current)
        for wd, mask, name in self._ino.read():
            if mask & IN_Q_OVERFLOW:
                return self._full()
            parent = self._wd.get(wd)
            if parent is None:
                continue
            if mask & IN_IGNORED:
                del self._wd[wd]
                self._watched.pop(parent, None)
                continue
            if not mask & IN_ISDIR or not name:
                continue
            child = name.decode(errors="surrogateescape")
            rel = f"{parent}/{child}" if parent else child
            if mask & (IN_DELETE | IN_MOVED_FROM):
                changed |= self._drop(rel, diff, subtree=bool(mask & IN_MOVED_FROM))
            else:
                for r, i in self._walk_from(rel):
                    old = self._all.get(r)
                    if old == i:
                        continue
                    if old is not None:
                        self._drop(r, diff, subtree=False)
                    self._all[r] = i
                    if self.wanted(r):
                        self._known[r] = i
                        diff.new.append((r, i))
                    changed = True
        if changed:
            self._current = list(self._known.items())
            diff.current = self._current
        if self._ino is None:  # watching failed part way: a full walk next time
            self._full_needed = True
        return diff

    def _drop(self, rel: str, diff: TreeDiff, *, subtree: bool) -> bool:
        rels = [rel]
        if subtree:  # a moved directory takes its children along (rmdir needs none left)
            pre = rel + "/"
            rels += [r for r in self._all if r.startswith(pre)]
        hit = False
        for r in rels:
            ino = self._all.pop(r, None)
            if ino is None:
                continue
            hit = True
            if self._known.pop(r, None) is not None:
                diff.vanished.append((r, ino))
        return hit

    def _full(self) -> TreeDiff:
        self.full_walks += 1
        self._since_full = 0
        self._full_needed = False
        if self._ino is not None:
            self._ino.read()  # events up to now are covered by this walk
        old = self._known
        all_ = dict(self._walk_from(""))
        known = {r: i for r, i in all_.items() if self.wanted(r)}
        cur = list(known.items())
        diff = TreeDiff(cur)
        for rel, ino in cur:
            prev = old.get(rel)
            if prev != ino:
                if prev is not None:
                    diff.vanished.append((rel, prev))
                diff.new.append((rel, ino))
        if len(known) != len(old) or diff.new:
            diff.vanished.extend((rel, ino) for rel, ino in old.items() if rel not in known)
        self._all, self._known, self._current = all_, known, cur
        return diff

    @property
    def known(self) -> dict[str, int]:
        return self._known

    def close(self) -> None:
        self._stop_watching()

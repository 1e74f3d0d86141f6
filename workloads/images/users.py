"""An image's User ("name", "uid", "name:group", "uid:gid") resolved against its own
/etc/passwd and /etc/group, read from its layers (the topmost layer that has the file; a
whiteout there means the file is gone), as docker resolves it in the container's rootfs."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from workloads.images.errors import ImageError


@dataclass(frozen=True)
class Ids:
    uid: int
    gid: int
    groups: tuple[int, ...]


def _read(layer_dirs: list[str], rel: str) -> list[list[str]]:
    for d in layer_dirs:  # top first
        path = os.path.join(d, rel)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        if stat.S_ISCHR(st.st_mode) or not stat.S_ISREG(st.st_mode):
            return []  # a whiteout (or something odd): no such file in the image
        with open(path, encoding="utf-8", errors="replace") as f:
            return [line.rstrip("\n").split(":") for line in f if line.strip()]
    return []


def resolve(layer_dirs: list[str], user: str) -> Ids:
    name, _, group = user.partition(":")
    passwd = [p for p in _read(layer_dirs, "etc/passwd") if len(p) >= 4]
    groups = [g for g in _read(layer_dirs, "etc/group") if len(g) >= 3]
    entry = next((p for p in passwd if p[0] == name), None)
    if name.isdigit():
        uid = int(name)
        entry = entry or next((p for p in passwd if p[2] == name), None)
    elif entry is None:
        raise ImageError(f"user {name!r} is not in the image's /etc/passwd")
    else:
        uid = int(entry[2])
    gid = int(entry[3]) if entry is not None and entry[3].isdigit() else 0  # runc: 0
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            g = next((g for g in groups if g[0] == group), None)
            if g is None:
                raise ImageError(f"group {group!r} is not in the image's /etc/group")
            gid = int(g[2])
    extra: tuple[int, ...] = ()
    if entry is not None and not group:
        extra = tuple(
            int(g[2])
            for g in groups
            if g[2].isdigit() and len(g) > 3 and entry[0] in g[3].split(",")
        )
    if not (0 <= uid < 2**32 - 1 and 0 <= gid < 2**32 - 1):
        raise ImageError(f"user {user!r}: ids out of range")
    return Ids(uid=uid, gid=gid, groups=tuple(sorted({gid, *extra})))

"""The user a workload runs as: ``-u USER[:GROUP]`` and ``--group-add``, as docker reads them.

Names are looked up in the workload's own /etc/passwd and /etc/group (an image's layers, a
--rootfs, or the host's when it runs on the host's /); numeric ids need no entry. A numeric
user with no entry gets gid 0, as runc gives. Resolved once, at create time: the runtime only
sets the ids (workloads.runtime.init).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import Any

from workloads.runtime.errors import SpecError

MAX_ID = 2**32 - 2  # (uid_t)-1 means "no id" to the kernel


@dataclass(frozen=True)
class Ids:
    uid: int
    gid: int
    groups: tuple[int, ...]  # supplementary groups, the primary one included


@dataclass(frozen=True)
class RunUser:
    """-u and --group-add of a workload without an image (with one, ImageSpec has the user)."""

    user: str | None = None  # as given; None: root
    uid: int | None = None
    gid: int | None = None
    groups: tuple[int, ...] = ()  # the user's own groups
    group_add: tuple[str, ...] = ()  # as given
    extra_groups: tuple[int, ...] = ()  # --group-add resolved

    def to_json(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "uid": self.uid,
            "gid": self.gid,
            "groups": list(self.groups),
            "group_add": list(self.group_add),
            "extra_groups": list(self.extra_groups),
        }

    @classmethod
    def from_json(cls, d: object) -> RunUser | None:
        if d is None:
            return None
        if not isinstance(d, dict):
            raise SpecError("user must be an object")
        try:
            return cls(
                user=None if d.get("user") is None else str(d["user"]),
                uid=None if d.get("uid") is None else int(d["uid"]),
                gid=None if d.get("gid") is None else int(d["gid"]),
                groups=tuple(int(g) for g in d.get("groups") or ()),
                group_add=tuple(str(g) for g in d.get("group_add") or ()),
                extra_groups=tuple(int(g) for g in d.get("extra_groups") or ()),
            )
        except (TypeError, ValueError) as e:
            raise SpecError(f"malformed user record: {e}") from None


def read_db(dirs: list[str], rel: str) -> list[list[str]]:
    """The lines of ``rel`` (etc/passwd, etc/group) split at ':', from the first of ``dirs``
    (top layer first) that has it. A whiteout or anything but a regular file there (a symlink
    out of the rootfs, too) means no such file."""
    for d in dirs:
        path = os.path.join(d, rel)
        try:
            st = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            continue
        if not stat.S_ISREG(st.st_mode):
            return []
        with open(path, encoding="utf-8", errors="replace") as f:
            return [line.rstrip("\n").split(":") for line in f if line.strip()]
    return []


def _gid_of(groups: list[list[str]], group: str, where: str) -> int:
    if group.isdigit():
        return _checked(int(group), group)
    g = next((g for g in groups if g[0] == group and g[2].isdigit()), None)
    if g is None:
        raise SpecError(f"group {group!r} is not in {where} /etc/group")
    return int(g[2])


def _checked(n: int, text: str) -> int:
    if not 0 <= n <= MAX_ID:
        raise SpecError(f"id {text!r} is out of range (0 to {MAX_ID})")
    return n


def resolve(dirs: list[str], user: str, where: str) -> Ids:
    """``user`` (name, uid, name:group, uid:gid) in the files of ``dirs``; ``where`` names
    them in errors ("the image's")."""
    name, _, group = user.partition(":")
    if not name:
        raise SpecError(f"invalid user {user!r}: expected USER[:GROUP]")
    passwd = [p for p in read_db(dirs, "etc/passwd") if len(p) >= 4]
    groups = [g for g in read_db(dirs, "etc/group") if len(g) >= 3]
    entry = next((p for p in passwd if p[0] == name), None)
    if name.isdigit():
        uid = _checked(int(name), name)
        entry = entry or next((p for p in passwd if p[2] == name), None)
    elif entry is None:
        raise SpecError(f"user {name!r} is not in {where} /etc/passwd")
    else:
        uid = _checked(int(entry[2]), entry[2]) if entry[2].isdigit() else 0
    gid = int(entry[3]) if entry is not None and entry[3].isdigit() else 0  # runc: 0
    if group:
        gid = _gid_of(groups, group, where)
    extra: tuple[int, ...] = ()
    if entry is not None and not group:
        extra = tuple(
            int(g[2])
            for g in groups
            if g[2].isdigit() and len(g) > 3 and entry[0] in g[3].split(",")
        )
    return Ids(uid=uid, gid=_checked(gid, str(gid)), groups=tuple(sorted({gid, *extra})))


def group_ids(dirs: list[str], names: tuple[str, ...], where: str) -> tuple[int, ...]:
    """--group-add: group names or gids, as gids."""
    if not names:
        return ()
    groups = [g for g in read_db(dirs, "etc/group") if len(g) >= 3]
    return tuple(sorted({_gid_of(groups, n, where) for n in names}))


def run_user(rootfs: str | None, user: str | None, group_add: tuple[str, ...]) -> RunUser | None:
    """-u and --group-add of a workload without an image, resolved in its rootfs (or /)."""
    if not user and not group_add:
        return None
    dirs = [rootfs or "/"]
    where = "the rootfs's" if rootfs else "the host's"
    ids = resolve(dirs, user, where) if user else None
    return RunUser(
        user=user or None,
        uid=None if ids is None else ids.uid,
        gid=None if ids is None else ids.gid,
        groups=() if ids is None else ids.groups,
        group_add=group_add,
        extra_groups=group_ids(dirs, group_add, where),
    )


def from_body(body: dict[str, Any]) -> RunUser | None:
    """The create request's ``user`` and ``group_add``. With an image its User is resolved in
    its layers later (workloads.images.run), --group-add's names too; without one, here."""
    user, group_add = body.get("user"), body.get("group_add") or []
    if user is not None and not isinstance(user, str):
        raise SpecError("user must be a string")
    if not isinstance(group_add, list) or not all(isinstance(g, str) and g for g in group_add):
        raise SpecError("group_add must be a list of group names or gids")
    if body.get("image") is not None:
        return RunUser(group_add=tuple(group_add)) if group_add else None
    rootfs = body.get("rootfs")
    return run_user(rootfs if isinstance(rootfs, str) else None, user or None, tuple(group_add))

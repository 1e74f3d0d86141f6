"""An image's User ("name", "uid", "name:group", "uid:gid") resolved against its own
/etc/passwd and /etc/group, read from its layers (the topmost layer that has the file; a
whiteout there means the file is gone), as docker resolves it in the container's rootfs.
The rules are workloads.runtime.runuser's, shared with -u for a workload without an image."""

from __future__ import annotations

from workloads.images.errors import ImageError
from workloads.runtime import runuser
from workloads.runtime.errors import SpecError
from workloads.runtime.runuser import Ids

__all__ = ["Ids", "group_ids", "resolve"]


def resolve(layer_dirs: list[str], user: str) -> Ids:
    try:
        return runuser.resolve(layer_dirs, user, "the image's")
    except SpecError as e:
        raise ImageError(str(e)) from None


def group_ids(layer_dirs: list[str], names: tuple[str, ...]) -> tuple[int, ...]:
    """--group-add names or gids, looked up in the image's /etc/group."""
    try:
        return runuser.group_ids(layer_dirs, names, "the image's")
    except SpecError as e:
        raise ImageError(str(e)) from None

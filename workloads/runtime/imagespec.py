"""The image part of a workload's spec: which image it runs and where its snapshot is.

Filled in by the manager from the image store (workloads.images); the runtime reads only
``uid``/``gid`` (the image's User, resolved at create time) to drop to that user before exec.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from workloads.runtime.errors import SpecError


@dataclass(frozen=True)
class ImageSpec:
    ref: str  # as the user named it (a name, or an id)
    id: str  # the config digest
    digest: str | None = None  # the manifest digest (None for a docker-save load)
    layers: tuple[str, ...] = ()  # unpacked layer directories, top first
    snapshot: str = ""  # the snapshot's directory (rootfs, upper, work, init)
    owner: str = "image"  # "image", or "chown" (--userns: owners shifted into the range)
    user: str | None = None
    uid: int | None = None
    gid: int | None = None
    groups: tuple[int, ...] = ()
    stop_signal: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: object) -> ImageSpec | None:
        """None for a record without an image (every record older than images)."""
        if d is None:
            return None
        if not isinstance(d, dict):
            raise SpecError("image must be an object")
        try:
            return cls(
                ref=str(d["ref"]),
                id=str(d["id"]),
                digest=None if d.get("digest") is None else str(d["digest"]),
                layers=tuple(str(x) for x in d.get("layers") or ()),
                snapshot=str(d.get("snapshot", "")),
                owner=str(d.get("owner", "image")),
                user=None if d.get("user") is None else str(d["user"]),
                uid=None if d.get("uid") is None else int(d["uid"]),
                gid=None if d.get("gid") is None else int(d["gid"]),
                groups=tuple(int(g) for g in d.get("groups") or ()),
                stop_signal=None if d.get("stop_signal") is None else str(d["stop_signal"]),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise SpecError(f"malformed image record: {e}") from None

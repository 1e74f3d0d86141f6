"""Image records (``<root>/images/<id hex>.json``) and tags (``<root>/tags.json``).

An image's id is its config's digest (as docker's). A record lists its layers (blob digest,
diff_id, sizes) and is written last, after every blob and layer it names is in place, so a
record never points at something missing. Tags map a full reference to an image id.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import asdict, dataclass
from typing import Any

from workloads.images.errors import ImageError
from workloads.images.store import hex_of
from workloads.supervisor.state import CorruptRecord, read_json, write_json_atomic

RECORD_VERSION = 1


@dataclass(frozen=True)
class LayerRecord:
    digest: str  # the blob's (compressed) digest
    diff_id: str  # the uncompressed tar's digest: the unpacked directory's name
    size: int  # blob bytes
    unpacked: int  # bytes of its files
    media_type: str = ""


@dataclass(frozen=True)
class ImageRecord:
    id: str
    layers: tuple[LayerRecord, ...]
    manifest_digest: str | None = None  # the registry's digest (None for a docker-save load)
    platform: str = ""
    created_at: float = 0.0
    version: int = RECORD_VERSION

    @property
    def size(self) -> int:
        """Bytes on disk: the unpacked layers."""
        return sum(layer.unpacked for layer in self.layers)

    @property
    def blob_size(self) -> int:
        return sum(layer.size for layer in self.layers)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any], where: str) -> ImageRecord:
        try:
            return cls(
                id=str(d["id"]),
                layers=tuple(
                    LayerRecord(
                        digest=str(x["digest"]),
                        diff_id=str(x["diff_id"]),
                        size=int(x["size"]),
                        unpacked=int(x["unpacked"]),
                        media_type=str(x.get("media_type", "")),
                    )
                    for x in d["layers"]
                ),
                manifest_digest=d.get("manifest_digest"),
                platform=str(d.get("platform", "")),
                created_at=float(d.get("created_at", 0.0)),
                version=int(d.get("version", 1)),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise CorruptRecord(where, f"not an image record: {e}") from None


class ImageDB:
    def __init__(self, root: str) -> None:
        self.dir = os.path.join(root, "images")
        self.tags_path = os.path.join(root, "tags.json")
        os.makedirs(self.dir, mode=0o700, exist_ok=True)

    def _path(self, image_id: str) -> str:
        return os.path.join(self.dir, hex_of(image_id) + ".json")

    def get(self, image_id: str) -> ImageRecord | None:
        path = self._path(image_id)
        try:
            return ImageRecord.from_json(read_json(path), path)
        except FileNotFoundError:
            return None
        except CorruptRecord as e:
            raise ImageError(str(e)) from None

    def put(self, rec: ImageRecord) -> None:
        write_json_atomic(self._path(rec.id), rec.to_json())

    def delete(self, image_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(image_id))

    def all(self) -> list[ImageRecord]:
        out = []
        for n in sorted(os.listdir(self.dir)):
            if n.endswith(".json") and len(n) == 69:
                rec = self.get("sha256:" + n[:64])
                if rec is not None:
                    out.append(rec)
        return out

    def tags(self) -> dict[str, str]:
        try:
            d = read_json(self.tags_path)
        except FileNotFoundError:
            return {}
        except CorruptRecord as e:
            raise ImageError(str(e)) from None
        return {str(k): str(v) for k, v in d.items()}

    def set_tags(self, tags: dict[str, str]) -> None:
        write_json_atomic(self.tags_path, tags)

    def names_of(self, image_id: str) -> list[str]:
        return sorted(name for name, i in self.tags().items() if i == image_id)

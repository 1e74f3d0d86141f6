"""OCI and docker manifests, indexes and image configs, parsed into typed records.

Only the fields pystats uses are read; unknown ones are ignored. A malformed document raises
ImageError naming what is wrong, never KeyError or TypeError.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field
from typing import Any

from workloads.images.errors import ImageError
from workloads.images.reference import is_digest

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFESTS = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEXES = (OCI_INDEX, DOCKER_LIST)
ACCEPT = ", ".join((*MANIFESTS, *INDEXES))
LAYER_TYPES = (
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
)
REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"


def _obj(d: object, what: str) -> dict[str, Any]:
    if not isinstance(d, dict):
        raise ImageError(f"malformed {what}: expected a JSON object")
    return d


def _str(d: dict[str, Any], key: str, what: str, default: str | None = None) -> str:
    v = d.get(key, default)
    if not isinstance(v, str):
        raise ImageError(f"malformed {what}: {key!r} must be a string")
    return v


def _strs(d: dict[str, Any], key: str, what: str) -> list[str] | None:
    v = d.get(key)
    if v is None:
        return None
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ImageError(f"malformed {what}: {key!r} must be a list of strings")
    return list(v)


def load_json(data: bytes, what: str) -> dict[str, Any]:
    try:
        return _obj(json.loads(data), what)
    except (ValueError, UnicodeDecodeError) as e:
        raise ImageError(f"malformed {what}: not JSON ({e})") from None


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None

    def __str__(self) -> str:
        return f"{self.os}/{self.architecture}" + (f"/{self.variant}" if self.variant else "")


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, raw: object, what: str) -> Descriptor:
        d = _obj(raw, what)
        digest = _str(d, "digest", what)
        if not is_digest(digest):
            raise ImageError(f"malformed {what}: unsupported digest {digest!r}")
        size = d.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ImageError(f"malformed {what}: 'size' must be a non-negative integer")
        plat = None
        if isinstance(d.get("platform"), dict):
            p = d["platform"]
            plat = Platform(
                os=_str(p, "os", what, ""),
                architecture=_str(p, "architecture", what, ""),
                variant=p.get("variant") if isinstance(p.get("variant"), str) else None,
            )
        ann = d.get("annotations") or {}
        return cls(
            media_type=_str(d, "mediaType", what, ""),
            digest=digest,
            size=size,
            platform=plat,
            annotations={str(k): str(v) for k, v in _obj(ann, what).items()},
        )


@dataclass(frozen=True)
class Manifest:
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]


@dataclass(frozen=True)
class Index:
    media_type: str
    manifests: tuple[Descriptor, ...]


def parse_manifest(data: bytes, media_type: str = "") -> Manifest | Index:
    """A manifest or an index; the document's own mediaType wins over the transport's."""
    d = load_json(data, "manifest")
    mt = d.get("mediaType") if isinstance(d.get("mediaType"), str) else media_type
    if mt in INDEXES or (not mt and "manifests" in d):
        raw = d.get("manifests")
        if not isinstance(raw, list):
            raise ImageError("malformed image index: 'manifests' must be a list")
        return Index(
            media_type=mt or OCI_INDEX,
            manifests=tuple(Descriptor.from_json(m, "index entry") for m in raw),
        )
    if d.get("schemaVersion") == 1:
        raise ImageError("docker schema 1 manifests are not supported (push the image again)")
    if mt and mt not in MANIFESTS:
        raise ImageError(f"unsupported manifest media type {mt!r}")
    layers = d.get("layers")
    if not isinstance(layers, list):
        raise ImageError("malformed manifest: 'layers' must be a list")
    descs = tuple(Descriptor.from_json(x, "layer descriptor") for x in layers)
    for desc in descs:
        if desc.media_type and desc.media_type not in LAYER_TYPES:
            raise ImageError(f"unsupported layer media type {desc.media_type!r}")
    return Manifest(
        media_type=mt or OCI_MANIFEST,
        config=Descriptor.from_json(d.get("config"), "config descriptor"),
        layers=descs,
    )


def host_platform() -> Platform:
    machine = platform.machine()
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(
        machine, machine
    )
    return Platform(os="linux", architecture=arch, variant="v7" if arch == "arm" else None)


def pick(index: Index, want: Platform | None = None) -> Descriptor:
    """The index entry for ``want`` (default: this host's platform), as docker picks it."""
    want = want or host_platform()
    for d in index.manifests:
        p = d.platform
        same = p is not None and (p.os, p.architecture) == (want.os, want.architecture)
        if same and (want.variant is None or p is None or p.variant in (None, want.variant)):
            return d
    have = ", ".join(str(d.platform) for d in index.manifests if d.platform) or "none"
    raise ImageError(f"no image for {want} in the manifest list (it has: {have})")


@dataclass(frozen=True)
class ImageConfig:
    """The parts of an image config a run uses (docker's config.* fields)."""

    os: str
    architecture: str
    diff_ids: tuple[str, ...]
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    env: tuple[str, ...] = ()
    working_dir: str | None = None
    user: str | None = None
    stop_signal: str | None = None
    created: str | None = None
    exposed_ports: tuple[str, ...] = ()  # ExposedPorts' keys ("80/tcp"): what -P publishes


def parse_config(data: bytes) -> ImageConfig:
    what = "image config"
    d = load_json(data, what)
    c = _obj(d.get("config") or {}, what)
    rootfs = _obj(d.get("rootfs") or {}, what)
    diff_ids = _strs(rootfs, "diff_ids", what) or []
    for x in diff_ids:
        if not is_digest(x):
            raise ImageError(f"malformed image config: unsupported diff_id {x!r}")
    ep = _strs(c, "Entrypoint", what)
    cmd = _strs(c, "Cmd", what)
    return ImageConfig(
        os=str(d.get("os") or ""),
        architecture=str(d.get("architecture") or ""),
        diff_ids=tuple(diff_ids),
        entrypoint=None if ep is None else tuple(ep),
        cmd=None if cmd is None else tuple(cmd),
        env=tuple(_strs(c, "Env", what) or ()),
        working_dir=c.get("WorkingDir") or None,
        user=c.get("User") or None,
        stop_signal=c.get("StopSignal") or None,
        created=d.get("created") if isinstance(d.get("created"), str) else None,
        exposed_ports=tuple(str(k) for k in _obj(c.get("ExposedPorts") or {}, what)),
    )

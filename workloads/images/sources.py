"""Local image sources for `pystats load`: docker-save archives, OCI archives and OCI layouts.

A source lists the images it holds (their names and manifests) and opens blobs by digest; the
service copies blobs into the content store, where each is verified by its digest as it is
written, so an archive's content is trusted no more than a registry's.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO

from workloads.images.errors import DigestMismatch, ImageError
from workloads.images.manifest import (
    CONTAINERD_NAME,
    REF_NAME,
    Descriptor,
    Index,
    Manifest,
    parse_manifest,
    pick,
)
from workloads.images.reference import BadReference, parse
from workloads.images.store import CHUNK, hex_of, sha256_digest

DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"


@dataclass(frozen=True)
class Found:
    """One image in a source: its names (full references) and its manifest."""

    names: tuple[str, ...]
    manifest: Manifest
    manifest_digest: str | None


class Source:
    """Blobs by digest from a directory or a tar archive, and the images listed in it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.tar: tarfile.TarFile | None = None
        self.members: dict[str, tarfile.TarInfo] = {}
        if os.path.isdir(path):
            return
        try:
            self.tar = tarfile.open(path, "r:*")  # noqa: SIM115 - closed by close()
        except OSError as e:
            raise ImageError(f"{path}: {e.strerror or e}") from None
        except tarfile.TarError:  # its text lists every compression tried, one per line
            raise ImageError(
                f"{path}: not a tar archive (docker save, OCI archive) nor an OCI layout directory"
            ) from None
        for m in self.tar.getmembers():
            if m.isreg() or m.islnk():
                self.members[m.name.removeprefix("./")] = m

    def close(self) -> None:
        if self.tar is not None:
            self.tar.close()

    def exists(self, name: str) -> bool:
        if self.tar is None:
            return os.path.isfile(os.path.join(self.path, name))
        return name in self.members

    def open(self, name: str) -> IO[bytes]:
        if self.tar is None:
            try:
                return open(os.path.join(self.path, name), "rb")
            except OSError as e:
                raise ImageError(f"{self.path}: cannot read {name}: {e.strerror}") from None
        m = self.members.get(name)
        f = self.tar.extractfile(m) if m is not None else None
        if f is None:
            raise ImageError(f"{self.path}: {name} is missing from the archive")
        return f

    def read(self, name: str) -> bytes:
        with self.open(name) as f:
            return f.read()

    def chunks(self, name: str) -> Callable[[], Iterator[bytes]]:
        def gen() -> Iterator[bytes]:
            with self.open(name) as f:
                while block := f.read(CHUNK):
                    yield block

        return gen

    def digest_of(self, name: str) -> str:
        h = hashlib.sha256()
        for block in self.chunks(name)():
            h.update(block)
        return "sha256:" + h.hexdigest()

    # ---- what the source holds ------------------------------------------------------------

    def images(self) -> tuple[list[Found], Callable[[Descriptor], str]]:
        """The images, and where each blob is (a member or file name) by its descriptor."""
        if self.exists("manifest.json"):
            return self._docker_save()
        if self.exists("index.json"):
            return self._oci()
        raise ImageError(
            f"{self.path}: neither a docker-save archive (manifest.json) nor an OCI layout "
            "(index.json)"
        )

    def _oci(self) -> tuple[list[Found], Callable[[Descriptor], str]]:
        def where(d: Descriptor) -> str:
            return f"blobs/sha256/{hex_of(d.digest)}"

        index = parse_manifest(self.read("index.json"), "")
        if not isinstance(index, Index):
            raise ImageError(f"{self.path}: index.json is not an image index")
        found = []
        for desc in index.manifests:
            m = parse_manifest(self._verified(where(desc), desc.digest), desc.media_type)
            digest = desc.digest
            if isinstance(m, Index):  # a multi-platform image: this host's entry
                sub = pick(m)
                m = parse_manifest(self._verified(where(sub), sub.digest), sub.media_type)
                digest = sub.digest
            if isinstance(m, Index):
                raise ImageError(f"{self.path}: nested image indexes are not supported")
            found.append(Found(names=_oci_names(desc), manifest=m, manifest_digest=digest))
        return found, where

    def _verified(self, name: str, digest: str) -> bytes:
        data = self.read(name)
        if sha256_digest(data) != digest:
            raise DigestMismatch(f"{self.path}: {name} does not match its digest {digest}")
        return data

    def _docker_save(self) -> tuple[list[Found], Callable[[Descriptor], str]]:
        try:
            raw = json.loads(self.read("manifest.json"))
        except (ValueError, UnicodeDecodeError) as e:
            raise ImageError(f"{self.path}: manifest.json is not JSON ({e})") from None
        if not isinstance(raw, list):
            raise ImageError(f"{self.path}: manifest.json is not a list")
        names: dict[str, str] = {}  # digest -> member
        found = []
        for entry in raw:
            if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str):
                raise ImageError(f"{self.path}: manifest.json entry without a Config")
            layers = entry.get("Layers")
            if not isinstance(layers, list) or not all(isinstance(x, str) for x in layers):
                raise ImageError(f"{self.path}: manifest.json entry without Layers")
            cfg_name = entry["Config"]
            cfg = self.read(cfg_name)
            cfg_digest = sha256_digest(cfg)
            names[cfg_digest] = cfg_name
            descs = []
            for name in layers:
                digest = self.digest_of(name)
                names[digest] = name
                size = self.members[name].size if self.tar is not None else 0
                if self.tar is None:
                    size = os.path.getsize(os.path.join(self.path, name))
                descs.append(Descriptor(media_type=DOCKER_LAYER, digest=digest, size=size))
            manifest = Manifest(
                media_type="",
                config=Descriptor(DOCKER_CONFIG, cfg_digest, len(cfg)),
                layers=tuple(descs),
            )
            tags = tuple(str(parse(t)) for t in entry.get("RepoTags") or [] if isinstance(t, str))
            found.append(Found(names=tags, manifest=manifest, manifest_digest=None))

        def where(d: Descriptor) -> str:
            if d.digest not in names:
                raise ImageError(f"{self.path}: no file for blob {d.digest}")
            return names[d.digest]

        return found, where


def _oci_names(desc: Descriptor) -> tuple[str, ...]:
    """containerd's name annotation, or a ref.name that is a full reference (one holding a
    '/' or ':'); a bare tag ("latest") names nothing by itself."""
    for key in (CONTAINERD_NAME, REF_NAME):
        value = desc.annotations.get(key, "")
        if value and (key == CONTAINERD_NAME or "/" in value or ":" in value):
            try:
                return (str(parse(value)),)
            except BadReference:
                continue
    return ()

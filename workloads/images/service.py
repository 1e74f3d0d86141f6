"""ImageService: the image store's operations (pull, load, list, remove, prune, resolve).

Everything here is blocking file and network work: the agent calls it in a thread, never on its
event loop. Blobs are verified as they enter the content store, layers unpacked once, and an
image's record written last. Garbage collection (rmi, prune) holds ``gc.lock`` exclusively;
every import holds it shared, so a collection never removes a blob an import just wrote but has
not yet recorded.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from workloads.images.auth import Credentials
from workloads.images.db import ImageDB, ImageRecord, LayerRecord
from workloads.images.errors import DigestMismatch, ImageError, ImageInUse, ImageNotFound
from workloads.images.manifest import (
    Descriptor,
    ImageConfig,
    Index,
    Manifest,
    parse_config,
    parse_manifest,
    pick,
)
from workloads.images.reference import BadReference, Reference, parse
from workloads.images.registry import Registry
from workloads.images.sources import Source
from workloads.images.store import ContentStore, Opener, locked, sha256_digest
from workloads.images.tee import BlobTee
from workloads.images.unpack import Layers


@dataclass(frozen=True)
class Progress:
    """One step of a pull or load, per blob: docker pull's lines."""

    id: str  # the blob's short digest, or the reference for the whole image
    status: str  # "Waiting", "Downloading", "Download complete", "Already exists", ...
    current: int = 0
    total: int = 0


ProgressFn = Callable[[Progress], None]
PARALLEL_LAYERS = 3  # as docker's max-concurrent-downloads
PROGRESS_EVERY_S = 0.2
Wrap = Callable[[Opener], Opener]  # what a fetch passes its source through (BlobTee.wrap)
Fetch = Callable[[Descriptor, Callable[[int], None], Wrap], None]  # put one blob in the store


@dataclass(frozen=True)
class ImageSummary:
    id: str
    names: list[str]
    size: int  # unpacked bytes
    blob_size: int
    layers: int
    created_at: float
    manifest_digest: str | None
    used_by: list[str]


@dataclass(frozen=True)
class Removed:
    untagged: list[str]
    deleted: list[str]
    freed_bytes: int


def short(digest: str) -> str:
    return digest.removeprefix("sha256:")[:12]


def _quiet(_: Progress) -> None:
    pass


def _same(opener: Opener) -> Opener:
    return opener


class ImageService:
    def __init__(self, root: str, users: Callable[[], dict[str, list[str]]] | None = None):
        """``root``: <state>/images. ``users``: image id -> names of workloads using it.
        Private registry CAs: ``<root>/certs.d/<host>/ca.crt``."""
        self.certs_dir = os.path.join(root, "certs.d")
        self.root = root
        self.store = ContentStore(root)
        self.layers = Layers(os.path.join(root, "layers"))
        self.db = ImageDB(root)
        self.users = users or dict
        self._gc_lock = os.path.join(root, "gc.lock")

    @contextlib.contextmanager
    def _gc(self, exclusive: bool) -> Iterator[None]:
        fd = os.open(self._gc_lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)

    # ---- lookups --------------------------------------------------------------------------

    def find(self, text: str) -> ImageRecord | None:
        """A local image by reference, full id, or a unique id prefix (as docker's)."""
        db_tags = self.db.tags()
        try:
            ref = parse(text)
        except BadReference:
            ref = None
        if ref is not None:
            if ref.digest:
                for rec in self.db.all():
                    if ref.digest in (rec.manifest_digest, rec.id):
                        return rec
            elif str(ref) in db_tags:
                return self.db.get(db_tags[str(ref)])
        hexpart = text.removeprefix("sha256:")
        if len(hexpart) >= 4 and all(c in "0123456789abcdef" for c in hexpart):
            hits = [r for r in self.db.all() if r.id[7:].startswith(hexpart)]
            if len(hits) == 1:
                return hits[0]
        return None

    def get(self, text: str) -> ImageRecord:
        rec = self.find(text)
        if rec is None:
            raise ImageNotFound(f"no such image: {text}")
        return rec

    def config(self, rec: ImageRecord) -> ImageConfig:
        return parse_config(self.store.read(rec.id))

    def layer_dirs(self, rec: ImageRecord) -> list[str]:
        """The image's unpacked layers, top first (overlayfs's lowerdir order)."""
        dirs = [self.layers.path(layer.diff_id) for layer in reversed(rec.layers)]
        for d in dirs:
            if not os.path.isdir(d):
                raise ImageError(f"image {short(rec.id)}: layer {d} is missing; pull it again")
        return dirs

    def summaries(self) -> list[ImageSummary]:
        users = self.users()
        out = []
        for rec in self.db.all():
            out.append(
                ImageSummary(
                    id=rec.id,
                    names=[parse(n).familiar for n in self.db.names_of(rec.id)],
                    size=rec.size,
                    blob_size=rec.blob_size,
                    layers=len(rec.layers),
                    created_at=rec.created_at,
                    manifest_digest=rec.manifest_digest,
                    used_by=sorted(users.get(rec.id, [])),
                )
            )
        return sorted(out, key=lambda s: -s.created_at)

    # ---- imports --------------------------------------------------------------------------

    def import_image(
        self,
        manifest: Manifest,
        manifest_digest: str | None,
        fetch: Fetch,
        names: tuple[str, ...] = (),
        progress: ProgressFn = _quiet,
        platform: str = "",
        manifest_bytes: bytes | None = None,
    ) -> ImageRecord:
        """Config, then the layers (stored and unpacked, a few at a time), then the record,
        then the tags."""
        with self._gc(exclusive=False):
            if manifest_bytes is not None and manifest_digest is not None:
                self.store.put_bytes(manifest_bytes, manifest_digest)
            cfg_desc = manifest.config
            if not self.store.has(cfg_desc.digest):
                fetch(cfg_desc, lambda n: None, _same)
            cfg = parse_config(self.store.read(cfg_desc.digest))
            if len(cfg.diff_ids) != len(manifest.layers):
                raise ImageError(
                    f"image {short(cfg_desc.digest)}: {len(manifest.layers)} layers but "
                    f"{len(cfg.diff_ids)} diff_ids in its config"
                )
            for desc in manifest.layers:
                progress(Progress(short(desc.digest), "Waiting"))
            with ThreadPoolExecutor(PARALLEL_LAYERS) as pool:
                layers = list(
                    pool.map(
                        lambda pair: self._layer(pair[0], pair[1], fetch, progress),
                        zip(manifest.layers, cfg.diff_ids, strict=True),
                    )
                )
            rec = ImageRecord(
                id=cfg_desc.digest,
                layers=tuple(layers),
                manifest_digest=manifest_digest,
                platform=platform or f"{cfg.os}/{cfg.architecture}",
                created_at=time.time(),
            )
            old = self.db.get(rec.id)
            if old is not None and old.manifest_digest and not rec.manifest_digest:
                rec = ImageRecord(**{**rec.__dict__, "manifest_digest": old.manifest_digest})
            self.db.put(rec)
            self._tag(rec.id, names)
            return rec

    def _layer(
        self, desc: Descriptor, diff_id: str, fetch: Fetch, progress: ProgressFn
    ) -> LayerRecord:
        sid = short(desc.digest)
        if self.layers.has(diff_id):
            progress(Progress(sid, "Already exists"))
        else:
            if not self.store.has(desc.digest):
                done, last = [0], [time.monotonic()]

                def on_bytes(n: int) -> None:
                    # At most PROGRESS_EVERY_S apart, as docker's: each line costs the agent's
                    # loop and the client a JSON round (a second a pull under emulation).
                    done[0] += n
                    now = time.monotonic()
                    if now - last[0] >= PROGRESS_EVERY_S:
                        last[0] = now
                        progress(Progress(sid, "Downloading", done[0], desc.size))

                progress(Progress(sid, "Downloading", 0, desc.size))
                self._fetch_unpacking(desc, diff_id, fetch, on_bytes)
                progress(Progress(sid, "Download complete", desc.size, desc.size))
            progress(Progress(sid, "Extracting"))
            self.layers.unpack(self.store.path(desc.digest), diff_id)  # if not done already
            progress(Progress(sid, "Pull complete"))
        return LayerRecord(
            digest=desc.digest,
            diff_id=diff_id,
            size=desc.size,
            unpacked=self.layers.size(diff_id),
            media_type=desc.media_type,
        )

    def _fetch_unpacking(
        self, desc: Descriptor, diff_id: str, fetch: Fetch, on_bytes: Callable[[int], None]
    ) -> None:
        """Fetch a layer's blob while a second thread unpacks the bytes as they arrive; the
        unpacked layer is kept only once the blob is stored verified. Whatever stops the
        streamed unpack (a resumed download, a layer another pull is unpacking, a bad layer)
        leaves the work to Layers.unpack from the stored blob, which says what is wrong."""
        tee = BlobTee()
        verified = threading.Event()
        stored = [False]

        def commit() -> bool:
            verified.wait()
            return stored[0]

        def unpack() -> None:
            # An error here is left to Layers.unpack, which repeats it from the stored blob.
            with tee.reader, contextlib.suppress(Exception):
                self.layers.unpack_stream(tee.reader, diff_id, commit)

        worker = threading.Thread(target=unpack, name=f"unpack-{short(diff_id)}")
        worker.start()
        try:
            fetch(desc, on_bytes, tee.wrap)
            stored[0] = True
        finally:
            tee.stop()
            verified.set()
            worker.join()

    def _tag(self, image_id: str, names: tuple[str, ...]) -> None:
        """Point ``names`` at the image; under the gc lock (shared: imports tag one by one,
        as their records are written in order; a flock is per open file, so never take it
        twice in one thread)."""
        if not names:
            return
        with locked(os.path.join(self.root, "tags.lock")):
            tags = self.db.tags()
            for n in names:
                tags[str(parse(n))] = image_id
            self.db.set_tags(tags)

    def pull(
        self,
        text: str,
        *,
        insecure: bool = False,
        creds: Credentials | None = None,
        progress: ProgressFn = _quiet,
    ) -> ImageRecord:
        """`pystats pull REF` from its registry; an index resolves to this host's platform."""
        ref = parse(text)
        reg = Registry(ref, insecure=insecure, creds=creds, certs_dir=self.certs_dir)
        progress(Progress(ref.lookup, f"Pulling from {ref.repo}"))
        data, ctype = reg.manifest(ref.lookup)
        digest = sha256_digest(data)
        if ref.digest and digest != ref.digest:
            raise DigestMismatch(f"{ref}: the registry sent a manifest with digest {digest}")
        m = parse_manifest(data, ctype)
        if isinstance(m, Index):
            desc = pick(m)
            data, ctype = reg.manifest(desc.digest)
            digest = sha256_digest(data)
            if digest != desc.digest:
                raise DigestMismatch(f"{ref}: manifest {desc.digest} arrived as {digest}")
            m = parse_manifest(data, ctype or desc.media_type)
            if isinstance(m, Index):
                raise ImageError(f"{ref}: nested image indexes are not supported")

        def fetch(desc: Descriptor, on_bytes: Callable[[int], None], wrap: Wrap) -> None:
            opener = wrap(reg.blob_from(desc.digest))
            self.store.ingest_from(desc.digest, opener, desc.size, on_bytes)

        rec = self.import_image(m, digest, fetch, names_for(ref), progress, manifest_bytes=data)
        progress(Progress(ref.lookup, f"Digest: {digest}"))
        return rec

    def load(self, path: str, tag: str | None = None, progress: ProgressFn = _quiet) -> list[str]:
        """`pystats load -i PATH`: every image of the archive or layout; their names (or ids)."""
        if tag is not None:
            tag = str(parse(tag))
        src = Source(path)
        try:
            found, where = src.images()
            if tag is not None and len(found) != 1:
                raise ImageError(f"--tag needs an archive of one image; {path} has {len(found)}")

            def fetch(desc: Descriptor, on_bytes: Callable[[int], None], wrap: Wrap) -> None:
                chunks = src.chunks(where(desc))
                opener = wrap(lambda _offset: (0, chunks()))  # an archive: from the start
                self.store.ingest_from(desc.digest, opener, None, on_bytes)

            out: list[str] = []
            for f in found:
                names = f.names or ((tag,) if tag else ())
                rec = self.import_image(f.manifest, f.manifest_digest, fetch, names, progress)
                out.extend([parse(n).familiar for n in names] or [rec.id])
            return out
        finally:
            src.close()

    # ---- removal --------------------------------------------------------------------------

    def rmi(self, text: str, force: bool = False) -> Removed:
        """Untag ``text`` (a name) or remove the image (an id, or its last name). An image a
        workload uses is never removed, with or without force."""
        rec = self.get(text)
        with self._gc(exclusive=True):
            tags = self.db.tags()
            names = [n for n, i in tags.items() if i == rec.id]
            try:
                named = str(parse(text)) if parse(text).tag or parse(text).digest else None
            except BadReference:
                named = None
            if named in names and len(names) > 1 and not force:
                del tags[named]
                self.db.set_tags(tags)
                return Removed(untagged=[parse(named).familiar], deleted=[], freed_bytes=0)
            if len(names) > 1 and not force:
                raise ImageInUse(
                    f"image {short(rec.id)} has several names ({', '.join(names)}): "
                    "remove them one by one, or use --force"
                )
            users = self.users().get(rec.id, [])
            if users:
                raise ImageInUse(
                    f"image {text} is used by workload(s) {', '.join(sorted(users))}: "
                    "pystats rm them first"
                )
            for n in names:
                del tags[n]
            self.db.set_tags(tags)
            self.db.delete(rec.id)
            freed = self._collect()
        return Removed(
            untagged=[parse(n).familiar for n in names], deleted=[rec.id], freed_bytes=freed
        )

    def prune(self, all_: bool = False) -> Removed:
        """Remove images with no name (``all_``: every image) that no workload uses, then
        every blob and layer no image needs."""
        with self._gc(exclusive=True):
            users = self.users()
            tags = self.db.tags()
            named = set(tags.values())
            deleted = []
            for rec in self.db.all():
                if rec.id in users or (rec.id in named and not all_):
                    continue
                for n in [n for n, i in tags.items() if i == rec.id]:
                    del tags[n]
                self.db.delete(rec.id)
                deleted.append(rec.id)
            self.db.set_tags(tags)
            freed = self._collect()
        return Removed(untagged=[], deleted=deleted, freed_bytes=freed)

    def _collect(self) -> int:
        """Blobs and layers no record names, and what killed pulls and unpacks left."""
        keep_blobs: set[str] = set()
        keep_layers: set[str] = set()
        for rec in self.db.all():
            keep_blobs.add(rec.id)
            if rec.manifest_digest:
                keep_blobs.add(rec.manifest_digest)
            for layer in rec.layers:
                keep_blobs.add(layer.digest)
                keep_layers.add(layer.diff_id)
        freed = 0
        for digest in self.store.digests():
            if digest not in keep_blobs:
                freed += self.store.delete(digest)
        for diff_id in self.layers.diff_ids():
            if diff_id not in keep_layers:
                freed += self.layers.delete(diff_id)
        self.layers.sweep()
        freed += self.store.sweep()
        return freed

    def disk_usage(self) -> dict[str, int]:
        """Bytes of the blobs and of the unpacked layers, for `images` and the exporter."""
        blobs = sum(self.store.digests().values())
        layers = sum(self.layers.size(d) for d in self.layers.diff_ids())
        return {"blobs": blobs, "layers": layers}


def names_for(ref: Reference) -> tuple[str, ...]:
    """The tag a pull by ``ref`` records (a pull by digest records none, as docker)."""
    return (str(Reference(ref.domain, ref.path, ref.tag)),) if ref.tag else ()

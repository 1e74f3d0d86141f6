"""Test images made in the test: layers from (name, kind, payload) entries, written as an OCI
layout or a docker-save archive, with real digests."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.server
import io
import json
import os
import tarfile
import threading
from collections.abc import Iterator

from tests.unit.test_images_unpack import Entry, layer


@contextlib.contextmanager
def http_server(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[int]:
    """``handler`` served on 127.0.0.1 in a thread for the block; yields the port."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield srv.server_address[1]
    finally:
        srv.shutdown()
        srv.server_close()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def image_blobs(
    layers: list[list[Entry]], config: dict[str, object] | None = None
) -> tuple[bytes, bytes, list[bytes]]:
    """(manifest, config, gzipped layer blobs) of an OCI image."""
    raws = [layer(*entries) for entries in layers]
    blobs = [gzip.compress(r, mtime=0) for r in raws]
    cfg = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": config or {"Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": [sha(r) for r in raws]},
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": sha(cfg),
                "size": len(cfg),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": sha(b),
                    "size": len(b),
                }
                for b in blobs
            ],
        }
    ).encode()
    return manifest, cfg, blobs


def oci_layout(path: str, name: str, layers: list[list[Entry]], **config: object) -> str:
    manifest, cfg, blobs = image_blobs(layers, dict(config) or None)
    os.makedirs(os.path.join(path, "blobs", "sha256"), exist_ok=True)
    for data in (manifest, cfg, *blobs):
        with open(os.path.join(path, "blobs", "sha256", sha(data)[7:]), "wb") as f:
            f.write(data)
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": sha(manifest),
                "size": len(manifest),
                "annotations": {"org.opencontainers.image.ref.name": name},
            }
        ],
    }
    with open(os.path.join(path, "index.json"), "w") as f:
        json.dump(index, f)
    with open(os.path.join(path, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion": "1.0.0"}')
    return sha(manifest)


def docker_save(path: str, tags: list[str], layers: list[list[Entry]]) -> str:
    """A docker-save archive (uncompressed layers, manifest.json); returns the image id."""
    raws = [layer(*entries) for entries in layers]
    cfg = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": [sha(r) for r in raws]},
        }
    ).encode()
    files = {f"{sha(cfg)[7:]}.json": cfg}
    for r in raws:
        files[f"{sha(r)[7:]}/layer.tar"] = r
    files["manifest.json"] = json.dumps(
        [{"Config": f"{sha(cfg)[7:]}.json", "RepoTags": tags,
          "Layers": [f"{sha(r)[7:]}/layer.tar" for r in raws]}]
    ).encode()  # fmt: skip
    with tarfile.open(path, "w") as tf:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return sha(cfg)

"""ImageService on real files: load (OCI layout, docker-save), lookups, rmi, prune, config."""

from __future__ import annotations

import json
import os

import pytest

from tests.unit.images_fixtures import docker_save, oci_layout, sha
from tests.unit.test_images_unpack import Entry
from workloads.images import config as image_config
from workloads.images.errors import DigestMismatch, ImageError, ImageInUse, ImageNotFound
from workloads.images.manifest import parse_config
from workloads.images.service import ImageService

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="unpacking whiteouts needs root")

BASE: list[Entry] = [("bin", "dir", None), ("bin/hello", "file", b"hello\n"), ("etc", "dir", None),
        ("etc/gone", "file", b"x")]  # fmt: skip
TOP: list[Entry] = [
    ("etc", "dir", None),
    ("etc/.wh.gone", "file", b""),
    ("etc/new", "file", b"new"),
]


def test_load_oci_layout_and_find(tmp_path: str) -> None:
    lay = os.path.join(str(tmp_path), "layout")
    mdigest = oci_layout(lay, "localhost/app:v1", [BASE, TOP], Entrypoint=["/bin/hello"])
    svc = ImageService(os.path.join(str(tmp_path), "images"))
    assert svc.load(lay) == ["localhost/app:v1"]
    rec = svc.get("localhost/app:v1")
    assert rec.manifest_digest == mdigest
    assert svc.get(rec.id[7:19]) == rec and svc.get(rec.id) == rec
    assert svc.get("localhost/app@" + mdigest) == rec
    dirs = svc.layer_dirs(rec)
    assert os.path.exists(os.path.join(dirs[1], "bin/hello"))  # the base is last (lowest)
    assert os.path.exists(os.path.join(dirs[0], "etc/gone"))  # the whiteout, in the top layer
    assert svc.config(rec).entrypoint == ("/bin/hello",)
    [s] = svc.summaries()
    assert s.names == ["localhost/app:v1"] and s.layers == 2 and s.size == 6 + 1 + 3
    with pytest.raises(ImageNotFound, match="no such image: other"):
        svc.get("other")


def test_load_docker_save_then_rmi_and_prune(tmp_path: str) -> None:
    arc = os.path.join(str(tmp_path), "save.tar")
    image_id = docker_save(arc, ["busy:latest", "busy:1"], [BASE])
    users: dict[str, list[str]] = {}
    svc = ImageService(os.path.join(str(tmp_path), "images"), lambda: users)
    assert sorted(svc.load(arc)) == ["busy:1", "busy:latest"]
    assert svc.get("busy").id == image_id
    users[image_id] = ["web"]
    r = svc.rmi("busy:1")  # another name is left: only untagged
    assert r.untagged == ["busy:1"] and r.deleted == []
    with pytest.raises(ImageInUse, match=r"used by workload.*web"):
        svc.rmi("busy")
    assert svc.prune(all_=True).deleted == []  # in use: kept
    users.clear()
    before = svc.disk_usage()
    r = svc.rmi("busy")
    assert r.deleted == [image_id]
    assert r.freed_bytes >= before["blobs"] + before["layers"]
    assert svc.disk_usage() == {"blobs": 0, "layers": 0}
    assert svc.summaries() == []


def test_prune_dangling_only(tmp_path: str) -> None:
    svc = ImageService(os.path.join(str(tmp_path), "images"))
    a = os.path.join(str(tmp_path), "a")
    oci_layout(a, "latest", [BASE])  # a bare tag names nothing: a dangling image
    b = os.path.join(str(tmp_path), "b.tar")
    docker_save(b, ["keep:1"], [TOP])
    [dangling] = svc.load(a)
    assert dangling.startswith("sha256:")
    svc.load(b)
    r = svc.prune()
    assert r.deleted == [dangling] and r.freed_bytes > 0
    assert [s.names for s in svc.summaries()] == [["keep:1"]]


def test_corrupt_archive_blob_refused(tmp_path: str) -> None:
    lay = os.path.join(str(tmp_path), "layout")
    mdigest = oci_layout(lay, "localhost/bad:1", [BASE])
    with open(os.path.join(lay, "blobs/sha256", mdigest[7:])) as f:
        blob = json.load(f)["layers"][0]["digest"][7:]
    with open(os.path.join(lay, "blobs/sha256", blob), "r+b") as f:  # same name, other bytes
        f.seek(20)
        f.write(b"\0\0\0\0")
    svc = ImageService(os.path.join(str(tmp_path), "images"))
    with pytest.raises(DigestMismatch, match="not stored"):
        svc.load(lay)
    assert svc.summaries() == [] and not svc.store.has("sha256:" + blob)


def test_not_an_archive(tmp_path: str) -> None:
    p = os.path.join(str(tmp_path), "x")
    with open(p, "w") as f:
        f.write("hello")
    with pytest.raises(ImageError, match="not a tar archive") as err:
        ImageService(os.path.join(str(tmp_path), "images")).load(p)
    assert "\n" not in str(err.value)  # one line, not tarfile's list of methods tried


def test_config_applied_as_docker() -> None:
    cfg = parse_config(
        b'{"config": {"Entrypoint": ["/ep"], "Cmd": ["a"], "Env": ["PATH=/x", "A=1"],'
        b' "WorkingDir": "/srv", "User": "1:2", "StopSignal": "SIGQUIT"},'
        b' "rootfs": {"diff_ids": []}}'
    )
    r = image_config.apply(cfg, [])
    assert r.argv == ["/ep", "a"] and r.env == {"PATH": "/x", "A": "1"}
    assert (r.workdir, r.user, r.stop_signal) == ("/srv", "1:2", "SIGQUIT")
    assert image_config.apply(cfg, ["b", "c"]).argv == ["/ep", "b", "c"]
    assert image_config.apply(cfg, [], entrypoint=["/other"]).argv == ["/other"]  # Cmd dropped
    assert image_config.apply(cfg, ["x"], entrypoint=[]).argv == ["x"]
    r = image_config.apply(cfg, [], env={"A": "2"}, workdir="/w", user="0")
    assert r.env["A"] == "2" and (r.workdir, r.user) == ("/w", "0")
    empty = parse_config(b'{"rootfs": {"diff_ids": []}}')
    with pytest.raises(ImageError, match="no command"):
        image_config.apply(empty, [])
    assert (
        sha(b"") == "sha256:" + "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )

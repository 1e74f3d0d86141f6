"""Layer unpacking: whiteouts, opaque directories, hard links, devices, owners, escapes."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile

import pytest
import zstandard

from workloads.images.errors import DigestMismatch, ImageError, UnsafeLayer
from workloads.images.unpack import OPAQUE_XATTR, Layers, extract

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="whiteouts and chown need root")

Entry = tuple[str, str, object]  # (name, kind, payload)


def layer(*entries: Entry, pax: dict[str, dict[str, str]] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, kind, payload in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime = 1_700_000_000
            ti.pax_headers = (pax or {}).get(name, {})
            data = b""
            if kind == "dir":
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            elif kind == "file":
                data = payload if isinstance(payload, bytes) else b""
                ti.size, ti.mode = len(data), 0o644
            elif kind == "sym":
                ti.type, ti.linkname = tarfile.SYMTYPE, str(payload)
            elif kind == "link":
                ti.type, ti.linkname = tarfile.LNKTYPE, str(payload)
            elif kind == "chr":
                ti.type, ti.devmajor, ti.devminor, ti.mode = tarfile.CHRTYPE, 1, 3, 0o666
            elif kind == "suid":
                data = b"#!/bin/sh\n"
                ti.size, ti.mode, ti.uid, ti.gid = len(data), 0o4755, 1000, 1001
            tf.addfile(ti, io.BytesIO(data) if data else None)
    return buf.getvalue()


def diff_id(raw: bytes) -> str:
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def test_plain_gzip_zstd_same_tree(tmp_path: str) -> None:
    raw = layer(("etc", "dir", None), ("etc/hello", "file", b"hi\n"))
    for i, blob in enumerate([raw, gzip.compress(raw), zstandard.ZstdCompressor().compress(raw)]):
        dest = os.path.join(str(tmp_path), str(i))
        os.mkdir(dest)
        got, size = extract(io.BufferedReader(io.BytesIO(blob)), dest)
        assert got == diff_id(raw)  # the diff_id is the uncompressed digest
        assert size == 3
        with open(os.path.join(dest, "etc/hello")) as f:
            assert f.read() == "hi\n"


def test_whiteouts_and_opaque(tmp_path: str) -> None:
    raw = layer(
        ("etc", "dir", None),
        ("etc/.wh.passwd", "file", b""),
        ("var/cache", "dir", None),
        ("var/cache/.wh..wh..opq", "file", b""),
        ("var/cache/new", "file", b"n"),
    )
    dest = str(tmp_path)
    extract(io.BufferedReader(io.BytesIO(raw)), dest)
    st = os.lstat(os.path.join(dest, "etc/passwd"))
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert not os.path.lexists(os.path.join(dest, "etc/.wh.passwd"))
    assert os.getxattr(os.path.join(dest, "var/cache"), OPAQUE_XATTR) == b"y"
    assert not os.path.lexists(os.path.join(dest, "var/cache/.wh..wh..opq"))
    assert os.path.isfile(os.path.join(dest, "var/cache/new"))


def test_attributes_kept(tmp_path: str) -> None:
    raw = layer(
        ("bin", "dir", None),
        ("bin/tool", "suid", None),
        ("bin/again", "link", "bin/tool"),
        ("bin/sh", "sym", "/bin/busybox"),
        ("dev", "dir", None),
        ("dev/null", "chr", None),
        pax={"bin/tool": {"SCHILY.xattr.user.note": "kept"}},
    )
    dest = str(tmp_path)
    _, size = extract(io.BufferedReader(io.BytesIO(raw)), dest)
    tool = os.lstat(os.path.join(dest, "bin/tool"))
    assert stat.S_IMODE(tool.st_mode) == 0o4755  # setuid survives the chown
    assert (tool.st_uid, tool.st_gid) == (1000, 1001)
    assert int(tool.st_mtime) == 1_700_000_000
    assert os.lstat(os.path.join(dest, "bin/again")).st_ino == tool.st_ino
    assert tool.st_nlink == 2 and size == len(b"#!/bin/sh\n")  # a hard link counted once
    assert os.readlink(os.path.join(dest, "bin/sh")) == "/bin/busybox"
    null = os.lstat(os.path.join(dest, "dev/null"))
    assert stat.S_ISCHR(null.st_mode) and os.major(null.st_rdev) == 1
    assert os.getxattr(os.path.join(dest, "bin/tool"), "user.note") == b"kept"


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([("../evil", "file", b"x")], "'../evil': '..' in a path refused"),
        ([("a/../../evil", "file", b"x")], "'a/../../evil'"),
        ([("/etc/evil", "file", b"x")], "'/etc/evil': absolute path refused"),
        ([("lnk", "sym", "/tmp"), ("lnk/evil", "file", b"x")], "'lnk/evil': its parent"),
        ([("up", "sym", "../../etc")], "'up': symlink to '../../etc' points out"),
        ([("d", "dir", None), ("d/up", "sym", "../../x")], "'d/up'"),
        ([("hl", "link", "../etc/shadow")], "'../etc/shadow'"),
        ([("hl", "link", "/etc/shadow")], "absolute path refused"),
    ],
)
def test_escapes_refused(tmp_path: str, entries: list[Entry], message: str) -> None:
    outside = os.path.join(os.path.dirname(str(tmp_path)), "evil")
    dest = os.path.join(str(tmp_path), "layer")
    os.mkdir(dest)
    with pytest.raises(UnsafeLayer) as e:
        extract(io.BufferedReader(io.BytesIO(layer(*entries))), dest)
    assert message in str(e.value)
    assert not os.path.exists(outside)


def test_inside_symlinks_kept(tmp_path: str) -> None:
    raw = layer(("usr", "dir", None), ("usr/lib", "dir", None), ("lib", "sym", "usr/lib"),
                ("usr/lib/up", "sym", "../../etc"))  # fmt: skip
    extract(io.BufferedReader(io.BytesIO(raw)), str(tmp_path))
    assert os.readlink(os.path.join(str(tmp_path), "usr/lib/up")) == "../../etc"


def test_layers_once_and_verified(tmp_path: str) -> None:
    raw = layer(("f", "file", b"data"))
    blob = os.path.join(str(tmp_path), "blob")
    with open(blob, "wb") as f:
        f.write(gzip.compress(raw))
    layers = Layers(os.path.join(str(tmp_path), "layers"))
    u = layers.unpack(blob, diff_id(raw))
    assert os.path.isfile(os.path.join(u.path, "f")) and u.size == 4
    mtime = os.stat(u.path).st_mtime_ns
    assert layers.unpack(blob, diff_id(raw)).path == u.path
    assert os.stat(u.path).st_mtime_ns == mtime  # not unpacked again
    wrong = "sha256:" + "0" * 64
    with pytest.raises(DigestMismatch, match="refused"):
        layers.unpack(blob, wrong)
    assert not layers.has(wrong)
    hx = u.path.rsplit("/", 1)[1]
    names = set(os.listdir(layers.root)) - {f".{hx}.lock", ".{}.lock".format("0" * 64)}
    assert names == {hx, hx + ".size"}  # nothing of the refused unpack left
    assert layers.delete(diff_id(raw)) == 4 and not layers.has(diff_id(raw))


def test_not_a_layer(tmp_path: str) -> None:
    with pytest.raises(ImageError, match="not a valid layer"):
        extract(io.BufferedReader(io.BytesIO(b"\x1f\x8bnot gzip at all")), str(tmp_path))


def _big_layer() -> bytes:
    """A layer larger than one read (1 MiB) of the gzip reader, so its members span reads."""
    return layer(("data", "dir", None), ("data/blob", "file", os.urandom(3 << 20)))


def test_gzip_members_padding_and_big_reads(tmp_path: str) -> None:
    # As GzipFile: several members one after the other, zero padding after each.
    raw = _big_layer()
    cut = len(raw) // 3
    blob = gzip.compress(raw[:cut]) + b"\0" * 1000 + gzip.compress(raw[cut:]) + b"\0" * 7
    dest = str(tmp_path)
    got, size = extract(io.BufferedReader(io.BytesIO(blob)), dest)
    assert got == diff_id(raw)
    assert size == 3 << 20 and os.path.getsize(os.path.join(dest, "data/blob")) == 3 << 20


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[: len(b) // 2],  # cut short: no end-of-stream marker
        lambda b: b[:-8] + bytes([b[-8] ^ 1]) + b[-7:],  # the member's CRC does not match
        lambda b: b + b"trailing garbage",  # not another gzip member
    ],
    ids=["truncated", "bad-crc", "garbage-after"],
)
def test_damaged_gzip_refused(tmp_path: str, damage: object) -> None:
    blob = damage(gzip.compress(_big_layer()))  # type: ignore[operator]
    with pytest.raises(ImageError, match="not a valid layer"):
        extract(io.BufferedReader(io.BytesIO(blob)), str(tmp_path))


def test_gzip_reader_reads_all_or_a_bounded_block() -> None:
    from workloads.images.store import CHUNK
    from workloads.images.unpack import _Gunzip

    data = os.urandom(CHUNK * 2 + 5)
    blob = gzip.compress(data) + gzip.compress(b"tail")
    g = _Gunzip(io.BufferedReader(io.BytesIO(blob)))
    first = g.read(1000)
    assert 0 < len(first) <= 1000 and data.startswith(first)
    assert first + g.read() == data + b"tail"  # read(): to the end, across members
    assert g.read(10) == b""

"""The mount flags (-v, --mount, --tmpfs, --device, --read-only): parsed into MountOpts, stored
and read back type-checked, checked against the host at create time; symlinks in a rootfs
resolved inside it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from agent import cli
from agent.api.server import spec_from_body
from agent.cli.workloads import run_body
from workloads.runtime import mounts
from workloads.runtime.errors import SpecError
from workloads.runtime.mounts import Bind, Device, MountOpts, Tmpfs
from workloads.runtime.spec import WorkloadSpec


def test_volume_read_write_and_read_only() -> None:
    assert mounts.parse_volume("/srv/data:/data") == Bind("/srv/data", "/data", False)
    assert mounts.parse_volume("/srv/data:/data/:ro") == Bind("/srv/data", "/data", True)
    assert mounts.parse_volume("/a:/b//c:rw") == Bind("/a", "/b/c", False)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("data:/data", "absolute host path"),
        ("/a:data", "must be an absolute path"),
        ("/a:/x/../etc", "'..' is not allowed"),
        ("/a/../etc:/x", "'..' is not allowed"),
        ("/a:/b:rx", "ro or rw"),
        ("/a", "HOST:CONTAINER"),
        ("/a:/b:ro:x", "HOST:CONTAINER"),
        ("/a:/", "over the root"),
        ("/a:/proc/sys", "over /proc"),
        ("/a::ro", "HOST:CONTAINER"),
    ],
)
def test_volume_mistakes_are_one_line_errors(text: str, why: str) -> None:
    with pytest.raises(SpecError, match=why) as e:
        mounts.parse_volume(text)
    assert "\n" not in str(e.value) and str(e.value).startswith("invalid -v")


def test_mount_bind_and_tmpfs_in_docker_syntax() -> None:
    assert mounts.parse_mount("type=bind,source=/h,target=/c") == Bind("/h", "/c", False)
    assert mounts.parse_mount("type=bind,src=/h,dst=/c,readonly") == Bind("/h", "/c", True)
    assert mounts.parse_mount("type=bind,src=/h,destination=/c,ro=false") == Bind("/h", "/c")
    assert mounts.parse_mount("type=tmpfs,target=/scratch,tmpfs-size=64m,tmpfs-mode=1770") == (
        Tmpfs("/scratch", 64 << 20, 0o1770, False, False)
    )


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("source=/h,target=/c", "type must be bind or tmpfs"),
        ("type=volume,source=v,target=/c", "type must be bind or tmpfs"),
        ("type=bind,target=/c", "needs source"),
        ("type=bind,source=/h,target=/c,bind-propagation=shared", "unknown option"),
        ("type=tmpfs,source=/h,target=/c", "unknown option"),
        ("type=bind,source=/h,source=/i,target=/c", "given twice"),
        ("type=bind,source=/h,target=/c,readonly=maybe", "not true or false"),
        ("type=tmpfs,target=/c,tmpfs-mode=999", "octal"),
        ("type=tmpfs,target=/c,tmpfs-size=12Q", "size"),
        ("type=bind,source=/h", "must be an absolute path"),
        ("type=bind,source=/h,target", "not KEY=VALUE"),
    ],
)
def test_mount_mistakes(text: str, why: str) -> None:
    with pytest.raises(SpecError, match=why):
        mounts.parse_mount(text)


def test_tmpfs_options() -> None:
    assert mounts.parse_tmpfs("/run/x") == Tmpfs("/run/x")
    assert mounts.parse_tmpfs("/t:size=1m,mode=700,ro,exec") == Tmpfs(
        "/t", 1 << 20, 0o700, True, True
    )
    assert mounts.parse_tmpfs("/t:exec,noexec,nosuid,nodev") == Tmpfs("/t")
    for bad, why in (
        ("t", "absolute"),
        ("/t:size=1", "at least 4k"),
        ("/t:suid", "unknown option 'suid'"),
        ("/t:mode=rwx", "octal"),
    ):
        with pytest.raises(SpecError, match=why):
            mounts.parse_tmpfs(bad)


def test_device_syntax_and_host_node() -> None:
    assert mounts.split_device("/dev/fuse") == ("/dev/fuse", "/dev/fuse", "rwm")
    assert mounts.split_device("/dev/fuse:rw") == ("/dev/fuse", "/dev/fuse", "rw")
    assert mounts.split_device("/dev/sda:/dev/xvda:r") == ("/dev/sda", "/dev/xvda", "r")
    for bad, why in (
        ("/dev/null:/null", "under /dev/"),
        ("/dev/null:/dev/n:rwx", "some of r, w, m"),
        ("/dev/null:/dev/n:rr", "some of r, w, m"),
        ("null", "absolute host path"),
        ("/dev/a:/dev/b:r:x", "HOST"),
    ):
        with pytest.raises(SpecError, match=why):
            mounts.split_device(bad)
    st = os.stat("/dev/null")
    dev = mounts.parse_device("/dev/null:/dev/mynull:rw")
    assert dev == Device("/dev/null", "/dev/mynull", "rw", "c", 1, 3, st.st_mode & 0o777)


def test_device_must_be_a_device_node(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(SpecError, match="not a character or block device"):
        mounts.parse_device(f"{tmp_path}/f:/dev/f")
    with pytest.raises(SpecError, match="No such file"):
        mounts.parse_device("/dev/no-such-node")


def test_body_round_trips_through_the_record() -> None:
    opts = mounts.from_body(
        {
            "volumes": ["/srv:/srv:ro"],
            "mounts": ["type=tmpfs,target=/scratch", "type=bind,src=/etc,dst=/hostetc"],
            "tmpfs": ["/run/app:size=1m"],
            "read_only": True,
            "devices": ["/dev/null:/dev/n2:r"],
        }
    )
    assert opts.binds == (Bind("/srv", "/srv", True), Bind("/etc", "/hostetc", False))
    assert opts.tmpfs == (Tmpfs("/run/app", 1 << 20), Tmpfs("/scratch"))
    assert opts.read_only and opts.devices[0].target == "/dev/n2"
    stored = json.loads(json.dumps(opts.to_json()))
    assert MountOpts.from_json(stored) == opts
    # Parents are mounted before what lies below them, whatever the flag order.
    assert [m.target for m in opts.user_mounts()] == ["/srv", "/hostetc", "/scratch", "/run/app"]


def test_an_old_record_without_mounts_gets_the_default() -> None:
    spec = WorkloadSpec(name="w", argv=["true"])
    d = json.loads(json.dumps(spec.to_json()))
    del d["mounts"]
    assert WorkloadSpec.from_json(d).mounts == MountOpts()
    assert MountOpts.from_json(None) == MountOpts()


@pytest.mark.parametrize(
    ("record", "why"),
    [
        ([], "mounts must be an object"),
        ({"binds": {}}, r"mounts.binds must be a list"),
        ({"binds": [{"source": 1, "target": "/x"}]}, r"mounts.binds\[0\].source must be a string"),
        ({"binds": [{"source": "/a", "target": "/x", "readonly": "yes"}]}, "true or false"),
        ({"tmpfs": [{"target": "/t", "size": True}]}, r"size must be an integer"),
        ({"read_only": 1}, "read_only must be true or false"),
        ({"devices": [{"host": "/dev/null", "target": "/dev/n"}]}, "perms must be a string"),
    ],
)
def test_a_corrupt_record_raises_spec_error(record: object, why: str) -> None:
    with pytest.raises(SpecError, match=why):
        MountOpts.from_json(record)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"volumes": "/a:/b"}, "list of strings"),
        ({"volumes": [1]}, "list of strings"),
        ({"binds": []}, "an object with some of: devices, mounts, read_only"),
        ({"read_only": "yes"}, "read_only must be true or false"),
        ({"volumes": ["/a:/x"], "tmpfs": ["/x"]}, "two mounts at /x"),
        ("nope", "mounts must be an object with"),
    ],
)
def test_bad_api_bodies(body: object, why: str) -> None:
    with pytest.raises(SpecError, match=why):
        mounts.from_body(body)


def test_create_time_checks(tmp_path: Path) -> None:
    missing = Bind(str(tmp_path / "nope"), "/data")
    with pytest.raises(SpecError, match="does not exist on the host"):
        mounts.check(MountOpts(binds=(missing,)), None)
    src = str(tmp_path)
    # Without a rootfs the host's / is read-only: a new mount point cannot be made there...
    with pytest.raises(SpecError, match="does not exist in the host's /"):
        mounts.check(MountOpts(binds=(Bind(src, "/no/such/dir/here"),)), None)
    # ...but can in the workload's own tmpfs, and inside another of its mounts.
    ok = MountOpts(
        binds=(Bind(src, "/tmp/in-private-tmp"), Bind(src, "/etc/no-such-sub/dir")),
        tmpfs=(Tmpfs("/etc"),),
    )
    mounts.check(ok, None)
    mounts.check(MountOpts(binds=(Bind(src, "/no/such/dir/here"),)), str(tmp_path))


def test_symlinks_resolve_inside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "usr" / "lib").mkdir(parents=True)
    (root / "lib").symlink_to("usr/lib")
    (root / "escape").symlink_to("/etc")
    (root / "up").symlink_to("../../..")
    (root / "loop").symlink_to("loop")
    r = str(root)
    assert mounts.resolve_in_root(r, "/lib/x") == f"{r}/usr/lib/x"
    assert mounts.resolve_in_root(r, "/escape/passwd") == f"{r}/etc/passwd"
    assert mounts.resolve_in_root(r, "/up/etc") == f"{r}/etc"
    with pytest.raises(OSError, match="too many symlinks"):
        mounts.resolve_in_root(r, "/loop/x")


def test_prepare_rootfs_makes_mount_points_inside_it(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "data").symlink_to("/outside")
    src_file = tmp_path / "f"
    src_file.write_text("x")
    opts = MountOpts(
        binds=(Bind(str(tmp_path), "/data/dir"), Bind(str(src_file), "/etc/f")),
        tmpfs=(Tmpfs("/scratch"),),
    )
    mounts.prepare_rootfs(str(root), opts)
    assert (root / "outside" / "dir").is_dir()  # the link was followed inside the rootfs
    assert (root / "etc" / "f").is_file()
    assert (root / "scratch").is_dir()
    assert all((root / d).is_dir() for d in ("proc", "dev", "sys"))
    assert not os.path.exists("/outside")


def _args(*argv: str) -> object:
    return cli.build_parser().parse_args(["run", *argv])


def test_cli_flags_reach_the_spec(tmp_path: Path) -> None:
    args = _args(
        "-v", f"{tmp_path}:/tmp/data:ro", "--mount", "type=tmpfs,target=/tmp/t",
        "--tmpfs", "/run/x:size=1m", "--read-only", "--device", "/dev/null:/dev/n", "--", "true",
    )  # fmt: skip
    body = run_body(args)  # type: ignore[arg-type]
    assert body["mounts"] == {
        "volumes": [f"{tmp_path}:/tmp/data:ro"],
        "mounts": ["type=tmpfs,target=/tmp/t"],
        "tmpfs": ["/run/x:size=1m"],
        "devices": ["/dev/null:/dev/n"],
        "read_only": True,
    }
    spec = spec_from_body(body)
    assert spec.mounts.binds == (Bind(str(tmp_path), "/tmp/data", True),)
    assert [t.target for t in spec.mounts.tmpfs] == ["/run/x", "/tmp/t"]
    assert spec.mounts.read_only and spec.mounts.devices[0].minor == 3
    assert "mounts" not in run_body(_args("--", "true"))  # type: ignore[arg-type]


def test_cli_refuses_bad_syntax_before_calling_the_agent(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["run", "--socket", "/nonexistent/agent.sock", "-v", "relative:/x", "--", "true"]
    assert cli.main(argv) == 125  # a usage error, as docker's invalid -v
    err = capsys.readouterr().err
    assert "absolute host path" in err and "Traceback" not in err
    assert err.strip().splitlines()[1:] == ["See 'pystats run --help'."]  # one line, the hint

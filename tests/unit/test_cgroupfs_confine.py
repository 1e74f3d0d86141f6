"""Every write stays beneath the agent's cgroup root: request paths checked, every cgroupfs
writer refuses "..", absolute and symlinked names, and the freeze API cannot be led out."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from agent.api.stats_routes import add_stats_routes
from agent.statsview.fake import demo_store
from cgroupfs import writer
from cgroupfs.errors import UnsafePath
from cgroupfs.paths import CgroupRoot, request_rel


@pytest.mark.parametrize("rel", ["a", "a/b", "workloads/web", "system.slice/cpu.service"])
def test_request_rel_accepts_plain_relative_paths(rel: str) -> None:
    assert request_rel(rel) == rel


@pytest.mark.parametrize(
    ("rel", "why"),
    [
        ("..", "leave the cgroup"),
        ("a/../../b", "leave the cgroup"),
        ("./a", "leave the cgroup"),
        ("/sys/fs/cgroup/a", "absolute"),
        ("/", "absolute"),
        ("", "root itself"),
        ("a//b", "empty cgroup name"),
        ("a/", "canonical"),
        ("a\0b", "NUL"),
        ("a\nb", "newline"),
        (7, "must be a string"),
        (None, "must be a string"),
    ],
)
def test_request_rel_refuses(rel: object, why: str) -> None:
    with pytest.raises(UnsafePath, match=why):
        request_rel(rel)


def test_request_rel_root_only_when_allowed() -> None:
    assert request_rel("", allow_root=True) == ""


@pytest.fixture
def tree(tmp_path: Path) -> tuple[CgroupRoot, Path]:
    """A fake cgroup root with a child, a symlink to a directory outside it, and that outside
    directory dressed as a cgroup (so any write that got there would land)."""
    outside = tmp_path / "outside"
    outside.mkdir()
    for name in ("cgroup.freeze", "cgroup.kill", "cgroup.procs", "memory.max", "cgroup.events"):
        (outside / name).write_text("untouched\n")
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    os.symlink(outside, root / "a" / "link")
    os.symlink("../..", root / "a" / "up")
    return CgroupRoot(str(root)), outside


WRITES: list[tuple[str, Callable[[CgroupRoot, str], object]]] = [
    ("write", lambda r, rel: writer.write(r, rel, "memory.max", "max")),
    ("set_limits", lambda r, rel: writer.set_limits(r, rel, {"memory.max": "max"})),
    ("create", lambda r, rel: writer.create(r, rel + "/child")),
    ("move_pid", lambda r, rel: writer.move_pid(r, rel, os.getpid())),
    ("freeze", lambda r, rel: writer.freeze(r, rel)),
    ("kill", lambda r, rel: writer.kill(r, rel)),
    ("open_dir", lambda r, rel: writer.open_dir(r, rel)),
    ("enable_controllers", lambda r, rel: writer.enable_controllers(r, rel, ["memory"])),
    ("remove", lambda r, rel: writer.remove(r, rel)),
]


@pytest.mark.parametrize(("op", "call"), WRITES, ids=[w[0] for w in WRITES])
@pytest.mark.parametrize("rel", ["..", "a/..", "a/../..", "a/link", "a/link/x", "a/up"])
def test_every_writer_refuses_names_that_lead_out(
    tree: tuple[CgroupRoot, Path], op: str, call: Callable[[CgroupRoot, str], object], rel: str
) -> None:
    root, outside = tree
    with pytest.raises(UnsafePath):
        call(root, rel)
    for f in outside.iterdir():
        assert f.read_text() == "untouched\n", (op, rel, f.name)
    assert sorted(p.name for p in outside.iterdir()) == [
        "cgroup.events",
        "cgroup.freeze",
        "cgroup.kill",
        "cgroup.procs",
        "memory.max",
    ]
    assert os.path.isdir(root.path)  # remove() never took the root or anything outside


async def test_the_freeze_api_cannot_be_led_out_of_the_root(tmp_path: Path) -> None:
    # The store knows "pystats.slice/web"; on disk pystats.slice is a symlink to a directory
    # outside the root, dressed as a cgroup. The real cgroupfs freezer must refuse it (409).
    outside = tmp_path / "outside"
    (outside / "web").mkdir(parents=True)
    (outside / "web" / "cgroup.freeze").write_text("0\n")
    root = tmp_path / "root"
    root.mkdir()
    os.symlink(outside, root / "pystats.slice")
    app = web.Application()
    add_stats_routes(app, demo_store(), CgroupRoot(str(root)))
    async with TestClient(TestServer(app)) as client:
        resp = await client.post("/v1/cgroups/freeze", json={"cgroup": "pystats.slice/web"})
        assert resp.status == 409
        assert "outside the cgroup root" in (await resp.json())["error"]
        for bad in ("../outside/web", "/sys/fs/cgroup"):
            resp = await client.post("/v1/cgroups/freeze", json={"cgroup": bad})
            assert resp.status == 404  # never a cgroup the store knows
    assert (outside / "web" / "cgroup.freeze").read_text() == "0\n"

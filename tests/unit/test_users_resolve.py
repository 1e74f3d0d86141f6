"""Issue 17.4: -u USER[:GROUP] and --group-add resolved as docker does, in the rootfs's own
/etc/passwd and /etc/group (numeric ids need no entry)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.api.server import spec_from_body
from workloads.runtime.errors import SpecError
from workloads.runtime.runuser import Ids, RunUser, from_body, group_ids, resolve
from workloads.runtime.spec import WorkloadSpec


@pytest.fixture
def rootfs(tmp_path: Path) -> str:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"
        "nogrp:x:1001:4242::/:/bin/sh\n"
    )
    (etc / "group").write_text("root:x:0:\napp:x:1000:\nstaff:x:50:app,other\nvideo:x:44:\n")
    return str(tmp_path)


def test_a_name_takes_its_uid_gid_and_memberships(rootfs: str) -> None:
    assert resolve([rootfs], "app", "the rootfs's") == Ids(1000, 1000, (50, 1000))


def test_a_group_given_replaces_primary_and_memberships(rootfs: str) -> None:
    assert resolve([rootfs], "app:video", "the rootfs's") == Ids(1000, 44, (44,))
    assert resolve([rootfs], "app:7", "the rootfs's") == Ids(1000, 7, (7,))


def test_numeric_ids_need_no_entry(rootfs: str) -> None:
    assert resolve([rootfs], "4000", "the rootfs's") == Ids(4000, 0, (0,))  # runc's gid 0
    assert resolve([rootfs], "4000:4001", "the rootfs's") == Ids(4000, 4001, (4001,))
    assert resolve([rootfs], "1000", "the rootfs's") == Ids(1000, 1000, (50, 1000))


@pytest.mark.parametrize(
    ("user", "message"),
    [
        ("ghost", "user 'ghost' is not in the rootfs's /etc/passwd"),
        ("app:ghosts", "group 'ghosts' is not in the rootfs's /etc/group"),
        ("99999999999", "out of range"),
        (":50", r"expected USER\[:GROUP\]"),
    ],
)
def test_unknown_names_are_refused_in_one_line(rootfs: str, user: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        resolve([rootfs], user, "the rootfs's")


def test_a_symlinked_passwd_is_not_followed_out_of_the_rootfs(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").symlink_to("/etc/passwd")
    with pytest.raises(SpecError, match="not in"):
        resolve([str(tmp_path)], "root", "the rootfs's")


def test_group_add_takes_names_and_gids(rootfs: str) -> None:
    assert group_ids([rootfs], ("video", "123", "staff"), "the rootfs's") == (44, 50, 123)
    with pytest.raises(SpecError, match="'nope' is not in"):
        group_ids([rootfs], ("nope",), "the rootfs's")


def test_the_create_body_resolves_in_the_rootfs_or_defers_to_the_image(rootfs: str) -> None:
    body = {"argv": ["id"], "rootfs": rootfs, "user": "app", "group_add": ["video"]}
    spec = spec_from_body(body)
    assert spec.user == RunUser("app", 1000, 1000, (50, 1000), ("video",), (44,))
    assert WorkloadSpec.from_json(spec.to_json()) == spec  # recorded and read back by the shim
    assert from_body({"image": "busybox", "user": "app", "group_add": ["x"]}) == RunUser(
        group_add=("x",)
    )
    assert from_body({"argv": ["id"]}) is None
    with pytest.raises(SpecError, match="group_add"):
        from_body({"group_add": "video"})


def test_on_the_hosts_root_the_hosts_files_are_read() -> None:
    user = from_body({"argv": ["id"], "user": "root:0"})
    assert user is not None and (user.uid, user.gid) == (0, 0)
    with pytest.raises(SpecError, match="the host's /etc/passwd"):
        from_body({"argv": ["id"], "user": "no-such-user-here"})

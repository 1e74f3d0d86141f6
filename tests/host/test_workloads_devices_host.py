"""The device program on this host's real cgroup v2 tree: loaded, attached, enforced, gone with
the cgroup; and the nesting bounds written when a workload cgroup is made."""

from __future__ import annotations

import os
import subprocess
import tempfile

import pytest

from cgroupfs import reader, writer
from cgroupfs.paths import CgroupRoot
from workloads.runtime import cgroups
from workloads.runtime.devices import DEFAULT_RULES, DeviceRule, workload_rules
from workloads.runtime.spec import Limits

pytestmark = pytest.mark.host

PROBE = """
read go
cat /dev/null && echo null-ok
head -c 4 /dev/urandom | wc -c | sed 's/^ */urandom-bytes=/'
mknod "$1" b 8 0 && echo mknod-ok
msg=$(head -c 1 "$1" 2>&1 >/dev/null) && echo disk-open-ok || echo "disk-open-failed: $msg"
"""


def _probe(root: CgroupRoot, rel: str) -> str:
    """Run PROBE inside cgroup ``rel`` (moved there before it reads its go)."""
    node = os.path.join(tempfile.mkdtemp(prefix="pystats-dev-"), "sda")
    proc = subprocess.Popen(
        ["sh", "-c", PROBE, "probe", node],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert writer.move_pid(root, rel, proc.pid)
        out, _ = proc.communicate("go\n", timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if os.path.lexists(node):
            os.unlink(node)
        os.rmdir(os.path.dirname(node))
    return out


def test_default_rules_allow_null_and_mknod_but_not_a_disk(host_cgroup: str) -> None:
    root = CgroupRoot(host_cgroup)
    writer.create(root, "w")
    cgroups.attach_device_rules(root, "w", DEFAULT_RULES)
    out = _probe(root, "w")
    assert "null-ok" in out and "urandom-bytes=4" in out, out
    assert "mknod-ok" in out, out  # b *:* m: creating the node is allowed, as with runc
    assert "disk-open-failed" in out and "Operation not permitted" in out, out
    # The same probe in a sibling without a program is not refused (the open reaches the
    # driver: it succeeds, or ENXIO without a disk 8:0), so the EPERM above is the program's.
    writer.create(root, "free")
    free = _probe(root, "free")
    assert "null-ok" in free and "mknod-ok" in free, free
    assert "Operation not permitted" not in free, free


def test_a_device_rule_and_privileged_open_the_disk(host_cgroup: str) -> None:
    root = CgroupRoot(host_cgroup)
    for rel, rules in (
        ("dev", workload_rules([DeviceRule("b", 8, 0, "r")])),
        ("priv", workload_rules(privileged=True)),
    ):
        writer.create(root, rel)
        cgroups.attach_device_rules(root, rel, rules)
        out = _probe(root, rel)
        assert "null-ok" in out, out
        # Allowed by the cgroup: the open reaches the driver (ok, or ENXIO without a disk
        # 8:0), so the shell's message is never "Operation not permitted".
        assert "Operation not permitted" not in out, out


def test_workload_cgroup_gets_nesting_bounds_and_its_program(host_cgroup: str) -> None:
    root = CgroupRoot(host_cgroup)
    cgroups.create_workload_cgroup(root, "bounded", Limits())
    rel = cgroups.workload_rel("bounded")
    assert reader.read_file(root, rel, "cgroup.max.descendants").strip() == b"32"
    assert reader.read_file(root, rel, "cgroup.max.depth").strip() == b"8"
    assert "Operation not permitted" in _probe(root, rel)
    # The kernel refuses the 33rd descendant (EAGAIN), whoever asks.
    for i in range(cgroups.MAX_DESCENDANTS):
        writer.create(root, f"{rel}/c{i}")
    with pytest.raises(writer.CgroupDirError, match=r"max\.descendants"):
        writer.create(root, f"{rel}/one-too-many")
    cgroups.remove_workload_cgroup(root, "bounded")
    assert not os.path.exists(os.path.join(host_cgroup, rel))


def test_a_leftover_cgroup_is_made_afresh_without_its_old_program(host_cgroup: str) -> None:
    root = CgroupRoot(host_cgroup)
    cgroups.create_workload_cgroup(root, "again", Limits())  # the default list: no disk
    rel = cgroups.workload_rel("again")
    writer.create(root, f"{rel}/left-behind")
    # The same name again, now allowed to read disk 8:0: the old program must be gone with
    # the old cgroup (stacked, it would still refuse), and so must the old child.
    cgroups.create_workload_cgroup(
        root, "again", Limits(), workload_rules([DeviceRule("b", 8, 0, "r")])
    )
    assert not os.path.exists(os.path.join(host_cgroup, rel, "left-behind"))
    out = _probe(root, rel)
    assert "null-ok" in out and "Operation not permitted" not in out, out
    cgroups.remove_workload_cgroup(root, "again")

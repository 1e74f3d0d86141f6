"""The workload's filesystem seen from inside real workloads on the VM, default and --userns, with
and without --rootfs: masked and read-only paths, /sys and its own cgroup read-only, a minimal
/dev, nodev everywhere else, no host process or writable host file reachable (not even after
umount), and the ways out: -v, --mount, --tmpfs, --read-only, --device."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.vm.wlagent import Agent, busybox_rootfs, running_agent
from workloads.runtime.mounts import MASKED_PATHS

pytestmark = pytest.mark.vm
BASE = 300_000
TOOLS = (
    "cat chmod echo grep head id ls mkdir mknod mount od rm sed sleep sort stat touch tr umount wc"
)
MINIMAL_DEV = {
    "fd", "full", "mqueue", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin", "stdout",
    "tty", "urandom", "zero",
}  # fmt: skip

# Each probe prints KEY=VALUE; "yes"/"no" says whether the command succeeded.
PROBE = r"""
ok() { if "$@" >/dev/null 2>&1; then echo yes; else echo no; fi; }
echo "kcore=$(head -c 100 /proc/kcore 2>/dev/null | wc -c)"
echo "keys=$(cat /proc/keys 2>/dev/null | wc -c)"
echo "timer_list=$(cat /proc/timer_list 2>/dev/null | wc -c)"
echo "sched_debug=$(cat /proc/sched_debug 2>/dev/null | wc -c)"
echo "firmware=$(ls -A /sys/firmware 2>/dev/null | wc -l)"
echo "w_procsys=$(ok sh -c 'echo pystats > /proc/sys/kernel/domainname')"
echo "w_sysrq=$(ok sh -c 'echo h > /proc/sysrq-trigger')"
echo "w_cgprocs=$(ok sh -c 'echo 1 > /sys/fs/cgroup/cgroup.procs')"
echo "w_cgmkdir=$(ok mkdir /sys/fs/cgroup/escape)"
echo "w_sysuevent=$(ok sh -c 'echo change > /sys/kernel/uevent_helper')"
echo "cgdirs=$(ls -d /sys/fs/cgroup/*/ 2>/dev/null | wc -l)"
echo "cgprocs=$(cat /sys/fs/cgroup/cgroup.procs | tr '\n' ' ')"
echo "memmax=$(cat /sys/fs/cgroup/memory.max)"
echo "dev=$(ls -A /dev | sort | tr '\n' ' ')"
echo "w_etc=$(ok touch /etc/pystats-probe)"
echo "w_state=$(ok touch "$STATE/probe")"
echo "w_tmp=$(ok sh -c 'echo x > /tmp/pystats-probe')"
echo "w_vartmp=$(ok sh -c 'echo x > /var/tmp/pystats-probe')"
echo "hostmarker=$(ok ls "$MARKER")"
blk() { if mknod "$1" b $BLK 2>/dev/null; then ok head -c1 "$1"; else echo no; fi; }
echo "blk_dev=$(blk /dev/pblk)"
echo "blk_tmp=$(blk /tmp/pblk)"
echo "procs=$(ls /proc | grep -c '^[0-9]')"
agents() { cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\0' ' ' | grep -c 'agent[.]api[.]devserver'; }
echo "devserver=$(agents)"
sed 's/^/MI /' /proc/self/mountinfo
echo "u_sys=$(ok umount -l /sys/fs/cgroup)$(ok umount -l /sys)"
echo "cg_after=$(ls /sys/fs/cgroup 2>/dev/null | tr '\n' ' ')"
echo "u_tmp=$(ok umount -l /tmp)$(ok umount -l /run)"
echo "u_proc=$(if umount /proc || umount -l /proc; then echo yes; else echo no; fi 2>/dev/null)"
echo "procs_after=$(ls /proc 2>/dev/null | grep -c '^[0-9]')"
echo "procdev_after=$(stat -c %d /proc 2>/dev/null) rootdev=$(stat -c %d / 2>/dev/null)"
echo "devserver_after=$(agents)"
echo "hostmarker_after=$(ok ls "$MARKER")"
echo "w_tmp_after=$(ok sh -c 'echo x > /tmp/pystats-probe2')"
echo end
"""


@pytest.fixture(scope="module")
def agent() -> Iterator[Agent]:
    with running_agent("pystats-mounts-") as a:
        yield a


@pytest.fixture(scope="module")
def rootfs() -> Iterator[str]:
    """wlagent's busybox rootfs with the applets the probes use, reachable by any uid."""
    path = busybox_rootfs()
    os.chmod(path, 0o755)
    for tool in TOOLS.split():
        link = os.path.join(path, "bin", tool)
        if not os.path.lexists(link):
            os.symlink("busybox", link)
    os.mkdir(os.path.join(path, "etc"))
    try:
        yield path
    finally:
        shutil.rmtree(path)


def _block_device() -> str:
    """MAJOR MINOR of a real block device of the VM (the probe tries to read it)."""
    with open("/proc/partitions") as f:
        rows = [line.split() for line in f.read().splitlines()[2:] if line.strip()]
    if rows:
        return f"{rows[0][0]} {rows[0][1]}"
    return "7 0"  # loop0: a block device every kernel with loop support knows


def _probe_flags(agent: Agent, marker: str) -> list[str]:
    flags = ["--memory", "64M", "-e", f"STATE={agent.state}", "-e", f"MARKER={marker}"]
    return [*flags, "-e", f"BLK={_block_device()}"]


def _run(agent: Agent, name: str, *flags: str, script: str, sh: str = "sh") -> tuple[int, str]:
    r = agent.cli("run", "--name", name, *flags, "--", sh, "-c", script)
    assert "Traceback" not in r.stderr, r.stderr
    return r.returncode, r.stdout + r.stderr


def _values(out: str) -> dict[str, str]:
    return dict(
        line.split("=", 1)
        for line in out.splitlines()
        if "=" in line and not line.startswith("MI ")
    )


def _mountinfo(out: str) -> dict[str, set[str]]:
    """Mount point -> its per-mount options (the last mount at a point wins)."""
    points: dict[str, set[str]] = {}
    for line in out.splitlines():
        if line.startswith("MI "):
            fields = line[3:].split()
            points[fields[4]] = set(fields[5].split(","))
    return points


@pytest.mark.parametrize("use_rootfs", [False, True], ids=["host-root", "rootfs"])
@pytest.mark.parametrize("userns", [False, True], ids=["root", "userns"])
def test_contained_filesystem(agent: Agent, rootfs: str, use_rootfs: bool, userns: bool) -> None:
    marker = f"/tmp/pystats-host-marker-{uuid.uuid4().hex[:8]}"
    Path(marker).write_text("host\n")
    name = f"fs-{int(use_rootfs)}{int(userns)}"
    flags = _probe_flags(agent, marker)
    if use_rootfs:
        flags += ["--rootfs", rootfs]
    if userns:
        flags += ["--userns-base", str(BASE)]
    try:
        code, out = _run(agent, name, *flags, script=PROBE, sh="/bin/sh" if use_rootfs else "sh")
    finally:
        os.unlink(marker)
    assert code == 0 and "end" in out, out
    v = _values(out)
    # runc's masked paths read empty; its read-only paths and /sys refuse writes.
    assert v["kcore"] == v["keys"] == v["timer_list"] == v["sched_debug"] == "0", out
    assert v["firmware"] == "0"
    for key in ("w_procsys", "w_sysrq", "w_cgprocs", "w_cgmkdir", "w_sysuevent"):
        assert v[key] == "no", (key, out)
    # /sys/fs/cgroup is the workload's own cgroup: no child of it, its own processes, its limit.
    assert v["cgdirs"] == "0"
    assert "1" in v["cgprocs"].split()
    assert v["memmax"] == str(64 << 20)
    assert set(v["dev"].split()) == MINIMAL_DEV, v["dev"]
    # No host file written; the workload's /tmp and /var/tmp are its own.
    assert v["w_state"] == "no"
    if userns or not use_rootfs:
        assert v["w_etc"] == "no"  # a rootfs is the workload's own, writable but by --userns
    assert not os.path.exists("/etc/pystats-probe")
    assert not os.path.exists(os.path.join(agent.state, "probe"))
    assert not os.path.exists("/tmp/pystats-probe") and not os.path.exists("/var/tmp/pystats-probe")
    assert v["hostmarker"] == "no" and v["hostmarker_after"] == "no"
    if not use_rootfs:
        assert v["w_tmp"] == v["w_vartmp"] == "yes"
    # A block device node is refused or useless (nodev outside /dev, the device program in it).
    assert v["blk_dev"] == "no" and v["blk_tmp"] == "no", out
    # Its own processes only, before and after an attempt to unmount /proc.
    assert 1 <= int(v["procs"]) <= 6 and v["devserver"] == "0"
    assert int(v["procs_after"]) <= 6 and v["devserver_after"] == "0"
    # Unmounting /sys (if the capabilities allow it) shows an empty directory, no host cgroup.
    assert v["cg_after"] == "" or "cgroup.procs" in v["cg_after"].split(), v["cg_after"]
    assert "workloads" not in v["cg_after"].split() and "shims" not in v["cg_after"].split()
    assert not os.path.exists("/tmp/pystats-probe2")
    # Without CAP_SYS_ADMIN (docker's default set) every umount is refused.
    assert v["u_sys"] == "nono" and v["u_tmp"] == "nono" and v["u_proc"] == "no"
    mi = _mountinfo(out)
    assert "ro" in mi["/sys"] and "ro" in mi["/sys/fs/cgroup"]
    assert "ro" in mi["/proc/sys"] and "ro" in mi["/proc/sysrq-trigger"]
    if not use_rootfs:
        assert "ro" in mi["/"]
    assert "nosuid" in mi["/dev"] and "nodev" not in mi["/dev"]
    assert {"nosuid", "nodev", "noexec"} <= mi["/dev/shm"] and {"nosuid", "noexec"} <= mi[
        "/dev/pts"
    ]
    for point, opts in mi.items():
        device_own = point in ("/dev", "/dev/pts") or point in MASKED_PATHS
        if not device_own and not (point.startswith("/dev/") and point[5:] in MINIMAL_DEV):
            assert "nodev" in opts, (point, opts)


@pytest.mark.parametrize("userns", [False, True], ids=["root", "userns"])
def test_umount_reveals_no_host_mount(agent: Agent, userns: bool) -> None:
    """With CAP_SYS_ADMIN added the umounts succeed: below are empty directories of the read-only
    copy of the host's tree (its /proc, /sys, /tmp, /run mounts were detached from it)."""
    marker = f"/tmp/pystats-host-marker-{uuid.uuid4().hex[:8]}"
    Path(marker).write_text("host\n")
    flags = [*_probe_flags(agent, marker), "--cap-add", "SYS_ADMIN"]
    if userns:
        flags += ["--userns-base", str(BASE)]
    try:
        code, out = _run(agent, f"umount-{int(userns)}", *flags, script=PROBE)
    finally:
        os.unlink(marker)
    assert code == 0 and "end" in out, out
    v = _values(out)
    assert v["u_sys"] == "yesyes" and v["u_proc"] == "yes", out
    # Below is the read-only copy's /sys/fs/cgroup: an empty directory on a real host; in this VM
    # the root is the outer machine's / over 9p, which shows that machine's directory names
    # there. What must not show is this kernel's cgroup2 tree (its files, the agent's subtree).
    after = v["cg_after"].split()
    assert not {"cgroup.procs", "cgroup.controllers"} & set(after), after
    assert not [n for n in after if n.startswith("pystats")], after
    assert v["hostmarker_after"] == "no"
    if userns:  # its /tmp and /run were mounted before the user namespace: locked in place
        assert v["u_tmp"] == "nono" and v["w_tmp_after"] == "yes"
    else:  # below them: the read-only copy's empty directories
        assert v["u_tmp"] == "yesyes" and v["w_tmp_after"] == "no"
    # Below /proc no mount is left (the same device as /) and none of this kernel's processes
    # shows. On a real host it is the read-only copy's empty directory. Under the VM's 9p root it
    # shows the outer machine's /proc entries (9p crosses its mounts and relays its statfs), not
    # processes of this kernel: the count is checked only off 9p.
    procdev, rootdev = v["procdev_after"].split(" rootdev=")
    assert procdev == rootdev, out
    assert v["devserver_after"] == "0"
    if _root_fstype(out) != "9p":
        assert v["procs_after"] == "0", out


def _root_fstype(out: str) -> str:
    """The workload's root's filesystem type, from the probe's mountinfo lines."""
    for line in out.splitlines():
        if line.startswith("MI ") and line.split()[5] == "/":
            return line.split(" - ")[1].split()[0]
    raise AssertionError(f"no root in the probe's mountinfo:\n{out}")


@pytest.mark.parametrize("userns", [False, True], ids=["root", "userns"])
def test_host_paths_writable_only_through_volumes(
    agent: Agent, open_dir: Path, userns: bool
) -> None:
    rw, ro = open_dir / "rw", open_dir / "ro"
    rw.mkdir()
    ro.mkdir()
    (ro / "seed").write_text("seed\n")
    if userns:
        os.chown(rw, BASE, BASE)  # root inside is host uid BASE: it may write what BASE owns
    script = (
        "echo a > /tmp/rw/f && echo rw-ok; cat /tmp/ro/seed; echo b > /tmp/ro/f || echo ro-denied;"
        " echo c > /tmp/ro2/f || echo ro2-denied; echo d > /etc/f || echo etc-denied;"
        " sed 's/^/MI /' /proc/self/mountinfo"
    )
    flags = ["-v", f"{rw}:/tmp/rw", "-v", f"{ro}:/tmp/ro:ro"]
    flags += ["--mount", f"type=bind,source={ro},target=/tmp/ro2,readonly"]
    if userns:
        flags += ["--userns-base", str(BASE)]
    code, out = _run(agent, f"vol-{int(userns)}", *flags, script=script)
    assert code == 0, out
    assert "rw-ok" in out and "seed" in out
    assert "ro-denied" in out and "ro2-denied" in out and "etc-denied" in out
    assert (rw / "f").read_text() == "a\n"
    assert not (ro / "f").exists()
    if userns:
        assert os.stat(rw / "f").st_uid == BASE
    mi = _mountinfo(out)
    assert "rw" in mi["/tmp/rw"] and "nodev" in mi["/tmp/rw"]
    assert "ro" in mi["/tmp/ro"] and "ro" in mi["/tmp/ro2"]


def test_tmpfs_flags_and_read_only_rootfs(agent: Agent, rootfs: str) -> None:
    script = (
        "stat -c %a /tmp/t; echo x > /tmp/t/f && echo t-ok;"
        " printf '#!/bin/sh\\necho ran\\n' > /tmp/t/x; chmod +x /tmp/t/x; /tmp/t/x || echo noexec;"
        " printf '#!/bin/sh\\necho ran-exec\\n' > /tmp/e/x; chmod +x /tmp/e/x; /tmp/e/x;"
        " sed 's/^/MI /' /proc/self/mountinfo"
    )
    flags = ["--tmpfs", "/tmp/t:size=1m,mode=700", "--mount", "type=tmpfs,target=/tmp/e"]
    code, out = _run(agent, "tmpfs", *flags, "--tmpfs", "/tmp/e2:exec", script=script)
    assert code == 0, out
    assert "700\n" in out and "t-ok" in out and "noexec" in out
    mi = _mountinfo(out)
    assert {"nosuid", "nodev", "noexec"} <= mi["/tmp/t"]
    assert "ran-exec" not in out  # --mount type=tmpfs is noexec too, as docker's
    assert "noexec" not in mi["/tmp/e2"]

    # --read-only: the rootfs refuses writes; a --tmpfs is the way to a writable path.
    script = (
        "touch /newfile || echo root-ro; touch /tmp/f || echo tmp-ro; touch /scratch/f && echo s-ok"
    )
    code, out = _run(
        agent, "rofs", "--rootfs", rootfs, "--read-only", "--tmpfs", "/scratch",
        script=script, sh="/bin/sh",
    )  # fmt: skip
    assert code == 0, out
    assert "root-ro" in out and "tmp-ro" in out and "s-ok" in out
    assert not os.path.exists(os.path.join(rootfs, "newfile"))
    # Without it the rootfs is writable, as docker's container root is.
    code, out = _run(agent, "rwfs", "--rootfs", rootfs, script="touch /newfile", sh="/bin/sh")
    assert code == 0, out
    assert os.path.exists(os.path.join(rootfs, "newfile"))
    os.unlink(os.path.join(rootfs, "newfile"))


def test_device_flag_adds_one_node(agent: Agent) -> None:
    script = "stat -c '%F %t:%T' /dev/myzero; head -c 3 /dev/myzero | wc -c; ls -A /dev | wc -l"
    code, out = _run(agent, "dev", "--device", "/dev/zero:/dev/myzero:r", script=script)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == "character special file 1:5"
    assert lines[1] == "3"
    assert int(lines[2]) == len(MINIMAL_DEV) + 1


def test_privileged_sees_host_devices_and_no_masks(agent: Agent) -> None:
    script = "ls /dev/kmsg && echo kmsg; sed 's/^/MI /' /proc/self/mountinfo"
    code, out = _run(agent, "priv", "--privileged", script=script)
    assert code == 0, out
    assert "kmsg" in out
    mi = _mountinfo(out)
    assert "/proc/kcore" not in mi and "/proc/sys" not in mi
    assert "rw" in mi["/sys"]
    assert "ro" in mi["/"]  # the host's files stay read-only even so


def test_bad_mounts_are_one_line_errors_and_leave_nothing(agent: Agent) -> None:
    missing = os.path.join(tempfile.gettempdir(), f"pystats-missing-{uuid.uuid4().hex[:8]}")
    r = agent.cli("run", "--name", "badv", "-v", f"{missing}:/tmp/x", "--", "true")
    assert r.returncode == 125 and "does not exist on the host" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    r = agent.cli("run", "--name", "badt", "-v", "/etc:/no/such/target", "--", "true")
    assert r.returncode == 125 and "does not exist in the host's /" in r.stderr
    r = agent.cli("run", "--name", "badr", "-v", "/etc:x", "--", "true")
    assert r.returncode == 125 and "absolute path" in r.stderr
    for name in ("badv", "badt", "badr"):
        assert not os.path.exists(os.path.join(agent.state, "workloads", name))

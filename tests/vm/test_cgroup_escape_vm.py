"""Cgroup escapes tried from inside real workloads on the VM, default profile and --userns, with
and without --rootfs: a fresh cgroup2 mount, a parent's cgroup.procs, its own memory.max, 60
child cgroups, freezing a sibling; the device program (a disk node made, then refused; /dev/null
usable); the nesting bounds where the workload can mkdir (--privileged); and --userns=auto."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.vm.wlagent import Agent, busybox_rootfs, running_agent
from workloads.lifecycle.idalloc import ALLOC_FILE, POOL_FIRST

pytestmark = pytest.mark.vm
USERNS_BASE = "400000"

# Each attempt prints "<what>:ALLOWED" when it worked; the test wants none of those.
ESCAPES = r"""
b=busybox
echo cg-before=$(cat /proc/self/cgroup)
$b mkdir -p /tmp/cg
$b mount -t cgroup2 none /tmp/cg 2>&1 && echo fresh-mount:ALLOWED
(echo max > /sys/fs/cgroup/memory.max) 2>&1 && echo memory-max:ALLOWED
(echo 1 > /sys/fs/cgroup/cgroup.freeze) 2>&1 && echo self-freeze:ALLOWED
$b umount -l /sys/fs/cgroup 2>&1 && echo umount-cgroup:ALLOWED
$b umount -l /sys 2>&1 && echo umount-sys:ALLOWED
for f in /sys/fs/cgroup/../cgroup.procs /sys/fs/cgroup/cgroup.procs /tmp/cg/cgroup.procs \
         /tmp/cg/../cgroup.procs; do
  [ -e "$f" ] && (echo $$ > "$f") 2>/dev/null && echo "procs $f:ALLOWED"
done
n=0
for i in $($b seq 60); do $b mkdir /sys/fs/cgroup/c$i 2>/dev/null && n=$((n+1)); done
echo children=$n
for f in /sys/fs/cgroup/*/cgroup.freeze /sys/fs/cgroup/../*/cgroup.freeze \
         /tmp/cg/*/cgroup.freeze; do
  [ -e "$f" ] && (echo 1 > "$f") 2>/dev/null && echo "freeze $f:ALLOWED"
done
echo cg-after=$(cat /proc/self/cgroup)
echo hello > /dev/null && echo dev-null:ok
echo zero-bytes=$($b head -c 4 /dev/zero | $b wc -c)
$b mknod /dev/pystats-sda b 8 0 2>&1 && echo mknod:ok
$b head -c 1 /dev/pystats-sda >/dev/null 2>/tmp/disk.err && echo disk-open:ALLOWED
echo disk-error=$(cat /tmp/disk.err)
echo done
"""


@pytest.fixture(scope="module")
def agent() -> Iterator[Agent]:
    with running_agent("pystats-escape-") as a:
        yield a


@pytest.fixture(scope="module")
def rootfs() -> Iterator[str]:
    path = busybox_rootfs()
    os.chmod(path, 0o755)  # reachable from a user namespace (mkdtemp made it 0700)
    os.chmod(os.path.join(path, "tmp"), 0o1777)  # and its /tmp writable there
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def sibling(agent: Agent) -> Iterator[str]:
    """A running workload beside the attacker: it must not be frozen, moved or changed."""
    r = agent.cli("run", "-d", "--name", "sibling", "--", "sleep", "1000")
    assert r.returncode == 0, r.stderr
    yield agent.client.inspect("sibling")["cgroup_path"]
    agent.client.rm("sibling", force=True)


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


@pytest.mark.parametrize(
    ("userns", "with_rootfs"), [(False, False), (False, True), (True, False), (True, True)]
)
def test_escapes_are_refused_from_inside(
    agent: Agent, rootfs: str, sibling: str, userns: bool, with_rootfs: bool
) -> None:
    name = f"esc-{int(userns)}{int(with_rootfs)}"
    flags = ["--userns-base", USERNS_BASE] if userns else []
    if with_rootfs:
        flags += ["--rootfs", rootfs]
    r = agent.cli("run", "--name", name, "--memory", "64M", *flags, "--", "sh", "-c", ESCAPES)
    out = r.stdout
    assert r.returncode == 0 and "done" in out, (out, r.stderr)
    assert ":ALLOWED" not in out, out
    assert "children=0" in out, out
    assert "cg-before=0::/\n" in out and "cg-after=0::/\n" in out, out
    # /dev/null and /dev/zero work; a disk node, if it could be made, cannot be opened.
    assert "dev-null:ok" in out and "zero-bytes=4" in out, out
    if not userns:
        # root with CAP_MKNOD may make the node (b *:* m), as in runc; the device program
        # refuses the open with EPERM (nodev would say EACCES, and /dev is not nodev).
        assert "mknod:ok" in out, out
        assert "disk-error=" in out and "Operation not permitted" in out, out
    # Seen from the host: the limits stand, no child cgroup was made, the sibling runs on.
    info = agent.client.inspect(name)
    cg = info["cgroup_path"]
    assert _read(os.path.join(cg, "memory.max")) == str(64 << 20) + "\n"
    assert _read(os.path.join(cg, "cgroup.max.descendants")) == "32\n"
    assert _read(os.path.join(cg, "cgroup.max.depth")) == "8\n"
    assert not [e for e in os.scandir(cg) if e.is_dir()]
    assert "frozen 0" in _read(os.path.join(sibling, "cgroup.events"))
    assert agent.client.inspect("sibling")["state"] == "running"
    parent = os.path.dirname(cg)
    assert _read(os.path.join(parent, "cgroup.procs")) == ""  # nobody moved up
    agent.client.rm(name)


NESTING = r"""
b=busybox
$b mkdir -p /tmp/cg && $b mount -t cgroup2 none /tmp/cg || echo mount-failed
n=0
for i in $($b seq 60); do $b mkdir /tmp/cg/c$i 2>/dev/null && n=$((n+1)); done
echo children=$n
d=/tmp/cg
for i in $($b seq 12); do $b mkdir $d/d$i 2>/dev/null || break; d=$d/d$i; done
echo depth-reached=$(echo "$d" | $b tr -cd / | $b wc -c)
echo descendants=$(cat /tmp/cg/cgroup.max.descendants)
"""


def test_privileged_workload_meets_the_nesting_bounds(agent: Agent, rootfs: str) -> None:
    # --privileged may mount cgroup2 (its own cgroup namespace shows its own cgroup) and make
    # children: the kernel stops it at cgroup.max.descendants (32) and cgroup.max.depth (8).
    r = agent.cli("run", "--name", "nest", "--privileged", "--rootfs", rootfs, "--",
                  "sh", "-c", NESTING)  # fmt: skip
    out = r.stdout
    assert r.returncode == 0 and "mount-failed" not in out, (out, r.stderr)
    assert "children=32\n" in out, out
    # The 60 children used up all 32 descendants: no depth is left either.
    assert "depth-reached=2\n" in out, out  # "/tmp/cg" alone: no level below could be made
    # Its cgroup namespace's root is its workload cgroup: the bound it sees is the agent's.
    assert "descendants=32" in out, out
    cg = agent.client.inspect("nest")["cgroup_path"]
    assert len([e for e in os.scandir(cg) if e.is_dir()]) == 32
    agent.client.rm("nest")
    assert not os.path.exists(cg)


def test_privileged_depth_bound(agent: Agent, rootfs: str) -> None:
    script = NESTING.replace("$($b seq 60)", "$($b seq 0)")
    r = agent.cli("run", "--name", "deep", "--privileged", "--rootfs", rootfs, "--",
                  "sh", "-c", script)  # fmt: skip
    assert r.returncode == 0, (r.stdout, r.stderr)
    # /tmp/cg is level 0 (the workload cgroup); 8 levels below it may be made, not a 9th.
    assert "depth-reached=10\n" in r.stdout, r.stdout
    agent.client.rm("deep")


def test_a_device_added_with_device_is_usable(agent: Agent) -> None:
    # /dev/kmsg (1:11) is outside the default list: made by hand, it cannot be opened...
    st = os.stat("/dev/kmsg")
    node = f"c {os.major(st.st_rdev)} {os.minor(st.st_rdev)}"
    # (a failed redirection of `:`, a special built-in, would end sh: a subshell takes it)
    probe = f"busybox mknod /dev/k {node}; (true > /dev/k) 2>&1 && echo opened; echo done"
    r = agent.cli("run", "--name", "nodev", "--", "sh", "-c", probe)
    assert r.returncode == 0 and "done" in r.stdout, (r.stdout, r.stderr)
    assert "opened" not in r.stdout and "Operation not permitted" in r.stdout, r.stdout
    agent.client.rm("nodev")
    # ...and usable once --device names it (rwm: the allow-list gains c 1:11).
    probe = "(true > /dev/kmsg) 2>&1 && echo opened; echo done"
    r = agent.cli("run", "--name", "dev", "--device", "/dev/kmsg", "--", "sh", "-c", probe)
    assert r.returncode == 0 and "opened" in r.stdout, (r.stdout, r.stderr)
    agent.client.rm("dev")


def test_userns_auto_gives_each_workload_its_own_range(agent: Agent, rootfs: str) -> None:
    script = "cat /proc/self/uid_map; echo ready; exec sleep 1000"
    names = ["auto-a", "auto-b"]
    for n in names:
        r = agent.cli("run", "-d", "--name", n, "--userns=auto", "--rootfs", rootfs, "--",
                      "sh", "-c", script)  # fmt: skip
        assert r.returncode == 0, r.stderr
    maps = [agent.client.inspect(n)["userns"]["uid_map"] for n in names]
    bases = [int(m.split()[1]) for m in maps]
    assert bases[0] != bases[1] and all(b >= POOL_FIRST and b % 65536 == 0 for b in bases)
    for n, b in zip(names, bases, strict=True):
        pid = agent.client.inspect(n)["pid"]
        status = dict(line.split(":", 1) for line in _read(f"/proc/{pid}/status").splitlines())
        assert status["Uid"].split() == [str(b)] * 4
        assert f"0 {b} 65536" in " ".join(_read(f"/proc/{pid}/uid_map").split())
    alloc = os.path.join(agent.state, ALLOC_FILE)
    assert all(n in _read(alloc) for n in names)
    # rm gives the range back: a new workload gets the lowest free one again.
    agent.client.rm("auto-a", force=True)
    assert "auto-a" not in _read(alloc)
    # sleep through busybox's sh (its applet): the rootfs has no sleep link
    r = agent.cli("run", "-d", "--name", "auto-c", "--userns=auto", "--rootfs", rootfs, "--",
                  "sh", "-c", "exec sleep 1000")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert agent.client.inspect("auto-c")["userns"]["uid_map"] == maps[0]
    # Durable: a restarted agent keeps both ranges and gives a third a distinct one.
    agent.sigkill()
    agent.start()
    # sleep through busybox's sh (its applet): the rootfs has no sleep link
    r = agent.cli("run", "-d", "--name", "auto-d", "--userns=auto", "--rootfs", rootfs, "--",
                  "sh", "-c", "exec sleep 1000")  # fmt: skip
    assert r.returncode == 0, r.stderr
    got = {agent.client.inspect(n)["userns"]["uid_map"] for n in ("auto-b", "auto-c", "auto-d")}
    assert len(got) == 3
    for n in ("auto-b", "auto-c", "auto-d"):
        agent.client.rm(n, force=True)
    assert "auto-" not in _read(alloc)

# ruff: noqa: F811  (pytest fixtures imported from the agent tests are named as parameters)
"""Issue 17.4 against the real agent on this host's v2 tree: -u USER[:GROUP] and --group-add
for workloads without an image, names from the host's files on the host's / and from the
rootfs's own files with --rootfs; a non-root user holds no capability."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from agent.api.client import WorkloadClient
from tests.host.test_agent_host import Agent, agent  # noqa: F401 (a fixture)
from tests.host.test_cli_defects_host import cli, wagent  # noqa: F401 (a fixture)

pytestmark = pytest.mark.host

# The ids and capabilities the workload really has, from its own /proc/self/status.
SHOW = "grep -E '^(Uid|Gid|Groups|CapEff):' /proc/self/status"


def _status(wagent: Agent, name: str, *flags: str, rootfs: str | None = None) -> dict[str, str]:
    extra = ("--rootfs", rootfs) if rootfs else ()
    p = cli(wagent.sock, "run", "--name", name, *extra, *flags, "--", "sh", "-c", SHOW)
    assert p.returncode == 0, p.stderr
    c = WorkloadClient(wagent.sock)
    deadline = time.monotonic() + 30
    while c.inspect(name)["state"] != "exited" and time.monotonic() < deadline:
        time.sleep(0.05)
    out = {}
    for line in p.stdout.splitlines():
        key, _, value = line.partition(":")
        out[key] = " ".join(value.split())
    return out


def test_user_names_from_the_hosts_files_and_numeric_ids(wagent: Agent, host_cgroup: str) -> None:
    wagent.start(wagent.config(host_cgroup))
    st = _status(wagent, "nob", "-u", "nobody")
    assert st["Uid"].split()[0] == "65534" and st["Gid"].split()[0] == "65534", st
    assert st["CapEff"] == "0000000000000000"  # a non-root user holds no capability
    st = _status(wagent, "num", "-u", "4321:8765", "--group-add", "44", "--group-add", "nogroup")
    assert (st["Uid"].split()[0], st["Gid"].split()[0]) == ("4321", "8765")
    assert sorted(st["Groups"].split(), key=int) == ["44", "8765", "65534"]
    st = _status(wagent, "rootadd", "--group-add", "123")  # root keeps root, plus the group
    assert st["Uid"].split()[0] == "0" and "123" in st["Groups"].split()


def test_names_come_from_the_rootfs(wagent: Agent, host_cgroup: str, tmp_path: Path) -> None:
    wagent.start(wagent.config(host_cgroup))
    root = tmp_path / "rootfs"
    for d in ("bin", "proc", "dev", "sys", "tmp", "etc"):
        (root / d).mkdir(parents=True)
    root.chmod(0o755)
    tmp_path.chmod(0o755)
    shutil.copy("/bin/busybox", root / "bin" / "busybox")
    for tool in ("sh", "grep"):
        (root / "bin" / tool).symlink_to("busybox")
    (root / "etc" / "passwd").write_text("root:x:0:0::/:/bin/sh\nweb:x:777:778::/:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\nweb:x:778:\nlogs:x:779:web\nmedia:x:780:\n")
    st = _status(wagent, "rf", "-u", "web", "--group-add", "media", rootfs=str(root))
    assert (st["Uid"].split()[0], st["Gid"].split()[0]) == ("777", "778")
    assert sorted(st["Groups"].split()) == ["778", "779", "780"]
    p = cli(wagent.sock, "run", "--rootfs", str(root), "-u", "nobody", "--", "true")
    assert p.returncode == 125
    assert p.stderr.strip().endswith("user 'nobody' is not in the rootfs's /etc/passwd"), p.stderr
    assert "Traceback" not in p.stderr

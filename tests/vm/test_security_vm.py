"""The security profile seen from inside real workloads on the VM: docker's 14 capabilities in all
five sets, no_new_privs, the seccomp filter in force (refusing a syscall root could otherwise
make), with and without --userns and --rootfs; and each way out doing what it says."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator

import pytest

from tests.vm.wlagent import Agent, busybox_rootfs, running_agent
from workloads.runtime import security

pytestmark = pytest.mark.vm
DEFAULT = 0x00000000A80425FB
SYS_ADMIN = 1 << 21
SETS = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")
USERNS_BASE = "300000"
# The status lines, then swapoff of a missing file: seccomp's EPERM, or the kernel's ENOENT.
PROBE = "cat /proc/self/status; busybox swapoff /nonexistent 2>&1; echo swapoff-done"


@pytest.fixture(scope="module")
def agent() -> Iterator[Agent]:
    with running_agent("pystats-security-") as a:
        yield a


@pytest.fixture(scope="module")
def rootfs() -> Iterator[str]:
    path = busybox_rootfs()
    os.chmod(path, 0o755)  # mkdtemp's 0700 would keep the --userns root out
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _run(agent: Agent, name: str, *flags: str, script: str = PROBE) -> tuple[dict[str, str], str]:
    """`pystats run` to the end; the workload's /proc/self/status fields and its whole output."""
    r = agent.cli("run", "--name", name, *flags, "--", "sh", "-c", script)
    assert r.returncode == 0, (r.stdout, r.stderr)
    status = {}
    for line in r.stdout.splitlines():
        key, sep, value = line.partition(":\t")
        if sep:
            status[key] = value.strip()
    return status, r.stdout


def _sets(status: dict[str, str]) -> set[int]:
    return {int(status[s], 16) for s in SETS}


def _own_bounding() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1], 16) for line in f if line.startswith("CapBnd:"))


@pytest.mark.parametrize(
    ("userns", "with_rootfs"), [(False, False), (False, True), (True, False), (True, True)]
)
def test_default_profile_from_inside(
    agent: Agent, rootfs: str, userns: bool, with_rootfs: bool
) -> None:
    flags = ["--userns-base", USERNS_BASE] if userns else []
    if with_rootfs:
        flags += ["--rootfs", rootfs]
    name = f"d-{int(userns)}{int(with_rootfs)}"
    status, out = _run(agent, name, *flags)
    assert _sets(status) == {DEFAULT}, status
    assert status["Seccomp"] == "2" and status["NoNewPrivs"] == "1", status
    # swapoff is one the profile refuses outright: EPERM, not the kernel's ENOENT.
    assert "swapoff: /nonexistent: Operation not permitted" in out, out
    assert agent.client.inspect(name)["exit_code"] == 0


def test_privileged_keeps_every_capability_and_no_filter(agent: Agent) -> None:
    status, out = _run(agent, "priv", "--privileged")
    assert _sets(status) == {_own_bounding()}, status
    assert status["Seccomp"] == "0"
    assert "swapoff: /nonexistent: No such file or directory" in out, out


def test_cap_add_sys_admin_and_the_filter_still_refuses(agent: Agent) -> None:
    script = PROBE + "; busybox mount -t tmpfs none /tmp && echo mounted"
    status, out = _run(agent, "admin", "--cap-add", "sys_admin", script=script)
    assert _sets(status) == {DEFAULT | SYS_ADMIN}
    assert "mounted" in out, out  # the capability works...
    assert "swapoff: /nonexistent: Operation not permitted" in out, out  # ...the filter holds
    # The same without the filter: now the kernel itself answers.
    status, out = _run(
        agent, "admin-unconfined", "--cap-add", "SYS_ADMIN", "--security-opt",
        "seccomp=unconfined",
    )  # fmt: skip
    assert status["Seccomp"] == "0" and status["NoNewPrivs"] == "1"
    assert "swapoff: /nonexistent: No such file or directory" in out, out


def test_cap_drop(agent: Agent) -> None:
    status, _ = _run(agent, "none", "--cap-drop", "ALL")
    assert _sets(status) == {0}
    status, _ = _run(agent, "kill-only", "--cap-drop", "all", "--cap-add", "CAP_KILL")
    assert _sets(status) == {1 << 5}
    status, _ = _run(agent, "no-raw", "--cap-drop", "NET_RAW")
    assert _sets(status) == {DEFAULT & ~(1 << 13)}


def test_no_new_privileges_false(agent: Agent) -> None:
    status, _ = _run(agent, "nnp-off", "--security-opt", "no-new-privileges=false")
    assert status["NoNewPrivs"] == "0" and status["Seccomp"] == "2"
    assert _sets(status) == {DEFAULT}


def test_a_profile_file_and_a_bad_one(agent: Agent) -> None:
    path = os.path.join(agent.state, "deny-mkdir.json")
    with open(path, "w") as f:
        json.dump(
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [
                    {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}
                ],
            },
            f,
        )
    script = "grep Seccomp: /proc/self/status; mkdir /tmp/x 2>&1; echo done"
    _, out = _run(agent, "file", "--security-opt", f"seccomp={path}", script=script)
    assert "Seccomp:\t2" in out and "Permission denied" in out, out
    bad = os.path.join(agent.state, "bad.json")
    with open(bad, "w") as f:
        f.write('{"defaultAction": "SCMP_ACT_SOMETIMES"}')
    r = agent.cli("run", "--security-opt", f"seccomp={bad}", "--", "true")
    assert r.returncode == 125
    line = r.stderr.strip()
    assert "\n" not in line and bad in line and "defaultAction must be one of" in line, line


def test_compiled_once_into_the_state_cache(agent: Agent) -> None:
    def programs() -> set[str]:
        return {f for f in os.listdir(security.cache_dir(agent.state)) if f.endswith(".bpf")}

    before = programs()
    assert before  # the default set's, compiled when the agent started
    status, _ = _run(agent, "time-1", "--cap-add", "SYS_TIME")
    assert status["Seccomp"] == "2"
    added = programs() - before
    assert len(added) == 1, added  # a new capability set: compiled once, by the shim
    _run(agent, "time-2", "--cap-add", "SYS_TIME")
    assert programs() - before == added  # the second launch read it

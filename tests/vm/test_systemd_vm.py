"""deploy/systemd/pystats-agent.service under a real systemd (Debian 12's systemd 252, PID 1 of
a container inside the test VM: scripts/vm-systemd-container).

The unit file is used as shipped; the container gives it what it names: /opt/pystats/venv (this
checkout's .venv) and /etc/pystats/agent.yaml. Checked: Type=notify (active only once the agent
said READY=1, accepted from the main process), WatchdogSec (pings arrive), Delegate=yes with
the layout the agent picks for this systemd, LimitNOFILE, no device allow-list reaching
workloads, and KillMode=process: a workload launched with the CLI survives `systemctl restart`
(the new agent adopts it) and `systemctl stop` (which ends the agent with status 0).

This test found that systemd 252 could not start the agent again while a workload ran: it puts
the new agent into the unit's cgroup, where the agent had enabled controllers for workloads/
("Failed to attach to cgroup ...: Device or resource busy", status=219/CGROUP). The unit now
asks for DelegateSubgroup=agent (systemd >= 254), and on older systemd the agent keeps its
subtree out of the unit's cgroup. Timeouts are generous: the VM is software-emulated."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import envcheck
from tests.vm.promserver import free_port, wait_for

pytestmark = [pytest.mark.vm, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
UNIT_FILE = REPO / "deploy" / "systemd" / "pystats-agent.service"
CONTAINER = REPO / "scripts" / "vm-systemd-container"
PYSTATS = Path(sys.executable).parent / "pystats"
SERVICE = "pystats-agent.service"
SYSTEMD = "/lib/systemd/systemd"
# The container's default target: nothing but systemd itself, so it is up in seconds.
TEST_TARGET = "[Unit]\nDescription=pystats systemd test\nDefaultDependencies=no\n"


class Container:
    """systemd as PID 1 of a container whose cgroup namespace root is ``cgroup``."""

    def __init__(self, cgroup: str, pid: int) -> None:
        self.cgroup = cgroup
        self.pid = pid  # systemd, in the VM's pid namespace
        self.root = Path(f"/proc/{pid}/root")  # the container's file system, seen from the VM

    def run(self, *args: str, timeout: float = 180.0) -> subprocess.CompletedProcess[str]:
        """A command inside every namespace of the container."""
        env = {k: v for k, v in os.environ.items() if k != "PYSTATS_SOCKET"}
        return subprocess.run(
            ["nsenter", "-t", str(self.pid), "-a", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )

    def ok(self, *args: str, timeout: float = 180.0) -> str:
        r = self.run(*args, timeout=timeout)
        if r.returncode != 0:
            print(f"{args}: status {r.returncode}\n{r.stdout}\n{r.stderr}\n{self.journal()}")
        assert r.returncode == 0, (args, r.returncode, r.stderr)
        return r.stdout

    def show(self, *props: str) -> dict[str, str]:
        out = self.ok("systemctl", "show", "-p", ",".join(props), SERVICE)
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def cli(self, *args: str) -> str:
        return self.ok(str(PYSTATS), *args)

    def ps(self) -> dict[str, dict[str, object]]:
        return {w["name"]: w for w in json.loads(self.cli("ps", "-a", "--json"))}

    def alive(self, pid: int) -> bool:
        r = self.run("kill", "-0", str(pid))
        return r.returncode == 0

    def journal(self) -> str:
        r = subprocess.run(
            ["nsenter", "-t", str(self.pid), "-a", "journalctl", "--no-pager", "-n", "80"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        return r.stdout[-6000:]

    @property
    def service_cgroup(self) -> str:
        return os.path.join(self.cgroup, "system.slice", SERVICE)


def _controllers(cgroup: str, file: str) -> set[str]:
    with open(os.path.join(cgroup, file)) as f:
        return set(f.read().split())


def _systemd_pid(launcher: subprocess.Popen[bytes]) -> int | None:
    """The container's PID 1: unshare's child once it has exec'd systemd."""
    with open(f"/proc/{launcher.pid}/task/{launcher.pid}/children") as f:
        children = f.read().split()
    for child in children:
        with open(f"/proc/{child}/comm") as f:
            if f.read().strip() == "systemd":
                return int(child)
    return None


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Container]:
    root = envcheck.require_vm()
    missing = [t for t in ("nsenter", "unshare") if shutil.which(t) is None]
    if missing or not os.access(SYSTEMD, os.X_OK):
        envcheck.unavailable(f"needs systemd ({SYSTEMD}) and util-linux {' '.join(missing)}")
    with open(os.path.join(root, "cgroup.subtree_control"), "w") as f:
        f.write("+cpu +memory +pids")
    cgroup = os.path.join(root, f"pystats-systemd-{uuid.uuid4().hex[:6]}")
    os.mkdir(cgroup)
    units = tmp_path / "units"
    units.mkdir()
    shutil.copy(UNIT_FILE, units / SERVICE)
    (units / "pystats-test.target").write_text(TEST_TARGET)
    log = tmp_path / "container.log"
    with open(log, "wb") as out:
        launcher = subprocess.Popen(
            [str(CONTAINER), cgroup, str(units)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while (pid := _systemd_pid(launcher)) is None:
            assert launcher.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        c = Container(cgroup, pid)
        while (state := c.run("systemctl", "is-system-running")).stdout.strip() != "running":
            assert time.monotonic() < deadline + 120, (state, log.read_text(), c.journal())
            time.sleep(0.5)
        yield c
    finally:
        # Everything the test started lives in that cgroup: systemd, the agent, shims, workloads.
        with open(os.path.join(cgroup, "cgroup.kill"), "w") as f:
            f.write("1")
        try:
            launcher.wait(timeout=60)
        finally:
            if launcher.poll() is None:
                launcher.send_signal(signal.SIGKILL)
                launcher.wait()
        envcheck._kill_and_remove(cgroup)
        assert not os.path.exists(cgroup), log.read_text(errors="replace")


def test_unit_under_real_systemd(container: Container) -> None:
    c = container
    # What ExecStart names: the config, written into the container's /etc.
    etc = c.root / "etc" / "pystats"
    etc.mkdir()
    (etc / "agent.yaml").write_text(
        f"interval: 1s\nmetrics_listen: 127.0.0.1:{free_port()}\nlog_level: info\n"
    )

    # 1. Type=notify: activating (agent running, no status yet) until READY=1, then active.
    assert c.show("Type", "NotifyAccess") == {"Type": "notify", "NotifyAccess": "main"}
    c.ok("systemctl", "start", "--no-block", SERVICE)
    props = ("ActiveState", "SubState", "MainPID", "StatusText")
    seen: list[dict[str, str]] = []
    t0 = time.monotonic()
    deadline = t0 + 240
    while time.monotonic() < deadline:
        seen.append(c.show(*props))
        if seen[-1]["ActiveState"] in ("active", "failed"):
            break
        time.sleep(0.3)
    now = seen[-1]
    print(f"activating -> {now['ActiveState']} after {time.monotonic() - t0:.0f} s")
    if now["ActiveState"] != "active":
        print(f"states seen: {seen}\njournal:\n{c.journal()}")  # shown with the failure
    assert now["ActiveState"] == "active" and now["SubState"] == "running", seen[-3:]
    # STATUS=collecting comes in the READY=1 datagram: systemd took it from the main process.
    assert now["StatusText"] == "collecting"
    main_pid = int(now["MainPID"])
    starting = [s for s in seen if s["ActiveState"] == "activating"]
    assert starting, seen  # the TCG VM takes many seconds from exec to the first tick
    assert all(s["SubState"] == "start" and s["StatusText"] == "" for s in starting), starting
    assert any(int(s["MainPID"]) == main_pid for s in starting), starting
    times = c.show(
        "ExecMainStartTimestampMonotonic",
        "ActiveEnterTimestampMonotonic",
        "WatchdogTimestampMonotonic",
    )
    started = int(times["ExecMainStartTimestampMonotonic"])
    assert 0 < started < int(times["ActiveEnterTimestampMonotonic"]), times
    # systemd arms the watchdog when the service becomes ready.
    assert int(times["WatchdogTimestampMonotonic"]) > started, times

    # 2. Delegate=yes. With DelegateSubgroup=agent (systemd >= 254) systemd starts the agent in
    # <unit>/agent and the agent's subtree is the unit's cgroup. systemd 252 ignores it and
    # starts the agent in the unit's cgroup itself: the agent then leaves that cgroup without
    # controllers (else systemd could not start it again while workloads run, 219/CGROUP) and
    # keeps its subtree in /sys/fs/cgroup/pystats, as outside systemd.
    version = int(c.ok("systemctl", "--version").split()[1])
    svc = c.service_cgroup
    assert os.getxattr(svc, "trusted.delegate") == b"1"
    own = c.ok("cat", f"/proc/{main_pid}/cgroup").strip()
    if version >= 254:
        assert own == f"0::/system.slice/{SERVICE}/agent", own
        tree = svc
    else:
        assert own == f"0::/system.slice/{SERVICE}", own
        assert _controllers(svc, "cgroup.subtree_control") == set()
        tree = os.path.join(c.cgroup, "pystats")
    for child in ("workloads", "policies"):
        assert {"cpu", "memory", "pids"} <= _controllers(
            os.path.join(tree, child), "cgroup.controllers"
        )
    limits = c.ok("cat", f"/proc/{main_pid}/limits")
    assert any(
        line.startswith("Max open files") and line.split()[3:5] == ["262144", "262144"]
        for line in limits.splitlines()
    ), limits

    # 3. A workload from the CLI, through the agent's socket in the unit's RuntimeDirectory. It
    # can open a device beyond the standard few when --device names it: the unit sets no device
    # allow-list, which every workload would inherit. (Opened for writing: reading /dev/kmsg
    # needs CAP_SYSLOG under Debian's kernel.dmesg_restrict=1, which a workload rightly lacks.)
    script = ": > /dev/kmsg && echo kmsg-opened; exec sleep 900"
    c.cli(
        "run",
        "-d",
        "--name",
        "sd-w1",
        "--memory",
        "64M",
        "--device",
        "/dev/kmsg",
        "--",
        "sh",
        "-c",
        script,
    )
    w = c.ps()["sd-w1"]
    assert w["state"] == "running", w
    wpid = int(w["pid"])  # type: ignore[call-overload]
    memory_max = os.path.join(tree, "workloads", "sd-w1", "memory.max")
    with open(memory_max) as f:
        assert f.read().strip() == str(64 * 1024 * 1024)
    try:
        wait_for("its output", lambda: "kmsg-opened" in c.cli("logs", "sd-w1"), timeout=60)
    except AssertionError:  # say what it printed and how it runs
        r = c.run(str(PYSTATS), "logs", "sd-w1")
        print(f"logs: {r.stdout!r} {r.stderr!r}\ninspect: {c.cli('inspect', 'sd-w1')}")
        print(c.run("cat", f"/proc/{wpid}/status").stdout, c.journal())
        raise

    # A restart while the workload runs (KillMode=process): systemd starts a new agent, which
    # adopts the workload, limits unchanged.
    c.ok("systemctl", "restart", SERVICE, timeout=240)
    now = c.show(*props)
    assert now["ActiveState"] == "active" and now["SubState"] == "running", (now, c.journal())
    assert now["StatusText"] == "collecting"
    new_pid = int(now["MainPID"])
    assert new_pid != main_pid and not c.alive(main_pid)
    w = c.ps()["sd-w1"]
    assert w["state"] == "running" and w["pid"] == wpid, w
    with open(memory_max) as f:
        assert f.read().strip() == str(64 * 1024 * 1024)

    # WatchdogSec=30s: the agent pets the watchdog every 15 s while it collects.
    assert c.show("WatchdogUSec") == {"WatchdogUSec": "30s"}
    armed = int(c.show("WatchdogTimestampMonotonic")["WatchdogTimestampMonotonic"])
    wait_for(
        "a watchdog ping",
        lambda: int(c.show("WatchdogTimestampMonotonic")["WatchdogTimestampMonotonic"]) > armed,
        timeout=45,
    )

    # 4. KillMode=process: `systemctl stop` ends the agent (status 0) and leaves the workload.
    c.ok("systemctl", "stop", SERVICE, timeout=120)
    now = c.show("ActiveState", "SubState", "Result", "ExecMainStatus", "MainPID")
    assert now == {
        "ActiveState": "inactive",
        "SubState": "dead",
        "Result": "success",
        "ExecMainStatus": "0",
        "MainPID": "0",
    }, (now, c.journal())
    assert not c.alive(new_pid)
    assert c.alive(wpid)
    with open(os.path.join(tree, "workloads", "sd-w1", "cgroup.procs")) as f:
        assert f.read().split(), "the workload's cgroup is empty after the agent stopped"
    # Cleanup: the workload and its shim by cgroup.kill, then every cgroup (the fixture).
    with open(os.path.join(tree, "cgroup.kill"), "w") as f:
        f.write("1")
    wait_for("the workload to be killed", lambda: not c.alive(wpid), timeout=60)

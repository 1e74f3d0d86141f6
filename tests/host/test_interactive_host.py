"""Issue 17.1 against the real agent on this host: `pystats exec` (the workload's PID 1,
hostname, cgroup, capability sets, exit codes, -e/-w/-u, stdin), `run -it` driven through a pty
(type, read, detach with ctrl-p ctrl-q, attach again, exit), and exec into a --userns workload."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.api.client import WorkloadClient
from tests.host.test_agent_host import Agent, agent  # noqa: F401 (a fixture)

pytestmark = pytest.mark.host
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def wagent(agent: Agent, host_cgroup: str) -> Iterator[Agent]:  # noqa: F811
    agent.start(agent.config(host_cgroup))
    yield agent
    if agent.proc is not None and agent.proc.poll() is None:
        for w in WorkloadClient(agent.sock).listing(all_=True):
            WorkloadClient(agent.sock).rm(w["name"], force=True)


def cli(sock: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent.cli", *args],
        cwd=REPO,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYSTATS_SOCKET=sock),
        timeout=60,
    )


def _status_field(pid: int, field: str) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return line.split()[1]
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def _running(sock: str, body: dict[str, object]) -> dict[str, object]:
    c = WorkloadClient(sock)
    c.create(body)
    name = str(body["name"])
    deadline = time.monotonic() + 30
    while (info := c.inspect(name))["state"] != "running" or not info["pid"]:
        assert time.monotonic() < deadline, info
        time.sleep(0.1)
    time.sleep(0.3)  # past the runtime's setup: its namespaces are in place
    return info


def test_exec_enters_the_workload_with_its_profile(wagent: Agent) -> None:
    info = _running(wagent.sock, {"name": "ex1", "hostname": "box-one", "argv": ["sleep", "1000"]})
    s = wagent.sock
    p = cli(s, "exec", "ex1", "cat", "/proc/1/cmdline")
    assert p.returncode == 0 and p.stdout.split("\0")[0] == "sleep", p
    p = cli(s, "exec", "ex1", "hostname")
    assert (p.returncode, p.stdout.strip()) == (0, "box-one"), p
    p = cli(s, "exec", "ex1", "cat", "/proc/self/cgroup")
    assert "0::/" in p.stdout.splitlines(), p  # its cgroup, seen through its cgroup namespace
    bg = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "exec", "ex1", "sleep", "3"],
        cwd=REPO,
        env=dict(os.environ, PYSTATS_SOCKET=s),
    )
    deadline = time.monotonic() + 10
    while len(WorkloadClient(s)._json("GET", "/v1/workloads/ex1/top")["pids"]) < 2:
        assert time.monotonic() < deadline, "the exec'd process never joined the cgroup"
        time.sleep(0.1)
    assert bg.wait(timeout=20) == 0
    p = cli(s, "exec", "ex1", "grep", "-E", "^(Cap|NoNewPrivs|Seccomp:)", "/proc/self/status")
    mine = dict(line.split(":\t") for line in p.stdout.strip().splitlines())
    pid = int(str(info["pid"]))
    for field in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp"):
        assert mine[field] == _status_field(pid, field), (field, mine, p.stderr)
    assert mine["Seccomp"] == "2" and mine["NoNewPrivs"] == "1"
    p = cli(s, "exec", "ex1", "sh", "-c", "ulimit -n")
    assert (
        p.stdout.strip()
        == Path(f"/proc/{pid}/limits").read_text().split("Max open files")[1].split()[0]
    ), p
    # exit codes as docker's
    assert cli(s, "exec", "ex1", "sh", "-c", "exit 3").returncode == 3
    p = cli(s, "exec", "ex1", "no-such-command")
    assert p.returncode == 127 and "command not found" in p.stderr, p
    assert cli(s, "exec", "ex1", "/etc/hostname").returncode == 126
    p = cli(s, "exec", "-e", "GREETING=hey", "-w", "/tmp", "ex1", "sh", "-c", "echo $GREETING; pwd")
    assert p.stdout.split() == ["hey", "/tmp"], p
    p = cli(s, "exec", "-u", "nobody", "ex1", "sh", "-c", "id -u; grep CapEff /proc/self/status")
    assert p.stdout.split()[:1] == ["65534"] and p.stdout.split()[-1:] == ["0" * 16], p
    p = cli(s, "exec", "-u", "no-such-user", "ex1", "true")
    assert p.returncode == 125 and "unable to find user no-such-user" in p.stderr, p
    # stdout and stderr kept apart; -i passes stdin through to EOF
    p = cli(s, "exec", "ex1", "sh", "-c", "echo out; echo err >&2")
    assert (p.stdout, p.stderr) == ("out\n", "err\n"), p
    p = cli(s, "exec", "-i", "ex1", "tr", "a-z", "A-Z", stdin="hello\n")
    assert (p.returncode, p.stdout) == (0, "HELLO\n"), p
    # the exec'd process ran in the workload's cgroup: the workload is alone there again
    assert WorkloadClient(s).inspect("ex1")["state"] == "running"
    p = cli(s, "exec", "nope", "true")
    assert p.returncode == 125 and "no such workload" in p.stderr, p
    assert "Traceback" not in wagent.log.read_text()


def test_exec_into_a_userns_workload(wagent: Agent) -> None:
    info = _running(
        wagent.sock,
        {"name": "ux", "userns": True, "userns_base": 300000, "argv": ["sleep", "1000"]},
    )
    s = wagent.sock
    p = cli(s, "exec", "ux", "cat", "/proc/self/uid_map")
    assert p.stdout.split() == ["0", "300000", "65536"], p
    p = cli(s, "exec", "ux", "sh", "-c", "id -u; grep CapEff /proc/self/status; sleep 0.5")
    assert p.stdout.split()[0] == "0", p
    assert p.stdout.split()[-1] == _status_field(int(str(info["pid"])), "CapEff"), p


class Term:
    """The CLI under a pty, as a user's terminal."""

    def __init__(self, sock: str, *args: str) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.chdir(REPO)
            os.environ["PYSTATS_SOCKET"] = sock
            os.execv(sys.executable, [sys.executable, "-m", "agent.cli", *args])
        self.seen = b""

    def type(self, text: bytes) -> None:
        os.write(self.fd, text)

    def expect(self, what: bytes, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while what not in self.seen:
            left = deadline - time.monotonic()
            assert left > 0, (what, self.seen[-500:])
            if select.select([self.fd], [], [], left)[0]:
                try:
                    self.seen += os.read(self.fd, 4096)
                except OSError:
                    break
        assert what in self.seen, (what, self.seen[-500:])

    def wait(self, timeout: float = 20) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with_status = os.waitpid(self.pid, os.WNOHANG)
            if with_status[0]:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(with_status[1])
            if select.select([self.fd], [], [], 0.1)[0]:
                with contextlib.suppress(OSError):
                    self.seen += os.read(self.fd, 4096)
        raise AssertionError(f"the CLI did not exit: {self.seen[-500:]!r}")


def test_run_it_detach_attach_exit(wagent: Agent) -> None:
    t = Term(wagent.sock, "run", "-it", "--name", "tty1", "--hostname", "ttybox", "--", "sh")
    t.type(b"echo hi$((1+1)); hostname\r")
    t.expect(b"hi2")
    t.expect(b"ttybox")
    t.type(b"\x10\x11")  # ctrl-p ctrl-q
    assert t.wait() == 0
    assert WorkloadClient(wagent.sock).inspect("tty1")["state"] == "running"
    t = Term(wagent.sock, "attach", "tty1")
    time.sleep(0.5)
    t.type(b"tty; echo again$((2+2))\r")
    t.expect(b"again4")
    assert b"/dev/" in t.seen or b"not a tty" in t.seen  # stdin is a terminal
    t.type(b"exit 7\r")
    assert t.wait() == 7
    p = cli(wagent.sock, "logs", "tty1")
    assert "hi2" in p.stdout and "again4" in p.stdout, p


def test_exec_it_and_custom_detach_keys(wagent: Agent) -> None:
    _running(wagent.sock, {"name": "tty2", "argv": ["sleep", "1000"]})
    t = Term(wagent.sock, "exec", "-it", "--detach-keys", "ctrl-x", "tty2", "sh")
    t.type(b"stty size; echo in$((3*3))\r")
    t.expect(b"in9")
    t.type(b"\x18")
    assert t.wait() == 0
    t = Term(wagent.sock, "exec", "-it", "tty2", "sh")
    t.type(b"echo ready$((1+4))\r")
    t.expect(b"ready5")
    fcntl.ioctl(t.fd, termios.TIOCSWINSZ, struct.pack("HHHH", 41, 103, 0, 0))  # SIGWINCH
    time.sleep(1)
    t.type(b"stty size\r")
    t.expect(b"41 103")
    t.type(b"exit\r")
    assert t.wait() == 0
    t = Term(wagent.sock, "exec", "-it", "tty2", "sh", "-c", "read x; exit $x")
    time.sleep(0.5)
    t.type(b"5\r")
    assert t.wait() == 5


def test_run_i_pipes_stdin_to_eof(wagent: Agent) -> None:
    p = cli(wagent.sock, "run", "-i", "--name", "pipe1", "--", "tr", "a-z", "A-Z", stdin="hey\n")
    assert (p.returncode, p.stdout) == (0, "HEY\n"), p
    p = cli(wagent.sock, "run", "-i", "--name", "pipe2", "--", "sh", "-c", "cat; exit 4", stdin="x")
    assert (p.returncode, p.stdout) == (4, "x"), p
    p = cli(wagent.sock, "attach", "pipe1")  # exited: nothing to attach to
    assert p.returncode == 1 and "is not running" in p.stderr, p


def test_stdin_beyond_a_pipe_buffer_waits_in_the_shim(wagent: Agent) -> None:
    """300 KB to a process that reads late: the shim holds it without blocking its loop."""
    _running(wagent.sock, {"name": "slow", "argv": ["sleep", "1000"]})
    data = "x" * 300_000
    p = cli(wagent.sock, "exec", "-i", "slow", "sh", "-c", "sleep 2; wc -c", stdin=data)
    assert (p.returncode, p.stdout.strip()) == (0, "300000"), p


def test_a_terminal_outlives_the_agent(wagent: Agent, host_cgroup: str) -> None:
    """The pty is the shim's: after the agent restarts, attach finds the same shell."""
    p = cli(wagent.sock, "run", "-dit", "--name", "keep", "--", "sh")
    assert p.returncode == 0, p
    t = Term(wagent.sock, "attach", "keep")
    time.sleep(0.5)
    t.type(b"X=kept$((5+5))\r")
    t.type(b"\x10\x11")
    assert t.wait() == 0
    wagent.stop()
    wagent.start(wagent.config(host_cgroup))
    t = Term(wagent.sock, "attach", "keep")
    time.sleep(0.5)
    t.type(b"echo $X\r")
    t.expect(b"kept10")
    t.type(b"exit 0\r")
    assert t.wait() == 0


def test_a_shim_without_the_channel_is_followed_or_refused(wagent: Agent) -> None:
    """A workload whose shim has no stdio.sock (an older pystats's): attach follows its log as
    before, exec says why it cannot."""
    _running(wagent.sock, {"name": "old", "argv": ["sh", "-c", "sleep 2; echo late"]})
    os.unlink(os.path.join(wagent.state, "workloads", "old", "stdio.sock"))
    p = cli(wagent.sock, "attach", "old")
    assert (p.returncode, p.stdout) == (0, "late\n"), p
    _running(wagent.sock, {"name": "old2", "argv": ["sleep", "100"]})
    os.unlink(os.path.join(wagent.state, "workloads", "old2", "stdio.sock"))
    p = cli(wagent.sock, "exec", "old2", "true")
    assert p.returncode == 125 and "has no stdio channel" in p.stderr, p

"""The real agent on this host's v2 tree: who may use its socket, one agent per state directory
and cgroup root, and bad requests answered 400 without a traceback in its log (issue 14.9)."""

from __future__ import annotations

import contextlib
import grp
import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent import pidlock
from tests.unixhttp import UnixHTTPConnection

pytestmark = pytest.mark.host

BIN = Path(sys.executable).parent
NOBODY = 65534
API_GROUP = "daemon"  # gid 1 on Debian: a group the unprivileged peer is not in by default


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Agent:
    tmp: Path
    root: str  # its cgroup root
    state: str
    sock: str
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.tmp / f"agent-{os.path.basename(self.state)}.log"

    def config(self, collect: str, extra: str = "") -> Path:
        path = self.tmp / f"agent-{os.path.basename(self.state)}.yaml"
        path.write_text(
            f"root: {self.root}\ncollect_root: {collect}\nstate_dir: {self.state}\n"
            f"socket: {self.sock}\nmetrics_listen: 127.0.0.1:{_port()}\ninterval: 1s\n" + extra
        )
        return path

    def run(self, config: Path) -> subprocess.Popen[bytes]:
        with open(self.log, "ab") as log:
            return subprocess.Popen(
                [str(BIN / "pystats-agent"), "--config", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def start(self, config: Path) -> None:
        self.proc = self.run(config)
        deadline = time.monotonic() + 60
        while request(self.sock, "GET", "/v1/workloads")[0] != 200:
            assert self.proc.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, "the agent's API did not answer"
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)


def request(sock: str, method: str, path: str, body: bytes | None = None) -> tuple[int, str]:
    """(status, body) of one request, (0, why) when the socket does not answer."""
    conn = UnixHTTPConnection(sock, timeout=10)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    except (OSError, http.client.HTTPException) as e:
        return 0, str(e)
    finally:
        conn.close()


@pytest.fixture
def agent(host_cgroup: str, tmp_path: Path, open_dir: Path) -> Iterator[Agent]:
    a = Agent(tmp_path, f"{host_cgroup}/agent", str(tmp_path / "state"), str(open_dir / "a.sock"))
    try:
        yield a
    finally:
        a.stop()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(pidlock.root_lock_path(a.root))


def _as_nobody(sock: str, groups: list[int]) -> tuple[int, str]:
    """GET /v1/workloads from a forked child that dropped to uid/gid 65534 (+ ``groups``)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no Python cleanup, no pytest machinery
        try:
            os.close(r)
            os.setgroups(groups)
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            os.write(w, json.dumps(request(sock, "GET", "/v1/workloads")).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        out = f.read()
    os.waitpid(pid, 0)
    status, text = json.loads(out)
    return int(status), str(text)


def test_peer_credentials_are_checked_whatever_the_socket_mode(
    agent: Agent, host_cgroup: str
) -> None:
    # 0660 for nogroup: uid 65534 may open the socket, so only SO_PEERCRED can refuse it.
    agent.start(
        agent.config(
            host_cgroup, f"socket_mode: 0660\nsocket_group: nogroup\napi_group: {API_GROUP}\n"
        )
    )
    st = os.stat(agent.sock)
    assert (st.st_mode & 0o777, st.st_gid) == (0o660, NOBODY)
    status, text = _as_nobody(agent.sock, [])
    assert status == 403, text
    assert f"uid {NOBODY} may not use the pystats API" in text
    status, text = _as_nobody(agent.sock, [grp.getgrnam(API_GROUP).gr_gid])
    assert (status, text) == (200, "[]")
    assert request(agent.sock, "GET", "/v1/workloads") == (200, "[]")  # root


def test_a_second_agent_refuses_to_start_and_names_the_first(
    agent: Agent, host_cgroup: str, tmp_path: Path, open_dir: Path
) -> None:
    agent.start(agent.config(host_cgroup))
    assert agent.proc is not None
    first = agent.proc.pid
    cases = [  # (state dir, cgroup root, socket) of the second agent, and what it must say
        (agent.state, f"{host_cgroup}/other", str(open_dir / "b.sock"), "state directory"),
        (str(tmp_path / "s2"), agent.root, str(open_dir / "c.sock"), "cgroup root"),
    ]
    for state, root, sock, what in cases:
        second = Agent(tmp_path, root, state, sock)
        cfg = second.config(host_cgroup)
        proc = second.run(cfg)
        assert proc.wait(60) == 2
        log = second.log.read_text()
        assert f"another pystats agent (PID {first}) already uses {what}" in log, log
        assert "Traceback" not in log
        assert not os.path.exists(sock)  # it touched nothing
    # Another state dir and root, but the first's socket: refused, the socket left alone.
    third = Agent(tmp_path, f"{host_cgroup}/third", str(tmp_path / "s3"), agent.sock)
    try:
        proc = third.run(third.config(host_cgroup))
        assert proc.wait(60) == 2
        assert "another server is listening on this socket" in third.log.read_text()
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(pidlock.root_lock_path(third.root))
    assert request(agent.sock, "GET", "/v1/workloads") == (200, "[]")
    assert agent.proc.poll() is None


def test_bad_requests_are_400_and_leave_no_traceback(agent: Agent, host_cgroup: str) -> None:
    agent.start(agent.config(host_cgroup))
    bad = [
        ("POST", "/v1/workloads", b'{"argv": ["true"], "workdir": 1}', "workdir must be a string"),
        ("POST", "/v1/workloads", b'{"argv": ["true"], "hostname": [1]}', "hostname must be"),
        ("POST", "/v1/workloads", b'{"argv": ["true"], "rootfs": false}', "rootfs must be"),
        ("POST", "/v1/workloads", b"{not json", "not valid JSON"),
        ("POST", "/v1/workloads/ghost/kill?signal=99999", None, "unknown signal '99999'"),
    ]
    for method, path, body, message in bad:
        status, text = request(agent.sock, method, path, body)
        assert status == 400, (path, body, text)
        assert message in json.loads(text)["error"]
    # A client that leaves in the middle of its body.
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(agent.sock)
        s.sendall(b"POST /v1/workloads HTTP/1.1\r\nHost: a\r\nContent-Length: 500\r\n\r\n{")
    deadline = time.monotonic() + 20
    while "left before sending its whole request" not in agent.log.read_text():
        assert time.monotonic() < deadline, agent.log.read_text()
        time.sleep(0.2)
    assert request(agent.sock, "GET", "/v1/workloads") == (200, "[]")
    log = agent.log.read_text()
    assert "Traceback" not in log and "Error handling request" not in log, log

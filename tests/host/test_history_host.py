"""The real agent records this host's v2 tree: `pystats stats --at` reads the ticks back (with
the agent running and after a SIGKILL), and `pystats replay` steps back in a real terminal."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from collectors.recorder.reader import HistoryReader
from collectors.recorder.retention import segments
from tests.host.test_agent_host import Agent, agent  # noqa: F401 (the fixture)
from tests.host.test_tui_tmux import busy_cgroup  # noqa: F401 (the fixture)

pytestmark = pytest.mark.host
PYSTATS = str(Path(sys.executable).with_name("pystats"))


def _ticks(state: str) -> int:
    d = os.path.join(state, "history")
    r = HistoryReader(d)
    n = 0
    for s in segments(d, "samples"):
        n += len(r._index(s).walls)
    return n


def _wait_ticks(state: str, n: int, proc: subprocess.Popen[bytes] | None) -> None:
    deadline = time.monotonic() + 60
    while _ticks(state) < n:
        assert proc is None or proc.poll() is None, "the agent died"
        assert time.monotonic() < deadline, f"fewer than {n} ticks recorded"
        time.sleep(0.3)


def _stats_at(state: str, at: str) -> dict[str, dict[str, object]]:
    out = subprocess.run(
        [PYSTATS, "stats", "--at", at, "--state-dir", state, "--format", "json", "-a"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    doc = json.loads(out)
    assert doc["source"] == "replay"
    return {r["path"]: r for r in doc["rows"]}


def test_agent_records_and_stats_at_reads_back_across_a_sigkill(
    agent: Agent,  # noqa: F811
    host_cgroup: str,
    busy_cgroup: str,  # noqa: F811
) -> None:
    cfg = agent.config(host_cgroup)
    agent.start(cfg)
    _wait_ticks(agent.state, 4, agent.proc)
    rows = _stats_at(agent.state, "now")  # while the agent records
    assert float(rows["busy"]["cpu_cores"]) > 0  # type: ignore[arg-type]
    assert rows["busy"]["populated"] is True
    when = time.time()
    assert agent.proc is not None
    os.killpg(agent.proc.pid, signal.SIGKILL)
    agent.proc.wait(10)
    open_segs = [s for s in segments(os.path.join(agent.state, "history")) if s.last_us is None]
    assert open_segs, "a SIGKILL leaves the segment open"
    agent.start(cfg)  # recovers the open segment, records on
    n = _ticks(agent.state)
    _wait_ticks(agent.state, n + 2, agent.proc)
    rows = _stats_at(agent.state, str(when))
    assert float(rows["busy"]["cpu_cores"]) > 0  # type: ignore[arg-type]
    ev = subprocess.run(
        [PYSTATS, "events", "--state-dir", agent.state, "--format", "json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    kinds = [e["type"] for e in json.loads(ev)]
    assert kinds.count("agent_start") == 2 and "agent_stop" not in kinds  # killed: no stop
    assert "Traceback" not in agent.log.read_text()


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], check=True, capture_output=True, text=True).stdout


def _shown_time(screen: str) -> float | None:
    """The recorded tick's time of day the header shows (seconds of the day)."""
    m = re.search(r"replay@(\d\d):(\d\d):(\d\d)", screen)
    return None if m is None else int(m[1]) * 3600 + int(m[2]) * 60 + int(m[3])


@pytest.mark.tmux
def test_replay_steps_back_in_tmux(
    agent: Agent,  # noqa: F811
    host_cgroup: str,
    busy_cgroup: str,  # noqa: F811
) -> None:
    if shutil.which("tmux") is None:
        pytest.skip("needs tmux")
    agent.start(agent.config(host_cgroup))
    _wait_ticks(agent.state, 6, agent.proc)
    agent.stop()
    session = f"pystats-replay-{uuid.uuid4().hex[:8]}"
    cmd = f"exec {PYSTATS} replay --at now --state-dir {agent.state}"
    _tmux("new-session", "-d", "-s", session, "-x", "200", "-y", "30", cmd)
    try:

        def wait_for(pred: object, what: str) -> str:
            screen = ""
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                time.sleep(0.3)
                screen = _tmux("capture-pane", "-p", "-t", session)
                if pred(screen):  # type: ignore[operator]
                    return screen
            pytest.fail(f"{what}:\n{screen}")

        first = wait_for(lambda s: _shown_time(s) and "busy" in s, "no replay of busy")
        t0 = _shown_time(first)
        assert t0 is not None
        for _ in range(3):
            _tmux("send-keys", "-t", session, "[")
        back = wait_for(
            lambda s: (t := _shown_time(s)) is not None and t <= t0 - 2, "[ did not step back"
        )
        assert re.search(r"^\s*busy\s+([\d.]+)%", back, re.MULTILINE), back
        _tmux("send-keys", "-t", session, "q")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)

"""The live view in a real terminal (tmux) on a real cgroup v2 tree, and `pystats stats` there.

A busy process runs in a child cgroup of our own scratch subtree of the host's v2 tree; the
captured pane must show that cgroup's row with nonzero CPU.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from agent.statsview.jsonio import schema

PYSTATS = str(Path(sys.executable).with_name("pystats"))
REPO = str(Path(__file__).resolve().parents[2])


@pytest.fixture
def busy_cgroup(host_cgroup: str) -> Iterator[str]:
    """``host_cgroup``/busy with a CPU-burning process in it; the fixture kills it after."""
    child = os.path.join(host_cgroup, "busy")
    os.mkdir(child)
    proc = subprocess.Popen(["sh", "-c", "while :; do :; done"])
    try:
        with open(os.path.join(child, "cgroup.procs"), "w") as f:
            f.write(str(proc.pid))
        yield host_cgroup
    finally:
        proc.kill()
        proc.wait()


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], check=True, capture_output=True, text=True).stdout


@pytest.mark.host
@pytest.mark.tmux
def test_live_view_in_tmux_shows_busy_cgroup(busy_cgroup: str) -> None:
    if shutil.which("tmux") is None:
        pytest.skip("needs tmux")
    session = f"pystats-test-{uuid.uuid4().hex[:8]}"
    cmd = f"cd {REPO} && exec {PYSTATS} --root {busy_cgroup}"
    _tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "30", cmd)
    try:
        screen, cpu = "", None
        deadline = time.monotonic() + 30  # start-up plus two collector ticks on a loaded host
        while time.monotonic() < deadline:
            time.sleep(0.5)
            screen = _tmux("capture-pane", "-p", "-t", session)
            m = re.search(r"^\s*busy\s+([\d.]+)%", screen, re.MULTILINE)
            if m and float(m.group(1)) > 0:
                cpu = float(m.group(1))
                break
        assert cpu is not None and cpu > 0, f"no busy row with CPU in:\n{screen}"
        assert "standalone" in screen
        _tmux("send-keys", "-t", session, "q")
        for _ in range(20):
            time.sleep(0.25)
            if session not in subprocess.run(["tmux", "ls"], capture_output=True, text=True).stdout:
                break
        else:
            pytest.fail("q did not quit the view")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


@pytest.mark.host
def test_stats_no_stream_json_on_real_tree(busy_cgroup: str) -> None:
    out = subprocess.run(
        [PYSTATS, "stats", "--no-stream", "--format", "json", "--root", busy_cgroup],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    ).stdout
    doc = json.loads(out)
    jsonschema.validate(doc, schema())
    rows = {r["path"]: r for r in doc["rows"]}
    assert doc["source"] == "standalone" and doc["root"] == busy_cgroup
    assert rows["busy"]["cpu_percent"] > 0
    # The hybrid host's v2 tree has no memory controller: unavailable, not zero.
    if "memory" in doc["mode"]:
        assert rows["busy"]["mem_usage"] is None


@pytest.mark.host
async def test_freeze_and_thaw_through_the_stats_api(host_cgroup: str, tmp_path: Path) -> None:
    """POST /v1/cgroups/freeze|thaw on a real cgroup, through cgroupfs.writer."""
    from aiohttp import web

    from agent.api.stats_client import StatsClient
    from agent.api.stats_routes import add_stats_routes
    from cgroupfs.paths import CgroupRoot
    from collectors.store import Store

    child = os.path.join(host_cgroup, "sleeper")
    os.mkdir(child)
    proc = subprocess.Popen(["sleep", "60"])
    runner: web.AppRunner | None = None
    try:
        with open(os.path.join(child, "cgroup.procs"), "w") as f:
            f.write(str(proc.pid))
        root = CgroupRoot(host_cgroup)
        store = Store()
        from agent.statsview.fake import sample

        store.publish([sample("sleeper", 0)])  # the API acts only on cgroups the store knows
        app = web.Application()
        add_stats_routes(app, store, root)
        runner = web.AppRunner(app)
        await runner.setup()
        sock = str(tmp_path / "agent.sock")
        await web.UnixSite(runner, sock).start()

        def frozen() -> bool:
            with open(os.path.join(child, "cgroup.events")) as f:
                return "frozen 1" in f.read()

        async with StatsClient(sock) as c:
            await c.freeze("sleeper")
            for _ in range(100):
                if frozen():
                    break
                time.sleep(0.02)
            assert frozen()
            await c.thaw("sleeper")
            for _ in range(100):
                if not frozen():
                    break
                time.sleep(0.02)
            assert not frozen()
    finally:
        if runner is not None:
            await runner.cleanup()
        proc.kill()
        proc.wait()

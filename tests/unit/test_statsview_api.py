"""The agent's stats routes and their Unix-socket client, and `pystats stats` against them."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import jsonschema
import pytest
from aiohttp import web

from agent.api.stats_client import AgentError, StatsClient
from agent.api.stats_routes import add_stats_routes
from agent.cli import main
from agent.statsview.fake import T0, demo_store
from agent.statsview.history import Event
from agent.statsview.jsonio import schema
from agent.tui.sources import ActionUnavailable, AgentSource
from cgroupfs.errors import CgroupGone
from cgroupfs.paths import CgroupRoot


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, bool]] = []

    def __call__(self, root: object, path: str, frozen: bool) -> None:
        if path == "system.slice/sshd.service":
            raise CgroupGone(path)
        self.calls.append((path, frozen))


def make_app(rec: Recorder, workload_calls: list[str]) -> web.Application:
    app = web.Application()
    add_stats_routes(
        app,
        demo_store(),
        CgroupRoot("/sys/fs/cgroup"),
        names=lambda: {"pystats.slice/web": "web"},
        interval_s=1.0,
        freezer=rec,
        events=lambda path: (
            [Event(T0 + 5, "placement", f"placed by policy web ({path})")]
            if path == "pystats.slice/web"
            else []
        ),
    )

    async def workload_action(request: web.Request) -> web.Response:
        workload_calls.append(f"{request.match_info['action']} {request.match_info['name']}")
        return web.json_response({})

    # Stands in for the workloads API (agent/api/server.py), which owns these routes.
    app.router.add_post("/v1/workloads/{name}/{action}", workload_action)
    return app


@pytest.fixture
async def agent_sock(tmp_path: Path) -> AsyncIterator[tuple[str, Recorder, list[str]]]:
    rec, calls = Recorder(), []
    runner = web.AppRunner(make_app(rec, calls))
    await runner.setup()
    sock = str(tmp_path / "agent.sock")
    await web.UnixSite(runner, sock).start()
    try:
        yield sock, rec, calls
    finally:
        await runner.cleanup()


async def test_stats_hides_unpopulated_unless_all(
    agent_sock: tuple[str, Recorder, list[str]],
) -> None:
    async with StatsClient(agent_sock[0]) as c:
        some = await c.stats(show_all=False)
        every = await c.stats(show_all=True)
    assert "system.slice/old.service" not in {r.path for r in some.rows}
    assert "system.slice/old.service" in {r.path for r in every.rows}
    assert some.source == "agent" and some.root == "/sys/fs/cgroup"
    web_row = next(r for r in every.rows if r.path == "pystats.slice/web")
    assert web_row.workload == "web" and web_row.name == "web"


async def test_stats_json_matches_schema(agent_sock: tuple[str, Recorder, list[str]]) -> None:
    async with StatsClient(agent_sock[0]) as c:
        body = await c._request("GET", "/v1/stats", params={"all": "1"})
    jsonschema.validate(body, schema())


async def test_history_and_its_errors(agent_sock: tuple[str, Recorder, list[str]]) -> None:
    async with StatsClient(agent_sock[0]) as c:
        h = await c.history("pystats.slice/batch")
        assert len(h.cpu_cores) == 30
        assert [e.kind for e in h.events].count("oom_kill") == 2
        placed = await c.history("pystats.slice/web")
        assert [e.kind for e in placed.events] == ["first_seen", "placement"]
        with pytest.raises(AgentError, match="404 unknown cgroup"):
            await c.history("nope")
        with pytest.raises(AgentError, match="400 missing query parameter"):
            await c._request("GET", "/v1/history")


async def test_freeze_thaw_only_known_cgroups(agent_sock: tuple[str, Recorder, list[str]]) -> None:
    sock, rec, _ = agent_sock
    async with StatsClient(sock) as c:
        await c.freeze("pystats.slice/web")
        await c.thaw("pystats.slice/web")
        with pytest.raises(AgentError, match="404 unknown cgroup"):
            await c.freeze("../../etc")
        with pytest.raises(AgentError, match="404 cgroup gone"):
            await c.freeze("system.slice/sshd.service")
        with pytest.raises(AgentError, match="400"):
            await c._request("POST", "/v1/cgroups/freeze", data=b"not json")
    assert rec.calls == [("pystats.slice/web", True), ("pystats.slice/web", False)]


async def test_agent_source_actions(agent_sock: tuple[str, Recorder, list[str]]) -> None:
    sock, rec, calls = agent_sock
    src = AgentSource(StatsClient(sock), interval_s=1.0)
    await src.start()
    assert src.info.can_act and src.info.root == "/sys/fs/cgroup"
    await src.act("stop", "pystats.slice/web", "web")
    await src.act("kill", "pystats.slice/web", "web")
    await src.act("freeze", "pystats.slice/batch", None)
    with pytest.raises(ActionUnavailable):
        await src.act("stop", "system.slice", None)
    await src.close()
    assert calls == ["stop web", "kill web"]
    assert rec.calls == [("pystats.slice/batch", True)]


async def test_ping_false_without_agent(tmp_path: Path) -> None:
    async with StatsClient(str(tmp_path / "none.sock")) as c:
        assert not await c.ping()
    # A socket file nobody listens on: refused, still just "no agent".
    import socket

    p = tmp_path / "dead.sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(p))
    s.close()
    async with StatsClient(str(p)) as c:
        assert not await c.ping()
        with pytest.raises(AgentError, match="did not answer"):
            await c.stats()


@pytest.fixture
def agent_thread(tmp_path: Path) -> Iterator[str]:
    """An agent API in a thread of its own, for the CLI (which runs its own event loop)."""
    sock = str(tmp_path / "agent.sock")
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    runner = web.AppRunner(make_app(Recorder(), []))

    async def start() -> None:
        await runner.setup()
        await web.UnixSite(runner, sock).start()
        ready.set()

    t = threading.Thread(target=lambda: (loop.run_until_complete(start()), loop.run_forever()))
    t.start()
    assert ready.wait(10)
    try:
        yield sock
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        t.join(10)
        loop.close()


def test_cli_stats_no_stream_json_from_agent(
    agent_thread: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["stats", "--no-stream", "--format", "json", "--socket", agent_thread]) == 0
    doc = json.loads(capsys.readouterr().out)
    jsonschema.validate(doc, schema())
    assert doc["source"] == "agent"
    assert "system.slice/old.service" not in {r["path"] for r in doc["rows"]}


def test_cli_stats_all_table_from_agent(
    agent_thread: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["stats", "--no-stream", "--all", "--socket", agent_thread]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("CGROUP")
    assert "system.slice/old.service" in out


def test_cli_stats_demo_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", "--demo", "--no-stream", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    jsonschema.validate(doc, schema())
    assert len(doc["rows"]) == 8


def test_cli_stats_bad_root_is_a_message_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["stats", "--no-stream", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "not a cgroup v2 directory" in err and "Traceback" not in err


def test_describe_mount() -> None:
    from cgroupfs.mount import CgroupMount, describe_mount

    missing = {"memory": "bound to v1", "cpu": "bound to v1"}
    hybrid = CgroupMount("hybrid", "/sys/fs/cgroup/unified", frozenset({"pids"}), missing)
    assert describe_mount(hybrid) == "hybrid v1/v2 (no cpu, memory)"
    assert describe_mount(CgroupMount("v2", "/sys/fs/cgroup", frozenset())) == "pure cgroup v2"
    assert describe_mount(None) == "cgroup v2"


def test_choose_source_prefers_a_live_agent(agent_thread: str, tmp_path: Path) -> None:
    from agent.tui.sources import choose_source
    from cgroupfs.errors import CgroupError

    src = choose_source(agent_thread, None, 1.0)
    assert isinstance(src, AgentSource) and src.info.label == f"agent {agent_thread}"
    # --root (or --standalone) means: sample this tree here, even with an agent running.
    with pytest.raises(CgroupError, match="not a cgroup v2 directory"):
        choose_source(agent_thread, str(tmp_path), 1.0)
    with pytest.raises(CgroupError):
        choose_source(str(tmp_path / "no.sock"), str(tmp_path), 1.0)


async def test_live_view_attached_to_an_agent(agent_sock: tuple[str, Recorder, list[str]]) -> None:
    """The TUI on a real AgentSource: header names the agent, rows, detail history, freeze."""
    from agent.tui.app import PystatsApp
    from agent.tui.host import HostStats

    sock, rec, _ = agent_sock
    app = PystatsApp(
        AgentSource(StatsClient(sock), interval_s=1.0),
        clock=lambda: T0,
        host=lambda: HostStats(1.0, 1, 2, 2),
        autorefresh=False,
    )
    async with app.run_test(size=(120, 34)) as pilot:
        await pilot.pause()
        assert str(app.query_one("#status").render()).startswith("agent")  # short form at 120
        assert app.source.info.label == f"agent {sock}"
        order = list(app.table.order)
        assert "pystats.slice/web" in order and "system.slice/old.service" not in order
        assert str(app.table.get_cell("pystats.slice/web", "name")) == "web"
        app.table.move_cursor(row=order.index("pystats.slice/batch"))
        await pilot.press("d")
        await app.workers.wait_for_complete()
        assert len(app.detail.query_one("#cpu-spark").data) == 30  # type: ignore[attr-defined]
        await pilot.press("f", "y")
        await app.workers.wait_for_complete()
    assert rec.calls == [("pystats.slice/batch", True)]


async def test_stats_stream_prints_one_json_document_per_refresh() -> None:
    import io

    from agent.statsview.stats_cmd import run_stats
    from agent.tui.sources import SourceInfo, StoreSource

    class TwoTicks(StoreSource):
        waits = 0

        async def wait(self) -> None:
            self.waits += 1
            if self.waits == 2:
                raise KeyboardInterrupt  # what Ctrl-C does to `pystats stats`

    src = TwoTicks(demo_store(), SourceInfo("standalone", "t", "/", "v2", False))
    out = io.StringIO()
    with pytest.raises(KeyboardInterrupt):
        await run_stats(src, stream=True, show_all=False, fmt="json", out=out)
    docs = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(docs) == 2
    for d in docs:
        jsonschema.validate(d, schema())
    assert "\033[2J" not in out.getvalue()  # no screen clearing when not a terminal

"""Reading recorded history: `stats --at`, `events`, `export`, and the replay view's keys."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
from dataclasses import replace
from pathlib import Path

import pytest

from agent.cli import main
from agent.statsview.recorded import parse_when
from agent.tui.app import PystatsApp
from agent.tui.host import HostStats
from agent.tui.replay import ReplaySource
from collectors.recorder.events import RecordedEvent
from collectors.recorder.writer import Recorder, RecorderConfig
from tests.unit.history_synth import SyntheticHost

GONE = "workloads/w0/c3"  # removed after tick 5: a replay must still show it before


def _history(state: Path, ticks: int = 12) -> list[float]:
    h = SyntheticHost(10, busy_share=0.6)
    rec = Recorder(RecorderConfig(str(state / "history"), keyframe_every=4))
    rec.start()
    walls = []
    for k in range(ticks):
        t = h.next_tick()
        entries = list(t.entries)
        if k == 5:
            entries = [replace(e, gone=True) if e.path == GONE else e for e in entries]
        elif k > 5:
            entries = [e for e in entries if e.path != GONE]
        t = replace(t, entries=entries)
        walls.append(t.wall)
        while not rec.submit_tick(t):
            time.sleep(0.01)
    rec.submit_event(RecordedEvent(walls[4], "oom", GONE, "web", 412, "python3", 1, 1, "x"))
    rec.submit_event(RecordedEvent(walls[1], "start", GONE, "web", text="launched"))
    rec.close()
    return walls


def test_parse_when() -> None:
    assert parse_when("10 minutes ago", now=1000.0) == 400.0
    assert parse_when("-90s", now=1000.0) == 910.0
    assert parse_when("2h ago", now=10000.0) == 2800.0
    assert parse_when("1700000000") == 1.7e9
    assert parse_when("2023-11-14T22:13:20Z") == 1.7e9
    with pytest.raises(ValueError, match="cannot read"):
        parse_when("yesterday-ish")


def test_stats_at_shows_a_cgroup_that_no_longer_exists(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    walls = _history(tmp_path)
    assert (
        main(["stats", "--at", str(walls[3]), "--state-dir", str(tmp_path), "--format", "json"])
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert doc["source"] == "replay" and doc["time"] == pytest.approx(walls[3], abs=1e-5)
    row = {r["path"]: r for r in doc["rows"]}[GONE]
    assert row["name"] == "web" and row["cpu_cores"] > 0.3 and row["memory_current"] > 0
    assert main(["stats", "--at", str(walls[10]), "--state-dir", str(tmp_path), "-a"]) == 0
    out = capsys.readouterr().out
    assert "c3" not in out and "c2" in out
    assert main(["stats", "--at", str(walls[0] - 60), "--state-dir", str(tmp_path)]) == 1
    assert "nothing recorded" in capsys.readouterr().err


def test_events_filter_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _history(tmp_path)
    argv = ["events", "--state-dir", str(tmp_path), "--filter", "type=oom", "--format", "json"]
    assert main(argv) == 0
    (ev,) = json.loads(capsys.readouterr().out)
    assert (ev["type"], ev["cgroup"], ev["pid"], ev["comm"]) == ("oom", GONE, 412, "python3")
    assert main(["events", "--state-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3 and "start" in out[1] and "oom" in out[2]
    assert main(["events", "--state-dir", str(tmp_path), "--filter", "bogus"]) == 125  # usage


def test_export_csv_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    walls = _history(tmp_path)
    d = str(tmp_path)
    assert (
        main(["export", "--since", str(walls[2]), "--until", str(walls[6]), "--state-dir", d]) == 0
    )
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    times = sorted({float(r["time"]) for r in rows})
    assert len(times) == 5 and times[0] == pytest.approx(walls[2], abs=1e-3)
    assert {r["path"] for r in rows} >= {GONE, "workloads/w0/c0"}
    argv = ["export", "--since", str(walls[0]), "--format", "json", "--state-dir", d]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 12 and all(json.loads(x)["source"] == "replay" for x in lines)


async def test_replay_view_steps_back_and_forward(tmp_path: Path) -> None:
    walls = _history(tmp_path)
    src = ReplaySource(str(tmp_path / "history"), walls[7] + 0.5)
    app = PystatsApp(src, host=lambda: HostStats(1.0, 1, 2, 1))

    async def shown_at(k: int) -> None:
        for _ in range(100):
            await asyncio.sleep(0.02)
            if app.doc is not None and app.doc.time == pytest.approx(walls[k], abs=1e-5):
                return
        raise AssertionError(f"expected tick {k}, showing {app.doc and app.doc.time}")

    async with app.run_test(size=(140, 30)) as pilot:
        await shown_at(7)
        assert GONE not in app.table.order
        await pilot.press("left_square_bracket", "left_square_bracket", "left_square_bracket")
        await shown_at(4)
        assert GONE in app.table.order  # back before its removal: it is there again
        await pilot.press("right_square_bracket")
        await shown_at(5)
        await pilot.press("right_curly_bracket")  # a minute on: clamped to the last tick
        await shown_at(11)
        await pilot.press("left_curly_bracket")  # a minute back: before the first tick
        await shown_at(0)
        assert "replay" in src.info.label

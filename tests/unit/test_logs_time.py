"""Issue 17.5: logs --since/--until read docker's time formats."""

from __future__ import annotations

from datetime import datetime

import pytest

from agent.cli.logtime import parse_log_time

NOW = 1_765_102_800.0  # 2025-12-07T10:20:00Z


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-12-07T10:20:00Z", NOW),
        ("2025-12-07T11:20:00+01:00", NOW),
        ("2025-12-07T10:20:00.123456789Z", NOW + 0.123456),
        ("1765102800", NOW),
        ("1765102800.5", NOW + 0.5),
        ("10m", NOW - 600),
        ("1h30m", NOW - 5400),
        ("1.5h", NOW - 5400),
        ("90s", NOW - 90),
        ("250ms", NOW - 0.25),
    ],
)
def test_docker_forms(text: str, expected: float) -> None:
    assert parse_log_time(text, now=NOW) == pytest.approx(expected, abs=1e-6)


def test_a_time_without_zone_is_local() -> None:
    local = datetime(2025, 12, 7, 10, 20).timestamp()
    assert parse_log_time("2025-12-07T10:20:00", now=NOW) == local
    assert parse_log_time("2025-12-07", now=NOW) == datetime(2025, 12, 7).timestamp()


@pytest.mark.parametrize("text", ["yesterday", "10x", "", "1h-3m", "2025-13-40"])
def test_other_text_is_refused_with_the_forms(text: str) -> None:
    with pytest.raises(ValueError, match="RFC3339"):
        parse_log_time(text, now=NOW)

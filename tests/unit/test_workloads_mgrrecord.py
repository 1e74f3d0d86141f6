"""manager.json's typed record: round trip, defaults for an older record, wrong shapes refused."""

from __future__ import annotations

import pytest

from workloads.lifecycle.mgrrecord import ManagerRecord
from workloads.supervisor.record import CorruptRecord


def test_round_trip() -> None:
    r = ManagerRecord(restarts=3, stopped_by_user=True, paused=True)
    assert ManagerRecord.from_json(r.to_json()) == r


def test_missing_fields_take_defaults() -> None:
    # A record written before `paused` existed.
    assert ManagerRecord.from_json({"restarts": 2}) == ManagerRecord(2, False, False)


@pytest.mark.parametrize(
    "bad",
    [
        {"restarts": "3"},
        {"restarts": -1},
        {"restarts": True},
        {"paused": "yes"},
        {"stopped_by_user": 1},
    ],
)
def test_wrong_shapes_are_corrupt(bad: dict[str, object]) -> None:
    with pytest.raises(CorruptRecord):
        ManagerRecord.from_json(dict(bad), "/x/manager.json")

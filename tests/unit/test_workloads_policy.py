"""Restart policies and their backoff."""

from __future__ import annotations

import pytest

from workloads.lifecycle.restart import (
    BACKOFF_CAP_S,
    RestartPolicy,
    backoff_delay,
    parse_restart,
    should_restart,
)
from workloads.runtime.spec import SpecError


@pytest.mark.parametrize(
    ("text", "policy"),
    [
        ("no", RestartPolicy("no")),
        ("always", RestartPolicy("always")),
        ("on-failure", RestartPolicy("on-failure")),
        ("on-failure:3", RestartPolicy("on-failure", 3)),
    ],
)
def test_parse_restart_accepts_the_three_forms(text: str, policy: RestartPolicy) -> None:
    assert parse_restart(text) == policy


@pytest.mark.parametrize("text", ["", "yes", "always:2", "on-failure:0", "on-failure:x", "no:1"])
def test_parse_restart_refuses_the_rest_with_the_forms_named(text: str) -> None:
    with pytest.raises(SpecError, match="on-failure"):
        parse_restart(text)


def test_should_restart_follows_the_policy() -> None:
    no, always = RestartPolicy("no"), RestartPolicy("always")
    on_fail, on_fail2 = RestartPolicy("on-failure"), RestartPolicy("on-failure", 2)
    assert not should_restart(no, 1, 0, False)
    assert should_restart(always, 0, 50, False)
    assert not should_restart(always, 1, 0, True)  # stopped by the user: never
    assert not should_restart(on_fail, 0, 0, False)
    assert should_restart(on_fail, 137, 100, False)
    assert should_restart(on_fail2, 1, 1, False)
    assert not should_restart(on_fail2, 1, 2, False)


def test_backoff_doubles_from_100ms_and_is_capped() -> None:
    assert backoff_delay(0) == 0.0
    assert [backoff_delay(n) for n in (1, 2, 3, 4)] == pytest.approx([0.1, 0.2, 0.4, 0.8])
    assert backoff_delay(50) == BACKOFF_CAP_S
    assert backoff_delay(10_000) == BACKOFF_CAP_S  # no float overflow

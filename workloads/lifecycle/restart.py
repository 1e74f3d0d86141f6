"""Restart policies (`no`, `on-failure[:N]`, `always`, `unless-stopped`) and their backoff.
Pure functions. `unless-stopped` is `always`, except that a workload stopped by the user stays
stopped when the agent starts again (the manager clears the stop of an `always` one then)."""

from __future__ import annotations

from dataclasses import dataclass

from workloads.runtime.errors import SpecError

BACKOFF_BASE_S = 0.1
BACKOFF_CAP_S = 30.0
# A run that lasted this long resets the backoff, as docker does after 10 s.
STABLE_RUN_S = 10.0


@dataclass(frozen=True)
class RestartPolicy:
    mode: str  # "no" | "on-failure" | "always" | "unless-stopped"
    max_retries: int | None = None  # on-failure:N; None is unbounded


def parse_restart(text: str) -> RestartPolicy:
    mode, sep, count = text.partition(":")
    if mode in ("no", "always", "unless-stopped") and not sep:
        return RestartPolicy(mode)
    if mode == "on-failure":
        if not sep:
            return RestartPolicy(mode)
        if count.isdigit() and int(count) >= 1:
            return RestartPolicy(mode, int(count))
        raise SpecError(f"invalid --restart {text!r}: N in on-failure:N must be a positive integer")
    raise SpecError(
        f"invalid --restart {text!r}: expected no, on-failure[:N], always or unless-stopped"
    )


def should_restart(
    policy: RestartPolicy, exit_code: int, restarts: int, stopped_by_user: bool
) -> bool:
    if stopped_by_user or policy.mode == "no":
        return False
    if policy.mode in ("always", "unless-stopped"):
        return True
    if exit_code == 0:
        return False
    return policy.max_retries is None or restarts < policy.max_retries


def backoff_delay(failures_in_a_row: int) -> float:
    """Seconds to wait before the next start: 0.1, 0.2, 0.4, ... capped at 30 s."""
    if failures_in_a_row <= 0:
        return 0.0
    return float(min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** min(failures_in_a_row - 1, 30)))

"""`pystats policy check/plan/explain`. Placeholder until policies land."""

from __future__ import annotations

from typing import Any


def register(sub: Any) -> None:
    return None

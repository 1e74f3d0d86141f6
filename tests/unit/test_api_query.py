"""The API reads a boolean query flag one way on every route."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request

from agent.api.query import flag


@pytest.mark.parametrize(
    ("qs", "want"),
    [
        ("force=1", True),
        ("force=true", True),
        ("force=True", True),
        ("force=yes", True),
        ("force=0", False),
        ("force=false", False),
        ("force=", False),
        ("", False),
        ("forced=1", False),
    ],
)
def test_flag(qs: str, want: bool) -> None:
    request = make_mocked_request("DELETE", f"/v1/workloads/w?{qs}")
    assert flag(request, "force") is want

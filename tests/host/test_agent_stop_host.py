# ruff: noqa: F811  (pytest fixtures imported from the agent tests are named as parameters)
"""A stop of the agent does not wait for its long requests: a `logs -f` client of a quiet
workload still connected (aiohttp's default would hold the stop up to 60 s)."""

from __future__ import annotations

import pytest

from agent.api.client import WorkloadClient
from tests.host.test_agent_host import Agent, agent  # noqa: F401 (a fixture)
from tests.host.test_cli_defects_host import wagent  # noqa: F401 (a fixture)
from tests.unixhttp import UnixHTTPConnection

pytestmark = pytest.mark.host


def test_stop_with_a_follower_connected(wagent: Agent, host_cgroup: str) -> None:
    wagent.start(wagent.config(host_cgroup))
    WorkloadClient(wagent.sock).create({"name": "quiet", "argv": ["sleep", "1000"]})
    follower = UnixHTTPConnection(wagent.sock, timeout=120)
    follower.request("GET", "/v1/workloads/quiet/logs?follow=1")
    resp = follower.getresponse()
    assert resp.status == 200
    assert wagent.proc is not None
    wagent.proc.terminate()
    try:
        code = wagent.proc.wait(30)  # aiohttp's own default waits 60 s for the follower
    finally:
        follower.close()
    assert code == 0, wagent.log.read_text()
    assert "stopped (status 0)" in wagent.log.read_text()
    # The workload outlives the agent, in its shim; the next agent would adopt it. Clean up.
    wagent.start(wagent.config(host_cgroup))
    WorkloadClient(wagent.sock).rm("quiet", force=True)

# ruff: noqa: F811  (pytest fixtures imported from the agent tests are named as parameters)
"""Issue 17.4 against the real agent on this host: -e KEY takes the caller's value, --env-file,
--label (inspect, ps --filter label=), --workdir created when missing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.api.client import WorkloadClient
from tests.host.test_agent_host import Agent, agent  # noqa: F401 (a fixture)
from tests.host.test_cli_defects_host import REPO, cli, wagent  # noqa: F401 (a fixture)

pytestmark = pytest.mark.host
SHOWN = "'^(FROM_FILE|BOTH|PASSED|CALLER|UNSET)'"


def test_env_sources_and_labels(wagent: Agent, host_cgroup: str, tmp_path: Path) -> None:
    wagent.start(wagent.config(host_cgroup))
    envfile = tmp_path / "env"
    envfile.write_text("# a comment\nFROM_FILE=1\nBOTH=file\nPASSED\n\n")
    p = subprocess.run(
        [sys.executable, "-m", "agent.cli", "run", "--name", "e", "--env-file", str(envfile),
         "-e", "BOTH=flag", "-e", "CALLER", "-e", "UNSET_HERE", "--label", "tier=front",
         "-l", "solo", "--", "sh", "-c", "env | sort | grep -E " + SHOWN],
        cwd=REPO, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYSTATS_SOCKET": wagent.sock, "CALLER": "c v", "PASSED": "p"},
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["BOTH=flag", "CALLER=c v", "FROM_FILE=1", "PASSED=p"]
    info = WorkloadClient(wagent.sock).inspect("e")
    assert info["labels"] == {"tier": "front", "solo": ""}
    assert cli(wagent.sock, "ps", "-aq", "--filter", "label=tier=front").stdout == "e\n"
    assert cli(wagent.sock, "ps", "-aq", "--filter", "label=tier=back").stdout == ""
    bad = cli(wagent.sock, "run", "--env-file", str(tmp_path / "none"), "--", "true")
    assert bad.returncode == 125 and "--env-file" in bad.stderr and "No such file" in bad.stderr


def test_workdir_is_created_when_missing(wagent: Agent, host_cgroup: str) -> None:
    wagent.start(wagent.config(host_cgroup))
    p = cli(wagent.sock, "run", "-w", "/tmp/new/deeper", "--", "sh", "-c", "pwd")
    assert (p.returncode, p.stdout) == (0, "/tmp/new/deeper\n"), p.stderr

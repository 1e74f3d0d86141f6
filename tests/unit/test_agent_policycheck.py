"""One policy check for the agent's start, SIGHUP and --check-config (agent.policycheck): a bad
file is named with its lines, the start refuses it with exit status 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from agent.policycheck import policy_problems

REPO = Path(__file__).resolve().parents[2]
BAD = "groups:\n  - nme: web\n  - name: db\n    limits: {memory.max: 10%}\n"
GOOD = "groups:\n  - name: web\n    match: {comm: nginx}\n"


def test_a_bad_policy_yields_its_problems_by_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text(BAD)
    problems = policy_problems(str(bad))
    assert problems[0] == f"{bad}:2:5: unknown key 'nme' in a group: did you mean 'name'?"
    assert [p.split(":")[:2] for p in problems] == [[str(bad), "2"]] * 2 + [[str(bad), "4"]]
    assert "memory.max: '10%': a percentage is ambiguous" in problems[2]


def test_a_good_policy_yields_none(tmp_path: Path) -> None:
    good = tmp_path / "p.yaml"
    good.write_text(GOOD)
    assert policy_problems(str(good)) == []


def test_a_missing_policy_is_one_problem(tmp_path: Path) -> None:
    problems = policy_problems(str(tmp_path / "gone.yaml"))
    assert len(problems) == 1 and problems[0].startswith(f"{tmp_path / 'gone.yaml'}:")


def _agent(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(f"state_dir: {tmp_path / 's'}\nsocket: {tmp_path / 'api.sock'}\n")
    return subprocess.run(
        [sys.executable, "-m", "agent.daemon_main", "--config", str(cfg), *args],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_the_agent_refuses_to_start_with_a_bad_policy(tmp_path: Path) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text(BAD)
    p = _agent(tmp_path, "--policy", str(bad))
    assert p.returncode == 2, p.stdout + p.stderr
    lines = p.stderr.splitlines()
    assert lines[0].startswith(f"pystats-agent: {bad}:2:") and "'nme'" in lines[0], p.stderr
    assert lines[-1].startswith(f"pystats-agent: {bad}:4:"), p.stderr


def test_check_config_names_a_bad_policy_and_passes_a_good_one(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    p = _agent(tmp_path, "--check-config", "--policy", str(bad))
    assert p.returncode == 2, p.stdout + p.stderr
    assert f"\n{bad}:2:" in "\n" + p.stderr and f"\n{bad}:4:" in p.stderr, p.stderr
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    p = _agent(tmp_path, "--check-config", "--policy", str(good))
    assert f"policy: {good}: valid" in p.stdout, p.stdout + p.stderr
    assert str(good) not in p.stderr, p.stderr

"""Issue 17.7: CLI defects found in a trial, each checked without an agent."""

from __future__ import annotations

import pytest

from agent.argv import join_negative_values, value_options
from agent.cli import build_parser, main
from agent.cli.common import size_short
from agent.cli.observe import table
from agent.rootsetup import RootError, choose_root
from cgroupfs.mount import CgroupMount
from policies.plan import CreateGroup, Current, SetLimit, plan
from policies.validate import check_text


def _error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as e:
        main(list(argv))
    assert e.value.code == 125  # a usage error, as docker's CLI
    return capsys.readouterr().err


def test_a_negative_value_reaches_the_options_own_check(capsys: pytest.CaptureFixture[str]) -> None:
    err = _error(capsys, "run", "--memory", "-5M", "--", "true")
    assert "expected one argument" not in err
    assert "argument --memory: cannot read memory size '-5M'" in err
    err = _error(capsys, "stats", "--interval", "-1")
    assert "argument --interval" in err and "expected one argument" not in err
    # only options that take a value, and nothing after --
    opts = value_options(build_parser())
    assert join_negative_values(["run", "-d", "--", "x", "--cpus", "-1"], opts) == [
        "run", "-d", "--", "x", "--cpus", "-1",
    ]  # fmt: skip
    assert join_negative_values(["kill", "-s", "-9", "w"], opts) == ["kill", "-s-9", "w"]


def test_empty_names_and_bad_signals_are_refused_by_the_cli(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for cmd in ("inspect", "logs", "stop", "rm", "kill"):
        assert "a workload name cannot be empty" in _error(capsys, cmd, "")
    assert "a signal number is 1 to 64" in _error(capsys, "kill", "-s", "999", "w")
    assert "'FOO' is not a signal name" in _error(capsys, "kill", "-s", "FOO", "w")


def test_stats_interval_takes_durations_as_the_agent_does() -> None:
    parser = build_parser()
    assert parser.parse_args(["stats", "--interval", "500ms"]).interval == 0.5
    assert parser.parse_args(["stats", "--interval", "2m"]).interval == 120.0
    assert parser.parse_args(["--interval", "1.5"]).interval == 1.5


def test_ps_memory_column_keeps_small_limits_readable() -> None:
    assert [size_short(n) for n in (512 * 1024, 256 << 20, 3 << 29, 1000, None)] == [
        "512K", "256M", "1.5G", "1000B", "-",
    ]  # fmt: skip
    row = {"name": "w", "state": "running", "limits": {"memory_bytes": 512 * 1024}, "argv": ["x"]}
    assert " 512K " in table([row], 0.0).splitlines()[1]


def test_the_whole_mount_as_root_names_the_mount_not_a_placeholder() -> None:
    mount = CgroupMount(mode="v2", path="/sys/fs/cgroup", controllers=frozenset())
    with pytest.raises(RootError) as e:
        choose_root(mount, "/sys/fs/cgroup")
    assert "{base}" not in str(e.value) and "e.g. /sys/fs/cgroup/pystats" in str(e.value)


def test_policy_check_counts_in_singular(
    capsys: pytest.CaptureFixture[str], tmp_path: object
) -> None:
    import pathlib

    p = pathlib.Path(str(tmp_path)) / "p.yaml"
    p.write_text("groups:\n  - name: batch\n    match:\n      - comm: make\n")
    assert main(["policy", "check", str(p)]) == 0
    assert capsys.readouterr().out.strip() == f"{p}: ok (1 group, 1 match rule)"


def test_plan_leaves_out_limits_whose_controller_the_root_lacks() -> None:
    policy, errors = check_text(
        "groups:\n  - name: b\n    limits: {memory.max: 64M, pids.max: 10}\n", "p.yaml"
    )
    assert policy is not None, errors
    acts = plan(policy, [], Current("/r", frozenset({"pids"})))
    assert [a for a in acts if isinstance(a, SetLimit)] == [SetLimit("b", "pids.max", "10", None)]
    assert CreateGroup("b", ("pids",)) in acts


def test_live_view_header_puts_host_cpu_on_the_rows_scale() -> None:
    from agent.tui.host import HostStats
    from agent.tui.widgets.status import status_text

    host = HostStats(cpu_percent=45.0, mem_used=1 << 30, mem_total=4 << 30, cpus=2)
    kw = {"source": "agent", "mode": "v2", "interval_s": 1.0, "paused": False, "now": 0.0}
    wide = status_text(host=host, shown=1, total=1, width=200, **kw).plain  # type: ignore[arg-type]
    assert "host CPU 90%/200% (100% = 1 core) MEM 1GiB/4GiB" in wide, wide
    narrow = status_text(host=host, shown=1, total=1, width=70, **kw).plain  # type: ignore[arg-type]
    assert "CPU 90%/200%" in narrow and "MEM" in narrow, narrow

"""Names, limits, env and the `pystats run` command line: validated before anything is created."""

from __future__ import annotations

import pytest

from agent import cli
from agent.cli.workloads import run_body
from workloads.runtime.spec import (
    Limits,
    SpecError,
    WorkloadSpec,
    check_spec,
    parse_env,
    parse_limits,
    validate_name,
)


@pytest.mark.parametrize("name", ["web", "a", "db-1", "x_y.z", "A" * 63])
def test_good_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "-x", ".hidden", "a/b", "..", "a b", "A" * 64, "memory.max", "cgroup.procs", "é"]
)
def test_bad_names_are_refused_with_the_name_quoted(name: str) -> None:
    with pytest.raises(SpecError, match="invalid workload name"):
        validate_name(name)


def test_parse_limits_converts_human_units() -> None:
    lim = parse_limits("256M", "0.5", "100")
    assert lim == Limits(memory_bytes=256 << 20, cpus=0.5, pids=100)
    assert parse_limits("max", "max", "max") == Limits()


@pytest.mark.parametrize(
    ("kw", "flag"),
    [
        ({"memory": "12Q"}, "--memory"),
        ({"memory": "-5"}, "--memory"),
        ({"memory": "10MB"}, "--memory"),
        ({"cpus": "0"}, "--cpus"),
        ({"cpus": "lots"}, "--cpus"),
        ({"cpus": "0.001"}, "--cpus"),  # below the kernel's 1 ms quota
        ({"pids": "0"}, "--pids"),
        ({"pids": "ten"}, "--pids"),
    ],
)
def test_bad_limits_name_the_flag(kw: dict[str, str], flag: str) -> None:
    with pytest.raises(SpecError, match=flag):
        parse_limits(**kw)


def test_parse_env() -> None:
    assert parse_env(["A=1", "B=x=y", "C="]) == {"A": "1", "B": "x=y", "C": ""}
    for bad in ("NOEQUALS", "=v", "1A=b", "A-B=c"):
        with pytest.raises(SpecError, match="KEY=VALUE"):
            parse_env([bad])


def test_check_spec_refuses_bad_paths_and_modes(tmp_path: object) -> None:
    ok = WorkloadSpec(name="w", argv=["true"])
    check_spec(ok)
    cases = [
        (WorkloadSpec(name="w", argv=[]), "no command"),
        (WorkloadSpec(name="w", argv=["x"], net="bad net!"), "--net"),  # bridge: a network now
        (WorkloadSpec(name="w", argv=["x"], workdir="rel"), "absolute"),
        (WorkloadSpec(name="w", argv=["x"], rootfs="/no/such/dir"), "does not exist"),
        (WorkloadSpec(name="w", argv=["x"], hostname="bad host"), "--hostname"),
        (WorkloadSpec(name="w", argv=["x"], limits=Limits(memory_bytes=10)), "too small"),
    ]
    for spec, msg in cases:
        with pytest.raises(SpecError, match=msg):
            check_spec(spec)


def test_spec_json_round_trip() -> None:
    spec = WorkloadSpec(
        name="w",
        argv=["a", "b"],
        env={"K": "V"},
        limits=Limits(1 << 20, 0.5, 3),
        restart="on-failure:2",
        net="host",
        hostname="h",
        workdir="/tmp",
    )
    assert WorkloadSpec.from_json(spec.to_json()) == spec
    assert spec.exec_env()["K"] == "V" and spec.exec_env()["HOSTNAME"] == "h"


def _parse(*argv: str) -> object:
    return cli.build_parser().parse_args(list(argv))


def test_run_flags_become_the_request_body() -> None:
    args = _parse(
        "run",
        "--name",
        "web",
        "--cpus",
        "0.5",
        "--memory",
        "256M",
        "--pids",
        "100",
        "--restart",
        "on-failure:3",
        "--hostname",
        "h",
        "--net",
        "host",
        "--env",
        "A=1",
        "-e",
        "B=2",
        "--workdir",
        "/srv",
        "-d",
        "--",
        "python3",
        "-m",
        "http.server",
        "-b",
        "::1",
    )
    body = run_body(args)  # type: ignore[arg-type]
    assert body == {
        "argv": ["python3", "-m", "http.server", "-b", "::1"],
        "name": "web",
        "cpus": "0.5",
        "memory": "256M",
        "pids": "100",
        "restart": "on-failure:3",
        "hostname": "h",
        "net": "host",
        "workdir": "/srv",
        "env": {"A": "1", "B": "2"},  # -e KEY alone takes the caller's value (issue 17.4)
    }
    assert args.detach  # type: ignore[attr-defined]


def test_command_without_double_dash_keeps_its_own_flags() -> None:
    # The first word is an image (docker's `run IMAGE CMD`); the command keeps its flags.
    body = run_body(_parse("run", "busybox", "ls", "-la", "/"))  # type: ignore[arg-type]
    assert body["argv"] == ["ls", "-la", "/"] and body["image"] == "busybox"


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["run", "--memory", "12Q", "--", "true"], "argument --memory: unknown unit"),
        (["run", "--cpus", "0", "--", "true"], "argument --cpus"),
        (["run", "--pids", "-1", "--", "true"], "argument --pids"),
        (["run", "--restart", "sometimes", "--", "true"], "argument --restart"),
        (["run", "--net", "bad net!", "--", "true"], "argument --net"),
        (["run", "--env", "1X=2", "--", "true"], "argument --env/-e"),
        (["run", "--bogus", "--", "true"], "--bogus"),
        (["ps", "--bogus"], "--bogus"),
        (["logs"], "name"),
    ],
)
def test_bad_flags_exit_125_with_a_clear_message(
    argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 125  # a usage error, as docker's CLI
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


def test_run_without_a_command_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", "--name", "x", "--socket", "/nonexistent.sock"]) == 125
    assert "no command given" in capsys.readouterr().err


def test_no_agent_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["ps", "--socket", "/nonexistent/agent.sock"]) == 1
    assert "no pystats agent socket at /nonexistent/agent.sock" in capsys.readouterr().err
    assert cli.main(["run", "--socket", "/nonexistent/agent.sock", "--", "true"]) == 125

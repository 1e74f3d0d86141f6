"""`pystats` answers a usage error as docker's CLI does: exit 125 (1-124 can be the workload's
own code), argparse's one-line message and where to read more, for every subcommand, nested ones
too, and for the flag values our own code refuses after parsing. "Not a terminal" is 1, as
docker's "the input device is not a TTY". `pystats-agent`, a daemon, keeps 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent import cli

REPO = Path(__file__).resolve().parents[2]
NOSOCK = "/nonexistent/pystats.sock"  # each error comes before any request


def _two_lines(err: str, prog: str, needle: str) -> None:
    lines = err.splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"{prog}: error: "), err
    assert needle in lines[0] and lines[1] == f"See '{prog} --help'.", err
    assert "usage:" not in err and "Traceback" not in err, err


@pytest.mark.parametrize(
    ("argv", "prog", "needle"),
    [
        (["--bogus"], "pystats", "unrecognized arguments: --bogus"),
        (["bogus"], "pystats", "invalid choice: 'bogus'"),
        (["run", "--bogus", "--", "true"], "pystats run", "unrecognized arguments: --bogus"),
        (["run", "--memory", "lots", "--", "true"], "pystats run", "argument --memory"),
        (["image", "prune", "--bogus"], "pystats image prune", "unrecognized arguments: --bogus"),
        (["image"], "pystats image", "the following arguments are required: COMMAND"),
        (["network", "create"], "pystats network create", "arguments are required: name"),
        (["pod", "bogus"], "pystats pod", "invalid choice: 'bogus'"),
        (["pod", "rm"], "pystats pod rm", "the following arguments are required"),
        (["container", "prune", "-x"], "pystats container prune", "unrecognized arguments: -x"),
        (["kill", "-s", "NOPE", "w"], "pystats kill", "'NOPE' is not a signal name"),
        (["logs"], "pystats logs", "the following arguments are required: name"),
        (["policy", "explain", "one"], "pystats policy explain", "invalid int value: 'one'"),
    ],
)
def test_a_usage_error_exits_125_with_one_line_and_a_hint(
    argv: list[str], prog: str, needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 125
    _two_lines(capsys.readouterr().err, prog, needle)


@pytest.mark.parametrize(
    ("argv", "prog", "needle"),
    [
        (["run", "--socket", NOSOCK], "pystats run", "no command given"),
        (
            ["run", "--socket", NOSOCK, "--userns=auto", "--userns-base", "200000", "--", "true"],
            "pystats run",
            "drop --userns-base",
        ),
        (["run", "--socket", NOSOCK, "-v", "x:/y", "--", "true"], "pystats run", "absolute"),
        (["run", "--socket", NOSOCK, "--env-file", "/nonexistent", "--", "true"], "pystats run",
         "--env-file"),
        (["update", "--socket", NOSOCK, "w"], "pystats update", "nothing to update"),
        (["exec", "--socket", NOSOCK, "w"], "pystats exec", "exec needs a command"),
        (["ps", "--socket", NOSOCK, "--filter", "status=exitted"], "pystats ps", "a status is"),
        (["policy", "explain", "0"], "pystats policy explain", "0 is not a process ID"),
        (["events", "--filter", "bogus"], "pystats events", "--filter 'bogus'"),
        (["export", "--since", "soon"], "pystats export", "cannot read 'soon' as a time"),
    ],
)  # fmt: skip
def test_a_flag_refused_after_parsing_exits_125_too(
    argv: list[str], prog: str, needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv) == 125
    _two_lines(capsys.readouterr().err, prog, needle)


def test_completion_without_a_shell_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("shtab")
    assert cli.main(["completion"]) == 125
    _two_lines(capsys.readouterr().err, "pystats completion", "name a shell")


def test_run_it_without_a_terminal_exits_1_as_docker(capsys: pytest.CaptureFixture[str]) -> None:
    r, w = os.pipe()
    saved = os.dup(0)
    try:
        os.dup2(r, 0)
        assert cli.main(["run", "-it", "--socket", NOSOCK, "--", "sh"]) == 1
    finally:
        os.dup2(saved, 0)
        for fd in (r, w, saved):
            os.close(fd)
    assert "the input device is not a TTY" in capsys.readouterr().err


def test_help_still_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main(["image", "prune", "--help"])
    assert e.value.code == 0 and "usage: pystats image prune" in capsys.readouterr().out


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *argv], cwd=REPO, capture_output=True, text=True, timeout=60
    )


def test_the_commands_exit_status_is_125_and_the_agents_stays_2() -> None:
    p = _run("agent.cli", "image", "prune", "--bogus")
    assert p.returncode == 125 and p.stdout == "", p
    _two_lines(p.stderr, "pystats image prune", "unrecognized arguments: --bogus")
    p = _run("agent.daemon_main", "--bogus")
    assert p.returncode == 2 and "unrecognized arguments: --bogus" in p.stderr, p

"""A command builds only its own group's parser (agent.cli.COMMANDS): the same parser as the
whole one's, for every command and subcommand, and `main` picks it from argv."""

from __future__ import annotations

import argparse

import pytest

from agent import cli


def _subparsers(p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for a in p._actions:
        if isinstance(a, argparse._SubParsersAction):
            return dict(a.choices)
    return {}


def _describe(p: argparse.ArgumentParser, prefix: str = "") -> dict[str, str]:
    """Every (sub)command's help text and defaults, by its path: what a user sees and gets."""
    defaults = {k: getattr(v, "__qualname__", v) for k, v in p._defaults.items()}
    out = {prefix: p.format_help() + repr(sorted(defaults.items()))}
    for name, q in _subparsers(p).items():
        out.update(_describe(q, f"{prefix} {name}".strip()))
    return out


FULL = cli.build_parser()


def test_every_command_is_in_the_table() -> None:
    whole = set(_subparsers(FULL))
    # The live view declares only `stats`, which history extends: every other is in the table.
    assert whole - set(cli.COMMANDS) == set(), "commands missing from agent.cli.COMMANDS"
    assert set(cli.COMMANDS) - whole == set(), "agent.cli.COMMANDS names no such command"


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_a_commands_own_parser_is_the_whole_ones(command: str) -> None:
    full = _describe(_subparsers(FULL)[command], command)
    own = _describe(_subparsers(cli.build_parser(command))[command], command)
    assert own == full


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["run", "-d", "busybox"], "run"),
        (["-h"], None),
        ([], None),
        (["--interval", "2", "stats"], None),  # a root option's value first: the whole parser
        (["--standalone", "stats", "--no-stream"], "stats"),
        (["bogus", "ps"], None),
        (["--", "ps"], None),
    ],
)
def test_command_of(argv: list[str], command: str | None) -> None:
    assert cli.command_of(argv) == command


@pytest.mark.parametrize("columns", ["40", "133", None, "0", "junk"])
def test_help_width_is_shutils(monkeypatch: pytest.MonkeyPatch, columns: str | None) -> None:
    """The parsers' help width, read without shutil, is the one argparse would get from it."""
    import shutil

    from agent.cli import common

    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    common._help_width.cache_clear()
    try:
        assert common._help_width() == shutil.get_terminal_size().columns - 2
        p = common.CliParser(prog="x")
        p.add_argument("--flag", help="word " * 60)
        assert max(len(line) for line in p.format_help().splitlines()) <= common._help_width()
    finally:
        common._help_width.cache_clear()  # the next test reads the width of its own environment


def test_a_plain_run_loads_no_dataclasses_shutil_or_http_client() -> None:
    """`pystats run -d --name N --net none -- CMD` (no limits): the name is checked with `re`
    alone, the default --restart needs no parse, the width needs no shutil, and the client is
    agent.api.wire: each chain is 10-15 modules, ~20 ms apiece under the test VM's emulation."""
    import os
    import subprocess
    import sys

    code = (
        "import sys; from agent.cli import main; "
        "main(['run', '-d', '--name', 'x', '--net', 'none', '--socket', '/nonexistent.sock', "
        "'--', 'true']); "
        "print(sorted(m for m in sys.modules if m in ('dataclasses', 'decimal', 'shutil', "
        "'http.client', 'email', 'ssl', 'inspect')))"
    )
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=repo)
    assert "no pystats agent socket at /nonexistent.sock" in r.stderr, r.stderr
    assert r.stdout.strip().endswith("[]"), r.stdout + r.stderr

"""Small pieces every CLI module shares: argv fixes, quiet broken pipes, name and size formats.

Standard library only (this module is imported at start-up by agent.cli).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what `cat` reports when its reader is gone
EXIT_USAGE = 125  # docker's code for an error of the CLI itself: 1-124 can be the workload's

if TYPE_CHECKING:
    _SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]
else:
    _SubParsers = argparse._SubParsersAction


class _Subcommands(_SubParsers):
    """Subparsers that note the chosen command's prog (``pystats image prune``, innermost
    last) in the namespace, for the errors found once parsing is done."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        if isinstance(values, list) and values and values[0] in self.choices:
            namespace._command = self.choices[values[0]].prog
        super().__call__(parser, namespace, values, option_string)


class CliParser(argparse.ArgumentParser):
    """argparse's parser answering a usage error as docker's CLI does: argparse's one-line
    message, where to read more (``See 'pystats run --help'.``) and exit 125, not 2."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.register("action", "parsers", _Subcommands)

    def error(self, message: str) -> NoReturn:
        raise SystemExit(_usage(self.prog, message))

    def _get_formatter(self) -> argparse.HelpFormatter:
        # argparse asks shutil for the terminal's width at each argument declared (~100 for a
        # command): shutil's import (9 modules) and an ioctl each time, 0.2 s of a command in
        # the test VM. The width is read once here, as shutil.get_terminal_size reads it.
        # (typeshed's protocol names only prog; every class given here is a HelpFormatter's.)
        return self.formatter_class(prog=self.prog, width=_help_width())  # type: ignore[call-arg]


@functools.cache
def _help_width() -> int:
    """argparse's width: the terminal's columns ($COLUMNS first, else 80), less 2."""
    columns = 0
    with contextlib.suppress(KeyError, ValueError):
        columns = int(os.environ["COLUMNS"])
    if columns <= 0:
        out = sys.__stdout__
        try:
            columns = os.get_terminal_size(out.fileno()).columns if out else 0
        except (AttributeError, ValueError, OSError):
            columns = 0
    return (columns or 80) - 2


def _usage(prog: str, message: str) -> int:
    print(f"{prog}: error: {message}\nSee '{prog} --help'.", file=sys.stderr)
    return EXIT_USAGE


def usage_error(args: argparse.Namespace, message: str) -> int:
    """A flag or argument our own code refused after parsing: said as argparse's, exit 125."""
    return _usage(str(getattr(args, "_command", "pystats")), message)


def unrecognized(args: argparse.Namespace, extras: Sequence[str]) -> NoReturn:
    """parse_args' own check, named after the innermost command (argparse names the root)."""
    raise SystemExit(usage_error(args, f"unrecognized arguments: {' '.join(extras)}"))


def describe_from_help(parser: argparse.ArgumentParser) -> None:
    """Give each subcommand without a description its one-line help from the command list, so
    that `pystats rm --help` says what rm does, not only its usage."""
    todo = [parser]
    while todo:
        p = todo.pop()
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                helps = {c.dest: c.help for c in action._choices_actions}
                for name, sp in action.choices.items():
                    if not sp.description and helps.get(name):
                        text = str(helps[name])
                        sp.description = text[:1].upper() + text[1:] + "."
                    todo.append(sp)


def silence_stdout() -> None:
    """After EPIPE on stdout: point it at /dev/null, so Python's flush at exit stays quiet."""
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def workload_name(text: str) -> str:
    """argparse type of a workload-name argument: never empty (the API has no such path)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("a workload name cannot be empty")
    return text


def size_short(n: int | None) -> str:
    """A byte count in the largest binary unit that keeps it readable: 512K, 256M, 1.5G."""
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "K", "M", "G", "T", "P"):
        if value < 1024 or unit == "P":
            if unit == "B" or value == int(value):
                return f"{int(value)}{unit}"
            return f"{value:.1f}{unit}" if value < 100 else f"{value:.0f}{unit}"
        value /= 1024
    raise AssertionError("unreachable")


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 group``, ``2 groups`` (``many`` for irregular plurals)."""
    return f"{n} {word if n == 1 else (many or word + 's')}"


def about(name: str, err: Exception) -> str:
    """An error about workload ``name`` for a command given several: prefixed with the name
    unless the message already quotes it ("no such workload: 'x'", not "x: no such ...") or
    is about the agent, not the name (an ApiError of status 0: no answer at all)."""
    message = str(err)
    if repr(name) in message or getattr(err, "status", None) == 0:
        return message
    return f"{name}: {message}"


def terminal_problem(instead: str) -> str | None:
    """Why a full-screen view cannot run here (stdin or stdout not a terminal: it would write
    escape codes into a file or pipe and never end), naming the command to use ``instead``."""
    if sys.stdin.isatty() and sys.stdout.isatty():
        return None
    return f"the live view needs a terminal (stdin and stdout); without one use {instead}"


def confirmed(question: str, cancelled: str) -> bool:
    """docker's prune prompt: ask on stdin, a pipe too; no answer (EOF) is a no, which says
    ``cancelled`` (what was left alone) on stderr."""
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        print()  # end the prompt's line
        answer = ""
    if answer.strip().lower() in ("y", "yes"):
        return True
    print(f"pystats: {cancelled}: nothing removed (-f: without asking)", file=sys.stderr)
    return False

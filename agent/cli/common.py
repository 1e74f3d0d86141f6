"""Small pieces every CLI module shares: argv fixes, quiet broken pipes, name and size formats.

Standard library only (this module is imported at start-up by agent.cli).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import stat
import sys
from collections.abc import Iterator, Sequence

EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what `cat` reports when its reader is gone
_NEGATIVE = re.compile(r"^-\d")


def walk_actions(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    """Every argument of ``parser`` and of its subparsers, depth first."""
    todo = [parser]
    while todo:
        p = todo.pop()
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                todo.extend(action.choices.values())
            else:
                yield action


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


def value_options(parser: argparse.ArgumentParser) -> set[str]:
    """Every option string (in ``parser`` and its subparsers) that takes exactly one value."""
    out: set[str] = set()
    for action in walk_actions(parser):
        if action.option_strings and action.nargs is None:
            out.update(action.option_strings)
    return out


def join_negative_values(argv: Sequence[str], options: set[str]) -> list[str]:
    """``--memory -5M`` -> ``--memory=-5M`` (``-t -1`` -> ``-t-1``), so that argparse hands a
    value that looks like an option to the option's own check, which then says what is wrong
    with it (argparse alone answers "expected one argument"). Stops at ``--``."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        tok = argv[i]
        if tok == "--":
            out.extend(argv[i:])
            break
        nxt = argv[i + 1] if i + 1 < len(argv) else None
        if tok in options and nxt is not None and _NEGATIVE.match(nxt):
            out.append(f"{tok}={nxt}" if tok.startswith("--") else tok + nxt)
            i += 2
            continue
        out.append(tok)
        i += 1
    return out


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


def unreachable(socket_path: str, err: BaseException) -> str:
    """Why the agent's socket at ``socket_path`` did not answer, in the words the sync client
    uses, plus the case where the path is something other than a socket."""
    cause = getattr(err, "os_error", err)  # aiohttp wraps the OSError of connect()
    with contextlib.suppress(OSError):
        if not stat.S_ISSOCK(os.stat(socket_path).st_mode):
            return f"{socket_path} is not a socket (--socket or $PYSTATS_SOCKET names the agent's)"
    if isinstance(cause, FileNotFoundError):
        return f"no pystats agent socket at {socket_path} (is it running?)"
    if isinstance(cause, PermissionError):
        return f"permission denied on {socket_path}: the pystats API is root-only"
    if isinstance(cause, ConnectionRefusedError):
        return f"the pystats agent at {socket_path} refused the connection (is it running?)"
    return f"no pystats agent answers at {socket_path}: {cause}"


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

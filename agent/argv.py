"""Command-line pieces both entry points share (`pystats` and `pystats-agent`)."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator, Sequence

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

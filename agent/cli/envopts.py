"""`run`'s environment and labels as docker takes them: ``-e KEY=VALUE``, ``-e KEY`` (the
caller's value; left out when the caller has none), ``--env-file FILE`` (KEY=VALUE or KEY lines,
``#`` comments; -e wins over the file), ``--label KEY[=VALUE]`` and ``--label-file``."""

from __future__ import annotations

import argparse
import os
import re
from typing import Any

KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def env_arg(text: str) -> str:
    key = text.partition("=")[0]
    if not KEY.match(key):
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE or KEY")
    return text


def _read_lines(path: str, what: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"--{what} {path}: {getattr(e, 'strerror', None) or e}") from None
    out = []
    for n, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if what == "env-file" and not KEY.match(text.partition("=")[0]):
            raise ValueError(f"--env-file {path}:{n}: {text!r} is not KEY=VALUE or KEY")
        out.append(line.lstrip() if what == "env-file" else text)
    return out


def _resolve(items: list[str]) -> dict[str, str]:
    """KEY=VALUE as given; a bare KEY takes the caller's value, or is left out."""
    env: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if sep:
            env[key] = value
        elif key in os.environ:
            env[key] = os.environ[key]
    return env


def add_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--env-file", action="append", default=[], metavar="FILE",
        help="read KEY=VALUE (or KEY: the caller's value) lines; -e wins over it",
    )  # fmt: skip
    p.add_argument(
        "-l", "--label", action="append", default=[], metavar="KEY[=VALUE]",
        help="metadata on the workload (inspect, ps --filter label=)",
    )  # fmt: skip
    p.add_argument(
        "--label-file", action="append", default=[], metavar="FILE",
        help="read KEY=VALUE label lines (# comments); -l wins over a file",
    )  # fmt: skip


def body(args: argparse.Namespace) -> dict[str, Any]:
    """The create body's ``env`` and ``labels``; ValueError for an unreadable file."""
    out: dict[str, Any] = {}
    items = [line for path in args.env_file for line in _read_lines(path, "env-file")]
    env = _resolve(items + list(args.env))
    if env:
        out["env"] = env
    labels: dict[str, str] = {}
    for item in [x for path in args.label_file for x in _read_lines(path, "label-file")] + list(
        args.label
    ):
        key, _, value = item.partition("=")
        if not key:
            raise ValueError(f"invalid --label {item!r}: KEY[=VALUE]")
        labels[key] = value
    if labels:
        out["labels"] = labels
    return out

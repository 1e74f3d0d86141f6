"""The -i/-t/--detach-keys options and `exec`'s arguments: argparse only, so that every
command's start stays free of asyncio and the stdio protocol (agent.cli.interactive runs the
sessions and is imported by the handlers that need one)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from agent.api.socketpath import SOCKET_HELP, default_socket
from agent.cli.common import workload_name

DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"
_CTRL = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}


def parse_detach_keys(text: str) -> bytes:
    """docker's format: comma-separated keys, each a character or ctrl-<a-z @ [ \\ ] ^ _>;
    an empty string turns detaching off."""
    out = bytearray()
    for key in (k for k in text.split(",") if text):
        k = key.strip()
        if len(k) == 1:
            out.append(ord(k))
        elif k.lower().startswith("ctrl-") and len(k) == 6:
            c = k[5].lower()
            if "a" <= c <= "z":
                out.append(ord(c) - ord("a") + 1)
            elif c in _CTRL:
                out.append(_CTRL[c])
            else:
                raise ValueError(f"invalid detach key {key!r}")
        else:
            raise ValueError(f"invalid detach key {key!r}: a character or ctrl-<key>")
    return bytes(out)


def _detach_keys(text: str) -> bytes:
    try:
        return parse_detach_keys(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_detach_keys(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--detach-keys", type=_detach_keys, default=parse_detach_keys(DEFAULT_DETACH_KEYS),
        metavar="KEYS", help="the key sequence that detaches (default ctrl-p,ctrl-q; '' for none)",
    )  # fmt: skip


def add_stdio_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-i", "--interactive", action="store_true", help="keep stdin open")
    p.add_argument("-t", "--tty", action="store_true", help="allocate a pseudo-terminal")


def register_exec(sub: Any) -> None:
    from agent.cli import envopts

    p = sub.add_parser(
        "exec",
        help="run a command inside a running workload",
        description="As docker exec: CMD runs in the workload's namespaces and cgroup, with its"
        " capabilities, no_new_privs, seccomp filter and uid mapping (never more privilege than"
        " the workload has), as its user unless -u. Exit status: CMD's, 126 not executable,"
        " 127 not found, 125 pystats failed.",
    )
    add_stdio_flags(p)
    p.add_argument("-d", "--detach", action="store_true", help="run CMD in the background")
    p.add_argument("-u", "--user", metavar="USER[:GROUP]", help="names from the workload's root")
    p.add_argument(
        "-e", "--env", action="append", type=envopts.env_arg, default=[], metavar="KEY=VALUE",
        help="set an environment variable (KEY alone: the caller's value)",
    )  # fmt: skip
    p.add_argument("-w", "--workdir", metavar="DIR", help="working directory inside")
    add_detach_keys(p)
    p.add_argument("name", type=workload_name, metavar="NAME")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="CMD")
    p.add_argument("--socket", default=default_socket(), help=SOCKET_HELP)
    p.set_defaults(func=_exec)


class NotATerminal(ValueError):
    """-it from something not a terminal: docker's CLI says so and exits 1 (not 125)."""


def stdio_body(args: argparse.Namespace) -> dict[str, Any]:
    """The create request's ``stdio`` object, absent without -i, -t and an attached --rm.
    NotATerminal for -it from something not a terminal (before anything is created, as docker
    checks). ``attach``: this CLI attaches right after the start, and the shim reads no output
    before it has (a quick command's output would be gone before the attach with --rm)."""
    attached = not getattr(args, "detach", False)
    if attached and args.tty and args.interactive and not os.isatty(0):
        raise NotATerminal("the input device is not a TTY (drop -t, or run it from a terminal)")
    body = {k: True for k in ("interactive", "tty") if getattr(args, k, False)}
    if attached and (body or getattr(args, "rm", False)):
        body["attach"] = True
    return {"stdio": body} if body else {}


def _exec(args: argparse.Namespace) -> int:
    from agent.cli.interactive import exec_command

    return exec_command(args)

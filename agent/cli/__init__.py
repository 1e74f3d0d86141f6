"""`pystats`: the command-line entry point.

Each group of subcommands lives in its own module with a ``register(subparsers)`` function that
only declares arguments; heavy imports (Textual, aiohttp) happen inside the handlers, so that
`pystats ps` or `pystats policy check` start fast. A command builds only its own group's parser:
all of them are about 50 parsers and 260 arguments, 0.3 s of each command under the test VM's
emulation, plus the imports of every group.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from agent.cli import view as cli_view
from agent.cli.common import CliParser, describe_from_help, unrecognized

Handler = Callable[[argparse.Namespace], int]

DESCRIPTION = """\
pystats: cgroup v2 monitoring, placement and workload launching.

With no command, opens the live view of the cgroup tree (like docker stats / systemd-cgtop).
It samples cgroupfs itself, or uses a running pystats-agent when one answers on its socket.
"""


# The groups' registrars, in the order they declare their subcommands (history's after view's:
# it adds `stats --at`). The live view's `register(parser, sub)` always runs: it also declares
# the root's own options.
REGISTRARS: tuple[tuple[str, str], ...] = (
    ("agent.cli.workloads", "register"),
    ("agent.cli.lifecycle", "register"),
    ("agent.cli.stdioopts", "register_exec"),
    ("agent.cli.images", "register"),
    ("agent.cli.network", "register"),  # network create|ls|rm|inspect, port
    ("agent.cli.pod", "register"),  # pod create|ls|inspect|stats|stop|start|rm
    ("agent.cli.policy", "register"),
    ("agent.cli.history", "register"),
    ("agent.cli.update", "register"),
    ("agent.cli.completion", "register"),
)
# Which registrars declare each command (by their module's last name); the live view's own are
# not listed. tests/unit/test_cli_lazy_parser.py checks this table against the registrars.
COMMANDS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("run", "ps", "logs", "stop", "kill", "rm", "inspect"), ("workloads",)),
    **dict.fromkeys(
        ("start", "pause", "unpause", "restart", "container", "wait", "top", "attach"),
        ("lifecycle",),
    ),
    "exec": ("stdioopts",),
    **dict.fromkeys(("pull", "load", "images", "rmi", "image"), ("images",)),
    **dict.fromkeys(("network", "port"), ("network",)),
    "pod": ("pod",),
    "policy": ("policy",),
    "stats": ("history",),
    **dict.fromkeys(("replay", "events", "export"), ("history",)),
    "update": ("update",),
    "completion": ("completion",),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; with ``command``, one with only the groups that declare it."""
    parser = CliParser(  # a usage error exits 125, as docker's CLI (2 is a workload's code)
        prog="pystats",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    cli_view.register(parser, sub)
    groups = COMMANDS.get(command or "")
    for module, func in REGISTRARS:
        if groups is None or module.rpartition(".")[2] in groups:
            getattr(importlib.import_module(module), func)(sub)
    describe_from_help(parser)
    return parser


def command_of(argv: Sequence[str]) -> str | None:
    """The subcommand ``argv`` names: its first word, when the words before it are all options.
    (After a root option's value, e.g. `--interval 2 stats`, None: the whole parser reads it.)"""
    for tok in argv:
        if tok == "--":
            return None
        if not tok.startswith("-"):
            return tok if tok in COMMANDS else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    from agent.argv import join_negative_values, value_options

    raw = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(command_of(raw))
    args, extras = parser.parse_known_args(join_negative_values(raw, value_options(parser)))
    if extras:
        unrecognized(args, extras)
    func: Handler | None = getattr(args, "func", None)
    if func is None:
        func = cli_view.default_handler
    try:
        return func(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `pystats ps | head -1`: the reader left, as for `cat`
        from agent.cli.common import EXIT_BROKEN_PIPE, silence_stdout

        silence_stdout()
        return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())

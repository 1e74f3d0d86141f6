"""`pystats`: the command-line entry point.

Each group of subcommands lives in its own module with a ``register(subparsers)`` function that
only declares arguments; heavy imports (Textual, aiohttp) happen inside the handlers, so that
`pystats ps` or `pystats policy check` start fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from agent.cli import completion as cli_completion
from agent.cli import history as cli_history
from agent.cli import images as cli_images
from agent.cli import lifecycle as cli_lifecycle
from agent.cli import network as cli_network
from agent.cli import pod as cli_pod
from agent.cli import policy as cli_policy
from agent.cli import stdioopts as cli_stdioopts
from agent.cli import update as cli_update
from agent.cli import view as cli_view
from agent.cli import workloads as cli_workloads
from agent.cli.common import describe_from_help

Handler = Callable[[argparse.Namespace], int]

DESCRIPTION = """\
pystats: cgroup v2 monitoring, placement and workload launching.

With no command, opens the live view of the cgroup tree (like docker stats / systemd-cgtop).
It samples cgroupfs itself, or uses a running pystats-agent when one answers on its socket.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pystats",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    cli_view.register(parser, sub)
    cli_workloads.register(sub)
    cli_lifecycle.register(sub)
    cli_stdioopts.register_exec(sub)
    cli_images.register(sub)
    cli_network.register(sub)  # network create|ls|rm|inspect, port
    cli_pod.register(sub)  # pod create|ls|inspect|stats|stop|start|rm
    cli_policy.register(sub)
    cli_history.register(sub)  # after view's: adds `stats --at`
    cli_update.register(sub)
    cli_completion.register(sub)
    describe_from_help(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from agent.argv import join_negative_values, value_options

    parser = build_parser()
    raw = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(join_negative_values(raw, value_options(parser)))
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

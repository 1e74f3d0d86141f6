"""Live view (`pystats` with no command) and `pystats stats` (docker stats for cgroups).

Only argparse here at import time: Textual, aiohttp and the collectors load inside handlers.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from agent.api.socketpath import SOCKET_HELP, default_socket

if TYPE_CHECKING:  # the TUI is imported only when a view opens (fast CLI start)
    from agent.tui.sources import Source

STATS_DESCRIPTION = """\
Print CPU, memory, network and block I/O, PIDs per cgroup, as docker stats (same formulas):

  CPU %              delta cpu.stat usage_usec / delta host CPU time * online CPUs * 100
                     (docker's formula: 100 % = one core busy)
  MEM USAGE / LIMIT  memory.current - inactive_file / memory.max (host RAM when "max")
  MEM %              usage / limit * 100
  NET I/O            a workload's own network namespace: bytes received / sent (from the
                     agent; "- / -" for other cgroups, --net host and without an agent)
  BLOCK I/O          io.stat rbytes / wbytes, summed over devices, since the cgroup was created
  PIDS               pids.current

"-" means unavailable (controller absent, e.g. on a hybrid v1/v2 host), never zero.
Uses a running pystats-agent when one answers on --socket; otherwise samples cgroupfs itself
(two samples --interval apart, as docker does). See agent/statsview/README.md.
"""


def _duration(text: str) -> float:
    from agent.config import parse_duration

    try:
        return parse_duration(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--root", help="cgroup root to show (default: the cgroup2 mount); implies standalone"
    )
    p.add_argument("--socket", default=default_socket(), help=SOCKET_HELP)
    p.add_argument(
        "--standalone", action="store_true", help="never use an agent: sample cgroupfs here"
    )
    p.add_argument(
        "--interval",
        type=_duration,
        default=1.0,
        help="time between refreshes, as the agent's config takes it: 1s, 500ms, 2m or"
        " seconds (default 1s)",
    )
    p.add_argument(
        "--demo", action="store_true", help="show a built-in demo tree (reads no cgroups)"
    )


def register(parser: argparse.ArgumentParser, sub: Any) -> None:
    _common(parser)
    p = sub.add_parser(
        "stats",
        help="per-cgroup resource usage, like docker stats",
        description=STATS_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(p)
    p.add_argument("--no-stream", action="store_true", help="print one snapshot and exit")
    p.add_argument("-a", "--all", action="store_true", help="also show unpopulated cgroups")
    p.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    p.add_argument(
        "names", nargs="*", metavar="NAME", help="only these workloads (or cgroups, by name)"
    )
    p.set_defaults(func=stats_handler)


def _fail(msg: str) -> int:
    print(f"pystats: error: {msg}", file=sys.stderr)
    return 1


def _demo(args: argparse.Namespace) -> Source:
    from agent.statsview.fake import demo_store
    from agent.tui.sources import SourceInfo, StoreSource

    info = SourceInfo("standalone", "demo (built-in store)", "/", "demo", False)
    return StoreSource(demo_store(), info, args.interval)


def _source(args: argparse.Namespace) -> Source:
    """The live data: the built-in demo, a running agent, or cgroupfs sampled here."""
    from agent.tui.sources import choose_source

    if args.demo:
        return _demo(args)
    return choose_source(args.socket, args.root, args.interval, args.standalone)


def default_handler(args: argparse.Namespace) -> int:
    from agent.cli.common import terminal_problem, usage_error

    if args.interval <= 0:
        return usage_error(args, "--interval must be positive")
    from cgroupfs.errors import CgroupError

    problem = terminal_problem("`pystats stats` (--no-stream, --format json)")
    if problem:  # as docker's "the input device is not a TTY": 1
        return _fail(problem)
    try:
        source = _source(args)
    except (CgroupError, OSError) as e:
        return _fail(str(e))
    from agent.tui.app import PystatsApp

    PystatsApp(source, tune_gc=True).run()
    return 0


def stats_handler(args: argparse.Namespace) -> int:
    if args.interval <= 0:
        from agent.cli.common import usage_error

        return usage_error(args, "--interval must be positive")
    import asyncio

    from agent.statsview.stats_cmd import run_stats
    from cgroupfs.errors import CgroupError

    try:
        source = _source(args)
        return asyncio.run(
            run_stats(
                source,
                stream=not args.no_stream,
                show_all=args.all,
                fmt=args.format,
                only=tuple(args.names),
            )
        )
    except (CgroupError, OSError) as e:
        return _fail(str(e))

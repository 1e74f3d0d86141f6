"""Recorded history: `pystats replay`, `pystats events`, `pystats export`, `pystats stats --at`.

They read the agent's history directory (<state_dir>/history) directly, so they work with no
agent running and while one records. Only argparse at import time.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

STATE_HELP = "the agent's state directory (default: state_dir of /etc/pystats/agent.yaml)"
AT_HELP = "a recorded moment: '10 minutes ago', -10m, 2026-12-07T06:50:00, Unix seconds"


def _state_dir(args: argparse.Namespace) -> str:
    if args.state_dir:
        return str(args.state_dir)
    from agent.config import AgentConfig, ConfigError, load_config

    try:
        return load_config(None).state_dir
    except ConfigError:
        return AgentConfig().state_dir


def _fail(msg: str) -> int:
    print(f"pystats: error: {msg}", file=sys.stderr)
    return 1


WARN_MAX = 3  # damaged records named one by one; the rest are counted (a bad disk has many)


def _warn(problems: list[str]) -> None:
    for p in problems[:WARN_MAX]:
        print(f"pystats: warning: damaged history skipped: {p}", file=sys.stderr)
    if len(problems) > WARN_MAX:
        more = len(problems) - WARN_MAX
        print(f"pystats: warning: and {more} more damaged records skipped", file=sys.stderr)


def register(sub: Any) -> None:
    stats = sub.choices.get("stats")
    if stats is not None:  # `pystats stats --at TIME`: the same table, from the history
        stats.add_argument("--at", help="show a recorded moment instead of now: " + AT_HELP)
        stats.add_argument("--state-dir", help=STATE_HELP)
        live = stats.get_default("func")
        stats.set_defaults(func=lambda a: stats_at_handler(a) if a.at else live(a))

    p = sub.add_parser(
        "replay",
        help="the live view on recorded history (keys [ ] a tick, { } a minute)",
        description="Open the live view at a recorded moment, with the same sort, filter, tree"
        " and detail as live; [ and ] step a tick back/forward, { and } a minute.",
    )
    p.add_argument("--at", required=True, help=AT_HELP)
    p.add_argument("--state-dir", help=STATE_HELP)
    p.set_defaults(func=replay_handler)

    p = sub.add_parser("events", help="recorded events: OOM kills, workload starts/exits, ...")
    p.add_argument("--since", help="from this time (default: the oldest recorded)")
    p.add_argument("--until", help="up to this time (default: now)")
    p.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="type=oom|start|exit|restart|placement|agent_start|agent_stop, cgroup=, workload=",
    )
    p.add_argument(
        "--format", choices=("table", "json"), default="table",
        help="table (the default) or json (an array of events)",
    )  # fmt: skip
    p.add_argument("--state-dir", help=STATE_HELP)
    p.set_defaults(func=events_handler)

    p = sub.add_parser("export", help="recorded stats rows of a time range as CSV or JSON")
    p.add_argument("--since", required=True, help="from this time: " + AT_HELP)
    p.add_argument("--until", default="now", help="up to this time (default: now)")
    p.add_argument(
        "--format",
        choices=("csv", "json"),
        default="csv",
        help="csv: one line per cgroup per tick; json: one document per tick per line",
    )
    p.add_argument("-a", "--all", action="store_true", help="also unpopulated and gone cgroups")
    p.add_argument("--state-dir", help=STATE_HELP)
    p.set_defaults(func=export_handler)


class _FlagError(ValueError):
    """A flag's value refused (--at, --since, --until, --filter): a usage error, exit 125."""


def _when(text: str) -> float:
    from agent.statsview.recorded import parse_when

    try:
        return parse_when(text)
    except ValueError as e:
        raise _FlagError(str(e)) from None


def _open(args: argparse.Namespace) -> Any:
    import os
    import stat

    from collectors.recorder.reader import HistoryReader
    from collectors.recorder.writer import history_dir_of

    d = history_dir_of(_state_dir(args))
    denied = LookupError(f"{d}: permission denied (the history is root's)")
    try:  # stat, not isdir: a state dir we may not enter is not "no history"
        is_dir = stat.S_ISDIR(os.stat(d).st_mode)
    except PermissionError:
        raise denied from None
    except OSError:
        is_dir = False
    if not is_dir:
        raise LookupError(f"no recorded history in {d} (does an agent record there? --state-dir)")
    if not os.access(d, os.R_OK | os.X_OK):
        raise denied
    return HistoryReader(d)


def _guard(run: Callable[[], int], args: argparse.Namespace) -> int:
    from agent.cli.common import usage_error
    from collectors.recorder.reader import NoHistory

    try:
        return run()
    except _FlagError as e:
        return usage_error(args, str(e))
    except (ValueError, LookupError, NoHistory, OSError) as e:
        return _fail(str(e))


def stats_at_handler(args: argparse.Namespace) -> int:
    def run() -> int:
        from agent.statsview.recorded import doc_at, names_from_events
        from agent.statsview.stats_cmd import render, shown

        when = _when(args.at)
        reader = _open(args)
        snap = reader.at(when)
        doc = doc_at(snap, names_from_events(reader.events(until=snap.wall)))
        sys.stdout.write(render(shown(doc, args.all), args.format))
        _warn(reader.problems)
        return 0

    return _guard(run, args)


def replay_handler(args: argparse.Namespace) -> int:
    from agent.cli.common import terminal_problem

    problem = terminal_problem("`pystats stats --at TIME` or `pystats export`")
    if problem:  # as docker's "the input device is not a TTY": 1
        return _fail(problem)

    def run() -> int:
        when = _when(args.at)
        reader = _open(args)
        if reader.span() is None:
            raise reader.nothing_readable()
        from agent.tui.app import PystatsApp
        from agent.tui.replay import ReplaySource

        PystatsApp(ReplaySource(reader.directory, when), tune_gc=True).run()
        return 0

    return _guard(run, args)


def _matches(ev: Any, filters: list[tuple[str, str]]) -> bool:
    for key, value in filters:
        got = ev.kind if key == "type" else getattr(ev, key, None)
        if str(got if got is not None else "") != value:
            return False
    return True


def events_handler(args: argparse.Namespace) -> int:
    def run() -> int:
        import json
        from dataclasses import asdict

        filters = []
        for f in args.filter:
            key, sep, value = f.partition("=")
            if not sep or key not in ("type", "cgroup", "workload", "pid", "comm"):
                raise _FlagError(
                    f"--filter {f!r}: expected type=, cgroup=, workload=, pid= or comm="
                )
            filters.append((key, value))
        since = _when(args.since) if args.since else None
        until = _when(args.until) if args.until else None
        reader = _open(args)
        evs = [e for e in reader.events(since, until) if _matches(e, filters)]
        if args.format == "json":
            out = []
            for e in evs:
                d = asdict(e)
                d["type"] = d.pop("kind")
                out.append(d)
            print(json.dumps(out, indent=1))
        else:
            _print_events(evs)
        _warn(reader.problems)
        return 0

    return _guard(run, args)


def _print_events(evs: list[Any]) -> None:
    import time

    print(f"{'TIME':19}  {'TYPE':11}  {'CGROUP':30}  {'WORKLOAD':12}  WHAT")
    for e in evs:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.wall))
        print(f"{stamp:19}  {e.kind:11}  {'/' + e.cgroup:30}  {e.workload or '-':12}  {e.text}")


def export_handler(args: argparse.Namespace) -> int:
    def run() -> int:
        from agent.statsview.export import write_csv, write_json_lines

        since, until = _when(args.since), _when(args.until)
        if until < since:
            raise _FlagError("--until is before --since")
        reader = _open(args)
        write = write_csv if args.format == "csv" else write_json_lines
        n = write(reader, since, until, sys.stdout, show_all=args.all)
        print(f"pystats: exported {n} ticks", file=sys.stderr)
        _warn(reader.problems)
        return 0

    return _guard(run, args)

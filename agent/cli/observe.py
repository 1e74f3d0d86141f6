"""`pystats ps` and `inspect` as docker users read them: STATUS ("Up 3 minutes", "Exited (3) 2
minutes ago", "Restarting (1) 3 seconds ago", "Up 5 seconds (Paused)"), CREATED, ``ps -q``,
``--filter`` (name, status, label, image, id) and ``--format`` / ``inspect --format`` with
docker's template fields for the common cases (agent.cli.template).

Each record is offered to templates twice over: with docker's field names (.Name, .State.Status,
.State.Pid, .State.ExitCode, .Config.Cmd, .HostConfig.Memory, .RestartCount, ...) and with
pystats' own keys as inspect --json prints them (.state, .limits.cpus, ...).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from agent.cli.common import size_short, usage_error
from agent.cli.images import size_text

FILTER_KEYS = ("name", "status", "label", "image", "id")
# workloads.supervisor.record.State's values (a unit test keeps them equal)
STATUSES = ("created", "running", "paused", "restarting", "exited")


def parse_time(iso: str | None) -> float | None:
    if not iso:
        return None
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def human_duration(seconds: float) -> str:
    """docker's units.HumanDuration."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = s // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = round(s / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{hours // 24 // 365} years"


def status_text(info: dict[str, Any], now: float) -> str:
    """docker's State.String() for a pystats record."""
    state = info["state"]
    started, finished = parse_time(info.get("started_at")), parse_time(info.get("finished_at"))
    code = info.get("exit_code")
    oom = " (OOM killed)" if info.get("oom_killed") else ""
    if state in ("running", "paused") and started is not None:
        up = f"Up {human_duration(now - started)}"
        return up + (" (Paused)" if state == "paused" else "")
    if state == "restarting":
        ago = "" if finished is None else f" {human_duration(now - finished)} ago"
        wait = info.get("restart_in_s")
        nxt = "" if wait is None else f" (next try in {human_duration(wait).lower()})"  # pystats
        return f"Restarting ({-1 if code is None else code}){ago}{oom}{nxt}"
    if state == "exited" and finished is not None:
        return f"Exited ({-1 if code is None else code}) {human_duration(now - finished)} ago{oom}"
    if state == "exited":
        return "Exited" + (f" ({code})" if code is not None else "")
    return "Created"


def docker_view(info: dict[str, Any]) -> dict[str, Any]:
    """inspect's record with docker's field names added (the common ones)."""
    lim = info.get("limits") or {}
    image = info.get("image") or {}
    argv = info.get("argv") or []
    policy, _, retries = str(info.get("restart_policy") or "no").partition(":")
    state = info["state"]
    view = {
        "Id": info["name"],
        "Name": "/" + info["name"],
        "Created": info.get("created_at"),
        "Path": argv[0] if argv else "",
        "Args": argv[1:],
        "Image": image.get("id") or "",
        "RestartCount": info.get("restart_count", 0),
        "LogPath": info.get("log_path"),
        "State": {
            "Status": state,
            "Running": state in ("running", "paused"),
            "Paused": state == "paused",
            "Restarting": state == "restarting",
            "OOMKilled": bool(info.get("oom_killed")),
            "Dead": False,
            "Pid": info.get("pid") or 0,
            "ExitCode": info.get("exit_code") or 0,
            "Error": info.get("error") or "",
            "StartedAt": info.get("started_at") or "0001-01-01T00:00:00Z",
            "FinishedAt": info.get("finished_at") or "0001-01-01T00:00:00Z",
        },
        "Config": {
            "Hostname": info.get("hostname"),
            "Env": [f"{k}={v}" for k, v in (info.get("env") or {}).items()],
            "Cmd": argv,
            "Image": image.get("ref") or "",
            "WorkingDir": info.get("workdir") or "",
            "Labels": info.get("labels") or {},
        },
        "HostConfig": {
            "Memory": lim.get("memory_bytes") or 0,
            "NanoCpus": int((lim.get("cpus") or 0) * 1e9),
            "PidsLimit": lim.get("pids") or 0,
            "NetworkMode": info.get("net"),
            "RestartPolicy": {"Name": policy, "MaximumRetryCount": int(retries or 0)},
        },
    }
    return {**info, **view}


def ps_row(info: dict[str, Any], now: float) -> dict[str, Any]:
    """docker ps's --format fields for one workload (and pystats' own keys)."""
    created = parse_time(info.get("created_at"))
    image = info.get("image") or {}
    labels = info.get("labels") or {}
    return {
        **info,
        "ID": info["name"],
        "Names": info["name"],
        "Image": image.get("ref") or "-",
        "Command": json.dumps(" ".join(info.get("argv") or [])),
        "CreatedAt": info.get("created_at") or "",
        "RunningFor": "" if created is None else human_duration(now - created) + " ago",
        "Status": status_text(info, now),
        "State": info["state"],
        "Labels": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
        "Size": size_text(info) if "size_rw" in info else "",  # ps --size
    }


def parse_filters(items: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in FILTER_KEYS:
            raise ValueError(f"invalid filter {item!r}: use {', '.join(FILTER_KEYS)} as KEY=VALUE")
        if key == "status" and value not in STATUSES:
            raise ValueError(f"invalid filter {item!r}: a status is one of {', '.join(STATUSES)}")
        out.setdefault(key, []).append(value)
    return out


def matches(info: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    """docker's rules: the values of one key are ORed, different keys ANDed; name and id match
    a substring, label KEY or KEY=VALUE, image its reference or id."""
    labels = info.get("labels") or {}
    image = info.get("image") or {}
    tests: dict[str, Callable[[str], bool]] = {
        "name": lambda v: v in info["name"],
        "id": lambda v: info["name"].startswith(v),
        "status": lambda v: info["state"] == v,
        "image": lambda v: v in (image.get("ref"), image.get("id")),
        "label": lambda v: (
            labels.get(v.partition("=")[0]) == v.partition("=")[2] if "=" in v else v in labels
        ),
    }
    return all(any(tests[key](v) for v in values) for key, values in filters.items())


def table(rows: list[dict[str, Any]], now: float) -> str:
    head = ("NAME", "STATUS", "CREATED", "PID", "RESTARTS", "MEMORY", "CPUS", "PIDS", "COMMAND")
    sized = any("size_rw" in r for r in rows)  # ps --size
    lines: list[tuple[str, ...]] = [head + (("SIZE",) if sized else ())]
    for r in rows:
        lim = r.get("limits") or {}
        created = parse_time(r.get("created_at"))
        lines.append(
            (
                r["name"],
                status_text(r, now),
                "-" if created is None else human_duration(now - created) + " ago",
                str(r.get("pid") or "-"),
                str(r.get("restart_count", 0)),
                size_short(lim.get("memory_bytes")),
                "-" if lim.get("cpus") is None else f"{lim['cpus']:g}",
                "-" if lim.get("pids") is None else str(lim["pids"]),
                " ".join(" ".join(r.get("argv") or []).split())[:40],  # one line per workload
            )
            + ((size_text(r),) if sized else ())
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "\n".join(
        "   ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def add_ps_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true", help="print names only")
    p.add_argument(
        "-s", "--size", action="store_true",
        help="bytes each workload wrote to its image snapshot (virtual: with the image's)",
    )  # fmt: skip
    p.add_argument(
        "-f", "--filter", action="append", default=[], metavar="KEY=VALUE",
        help="name=, status= (created running paused restarting exited), label=KEY[=VALUE],"
        " image=, id=; repeated keys are ORed, different keys ANDed",
    )  # fmt: skip
    p.add_argument(
        "--format", metavar="TEMPLATE",
        help="docker's Go-template subset, e.g. 'table {{.Names}}\\t{{.Status}}' or"
        " '{{json .}}' (fields .ID .Names .Image .Command .CreatedAt .RunningFor .Status"
        " .State .Labels, and pystats' own keys)",
    )  # fmt: skip


def add_inspect_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-f", "--format", metavar="TEMPLATE",
        help="e.g. '{{.State.Status}} {{.State.Pid}} {{.State.ExitCode}}' or '{{json .Config}}'"
        " (docker's common fields, and pystats' own keys)",
    )  # fmt: skip


def _client(args: argparse.Namespace) -> Any:
    from agent.api.client import WorkloadClient

    return WorkloadClient(args.socket)


def cmd_ps(args: argparse.Namespace) -> int:
    from agent.api.client import ApiError
    from agent.cli.template import TemplateError, render_rows

    try:
        filters = parse_filters(list(args.filter))
        # A status filter other than running reaches exited ones, as in docker.
        all_ = args.all or any(s != "running" for s in filters.get("status", []))
        rows = [r for r in _client(args).listing(all_=all_) if matches(r, filters)]
        if args.size:
            from agent.cli.images import add_sizes

            add_sizes(args.socket, rows)
    except ValueError as e:  # a --filter docker's CLI refuses too
        return usage_error(args, str(e))
    except ApiError as e:
        print(f"pystats: error: {e}", file=sys.stderr)
        return 1
    now = time.time()
    if args.quiet:
        out = [r["name"] for r in rows]
    elif args.json:
        out = [json.dumps(rows, indent=2)]
    elif args.format:
        try:
            out = render_rows(args.format, [ps_row(r, now) for r in rows])
        except TemplateError as e:
            return usage_error(args, f"--format: {e}")
    else:
        out = [table(rows, now)]
    for line in out:
        print(line)
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from agent.api.client import ApiError
    from agent.cli.template import TemplateError, render

    status, found = 0, []
    client = _client(args)
    for name in args.names:
        try:
            found.append(client.inspect(name))
        except ApiError as e:
            print(f"pystats: error: {e}", file=sys.stderr)
            status = 1
    if args.format:
        try:
            for info in found:
                print(render(args.format, docker_view(info)))
        except TemplateError as e:
            return usage_error(args, f"--format: {e}")
    elif found:
        # One name: its record, as before; several: a list, as docker prints.
        print(json.dumps(found[0] if len(args.names) == 1 else found, indent=2))
    return status

"""`pystats pod create|ls|inspect|stats|stop|start|rm` and run's --pod (workloads.pods)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from agent.cli.images import _add_socket as add_socket


def add_run_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--pod", metavar="POD",
        help="run in pod POD: its network, IPC and UTS namespaces, hostname and cgroup limits",
    )  # fmt: skip


def run_body(args: argparse.Namespace) -> dict[str, Any]:
    return {} if getattr(args, "pod", None) is None else {"pod": args.pod}


def register(sub: Any) -> None:
    p = sub.add_parser("pod", help="pods: workloads sharing namespaces and cgroup limits")
    psub = p.add_subparsers(dest="pod_command", metavar="COMMAND", required=True)
    commands = [
        ("create", "create a pod and start its infra process", _create),
        ("ls", "list pods", _ls),
        ("inspect", "pods as JSON, with their workloads", _inspect),
        ("stats", "a pod's usage and its workloads'", _stats),
        ("stop", "stop a pod's workloads, then its infra", _stop),
        ("start", "start a stopped pod's infra, then its workloads", _start),
        ("rm", "remove pods (refused while a workload of it runs, unless -f)", _rm),
    ]
    for name, text, func in commands:
        q = psub.add_parser(name, help=text)
        if name == "create":
            q.add_argument("name")
            q.add_argument("--hostname", help="the pod's hostname (default: its name)")
            q.add_argument("--memory", "-m", help="the pod's memory limit, shared by its workloads")
            q.add_argument("--cpus", help="the pod's CPU limit in cores")
            q.add_argument("--pids", help="the pod's process limit")
            q.add_argument(
                "-p", "--publish", action="append", default=[], metavar="[IP:]HOST:CONTAINER",
                help="publish a port of the pod (on its network; bridge unless --network)",
            )  # fmt: skip
            q.add_argument("--network", "--net", dest="network", help="the pod's CNI network")
        elif name == "ls":
            q.add_argument("--json", action="store_true", help="print JSON")
        else:
            q.add_argument("names", nargs="+", metavar="NAME")
        if name == "stop":
            q.add_argument("-t", "--time", type=float, help="grace period in seconds")
        if name == "rm":
            q.add_argument("-f", "--force", action="store_true", help="kill running workloads")
        add_socket(q)
        q.set_defaults(func=func)


def _client(args: argparse.Namespace) -> Any:
    from agent.api.pod_client import PodClient

    return PodClient(args.socket)


def _err(msg: str) -> int:
    print(f"pystats: error: {msg}", file=sys.stderr)
    return 1


def _create(args: argparse.Namespace) -> int:
    from agent.api.client import ApiError

    body: dict[str, Any] = {"name": args.name}
    for key in ("hostname", "memory", "cpus", "pids", "network"):
        if getattr(args, key) is not None:
            body[key] = getattr(args, key)
    if args.publish:
        body["ports"] = list(args.publish)
    try:
        pod = _client(args).create_pod(body)
    except (ApiError, OSError) as e:
        return _err(str(e))
    print(pod["name"])
    return 0


def _ls(args: argparse.Namespace) -> int:
    from agent.api.client import ApiError

    try:
        pods = _client(args).pods()
    except (ApiError, OSError) as e:
        return _err(str(e))
    if args.json:
        print(json.dumps(pods, indent=2))
        return 0
    print(f"{'NAME':<24} {'STATE':<10} {'HOSTNAME':<20} {'MEMORY':<12} WORKLOADS")
    for p in pods:
        mem = p["limits"]["memory_bytes"]
        names = ",".join(m["name"] for m in p["members"] if m["name"] != p["infra"]) or "-"
        print(f"{p['name']:<24} {p['state']:<10} {p['hostname']:<20} {mem or '-'!s:<12} {names}")
    return 0


def _each(args: argparse.Namespace, call: str, **kw: Any) -> tuple[int, list[Any]]:
    from agent.api.client import ApiError

    client, rc, out = _client(args), 0, []
    for name in args.names:
        try:
            out.append(getattr(client, call)(name, **kw))
        except (ApiError, OSError) as e:
            rc = _err(str(e))
    return rc, out


def _inspect(args: argparse.Namespace) -> int:
    rc, out = _each(args, "inspect_pod")
    if out:
        print(json.dumps(out, indent=2))
    return rc


def _mib(n: int | None) -> str:
    return "-" if n is None else f"{n / 1048576:.1f}MiB"


def _stats(args: argparse.Namespace) -> int:
    rc, out = _each(args, "pod_stats")
    print(f"{'NAME':<30} {'CPU %':>7} {'MEM USAGE / LIMIT':>24} {'PIDS':>6}")
    for doc in out:
        pod = doc["pod"]
        for row in [pod, *doc["workloads"]]:
            label = row["name"] if row is pod else f"  {row['name']}"
            cpu = "-" if row["cpu_percent"] is None else f"{row['cpu_percent']:.1f}%"
            lim = _mib(row["memory_max"]) if row["memory_max"] is not None else "max"
            mem = f"{_mib(row['memory_bytes'])} / {lim}"
            pids = "-" if row["pids"] is None else str(row["pids"])
            print(f"{label:<30} {cpu:>7} {mem:>24} {pids:>6}")
    return rc


def _stop(args: argparse.Namespace) -> int:
    return _print_names(*_each(args, "stop_pod", grace=args.time))


def _start(args: argparse.Namespace) -> int:
    return _print_names(*_each(args, "start_pod"))


def _print_names(rc: int, pods: list[Any]) -> int:
    for p in pods:
        print(p["name"])
    return rc


def _rm(args: argparse.Namespace) -> int:
    rc, out = _each(args, "rm_pod", force=args.force)
    for r in out:
        print(r["removed"])
    return rc

"""`pystats network create|ls|rm|inspect`, `pystats port NAME`, and run's network flags
(--net/--network, -p/--publish, -P/--publish-all, --expose, --network-rate)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from agent.cli.images import _add_socket as add_socket

NET_HELP = (
    "none (loopback only; the default here, where docker's is bridge: a workload is on a network"
    " only when asked), host (the host's network), bridge (pystats's default network: an"
    " address, outbound NAT, published ports), a network's name, or container:NAME (its netns)"
)


def net_mode(text: str) -> str:
    """none, host, container:NAME, or a network's name (whether it exists: the agent says)."""
    from workloads.runtime.names import NAME_RE

    name = text.removeprefix("container:")
    if not NAME_RE.match(name):
        raise argparse.ArgumentTypeError(
            f"invalid value {text!r}: none, host, bridge, a network's name or container:NAME"
        )
    return text


def add_run_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--net", "--network", dest="net", default="none", metavar="NET", type=net_mode,
        help=NET_HELP,
    )  # fmt: skip
    p.add_argument(
        "-p", "--publish", action="append", default=[], metavar="[IP:]HOST:CONTAINER[/PROTO]",
        help="publish a port on every host address (0.0.0.0, as docker) or on IP; needs a network",
    )  # fmt: skip
    p.add_argument(
        "-P", "--publish-all", action="store_true",
        help="publish each exposed port (--expose and the image's) on an ephemeral host port",
    )  # fmt: skip
    p.add_argument("--expose", action="append", default=[], metavar="PORT[/PROTO]")
    p.add_argument(
        "--network-rate", metavar="RATE",
        help="bandwidth limit in each direction, e.g. 1mbit (tc units, 1000-based)",
    )  # fmt: skip


def run_body(args: argparse.Namespace) -> dict[str, Any]:
    """The create body's network fields (net itself is set by run_body in cli.workloads)."""
    body: dict[str, Any] = {}
    if args.publish:
        body["ports"] = list(args.publish)
    if args.publish_all:
        body["publish_all"] = True
    if args.expose:
        body["expose"] = list(args.expose)
    if args.network_rate is not None:
        body["network_rate"] = args.network_rate
    return body


def register(sub: Any) -> None:
    p = sub.add_parser("network", help="CNI networks: create, ls, rm, inspect")
    nsub = p.add_subparsers(dest="network_command", metavar="COMMAND", required=True)
    commands = [
        (nsub, "create", "a user network with its own bridge and subnet", _create),
        (nsub, "ls", "list networks", _ls),
        (nsub, "rm", "remove unused networks", _rm),
        (nsub, "inspect", "networks as JSON, with their workloads' addresses", _inspect),
        (sub, "port", "a workload's published ports", _port),
    ]
    for parent, name, text, func in commands:
        q = parent.add_parser(name, help=text)
        if name == "create":
            q.add_argument("--subnet", help="IPv4 CIDR (default: a free /24 of 10.100.0.0/16)")
        if name == "ls":
            q.add_argument("--json", action="store_true", help="print JSON")
        if name in ("create", "port"):
            q.add_argument("name")
        if name in ("rm", "inspect"):
            q.add_argument("names", nargs="+", metavar="NAME")
        add_socket(q)
        q.set_defaults(func=func)


def _client(args: argparse.Namespace) -> Any:
    from agent.api.network_client import NetworkClient

    return NetworkClient(args.socket)


def _err(msg: str) -> int:
    print(f"pystats: error: {msg}", file=sys.stderr)
    return 1


def _create(args: argparse.Namespace) -> int:
    from agent.api.client import ApiError

    try:
        net = _client(args).create_network(args.name, args.subnet)
    except (ApiError, OSError) as e:
        return _err(str(e))
    print(net["name"])
    return 0


def _ls(args: argparse.Namespace) -> int:
    from agent.api.client import ApiError

    try:
        nets = _client(args).networks()
    except (ApiError, OSError) as e:
        return _err(str(e))
    if args.json:
        print(json.dumps(nets, indent=2))
        return 0
    print(f"{'NAME':<20} {'SUBNET':<18} {'GATEWAY':<15} {'BRIDGE':<15} WORKLOADS")
    for n in nets:
        users = ",".join(sorted(n["workloads"])) or "-"
        print(f"{n['name']:<20} {n['subnet']:<18} {n['gateway']:<15} {n['bridge']:<15} {users}")
    return 0


def _each(args: argparse.Namespace, fn: str) -> int:
    from agent.api.client import ApiError

    client, rc, out = _client(args), 0, []
    for name in args.names:
        try:
            out.append(getattr(client, fn)(name))
        except (ApiError, OSError) as e:
            rc = _err(str(e))
            continue
        if fn == "rm_network":
            print(name)
    if fn == "inspect_network" and out:
        print(json.dumps(out, indent=2))
    return rc


def _rm(args: argparse.Namespace) -> int:
    return _each(args, "rm_network")


def _inspect(args: argparse.Namespace) -> int:
    return _each(args, "inspect_network")


def _port(args: argparse.Namespace) -> int:
    from agent.api.client import ApiError

    try:
        info = _client(args).port(args.name)
    except (ApiError, OSError) as e:
        return _err(str(e))
    for p in info["ports"]:
        host = p["host_ip"] or "0.0.0.0"
        print(f"{p['container_port']}/{p['protocol']} -> {host}:{p['host_port']}")
    return 0

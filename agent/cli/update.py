"""`pystats update [FLAGS] NAME...`: change running workloads' limits live (docker update).

Values are checked against the host by the agent (workloads.lifecycle.update) before anything
is written: more CPUs or memory than the host has, a cpuset outside the parent's, a controller
missing from the workload's cgroup (a hybrid host) are refused in one line.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from agent.api.socketpath import SOCKET_HELP, default_socket
from agent.cli.common import about, workload_name

# (flag, dest, help): docker's flags; --pids is kept as pystats' older spelling of --pids-limit
FLAGS = (
    ("--cpus", "cpus", "CPU limit in cores (cpu.max), e.g. 0.5"),
    (
        "--cpu-shares",
        "cpu_shares",
        "relative weight 2-262144, converted to cpu.weight as runc does",
    ),
    ("--cpu-weight", "cpu_weight", "cpu.weight, 1-10000 (cgroup v2's own scale; pystats only)"),
    ("--cpuset-cpus", "cpuset_cpus", "CPUs allowed, e.g. 0-1,3 (cpuset.cpus)"),
    ("--cpuset-mems", "cpuset_mems", "memory nodes allowed (cpuset.mems)"),
    ("--memory", "memory", "memory limit (memory.max), e.g. 256M"),
    ("--memory-reservation", "memory_reservation", "soft guarantee (memory.low)"),
    ("--memory-high", "memory_high", "throttling threshold (memory.high; pystats only)"),
    ("--memory-swap", "memory_swap", "memory plus swap (swap = this - --memory), -1 unlimited"),
    ("--blkio-weight", "blkio_weight", "block I/O weight 10-1000 (io.weight)"),
    ("--oom-score-adj", "oom_score_adj", "-1000 to 1000, of the workload's PID 1"),
)
DEVICE_FLAGS = (
    ("--device-read-bps", "device_read_bps", "DEVICE:RATE, e.g. /dev/sda:1M (io.max rbps)"),
    ("--device-write-bps", "device_write_bps", "DEVICE:RATE (io.max wbps)"),
    ("--device-read-iops", "device_read_iops", "DEVICE:N (io.max riops)"),
    ("--device-write-iops", "device_write_iops", "DEVICE:N (io.max wiops)"),
)


def add_limit_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("limits (each written to the workload's cgroup)")
    for flag, dest, text in FLAGS:
        g.add_argument(flag, dest=dest, metavar="VALUE", help=text)
    g.add_argument("--pids-limit", "--pids", dest="pids_limit", metavar="N", help="pids.max")
    for flag, dest, text in DEVICE_FLAGS:
        g.add_argument(flag, dest=dest, action="append", metavar="DEVICE:RATE", help=text)


def limit_values(args: argparse.Namespace) -> dict[str, Any]:
    dests = [d for _, d, _ in FLAGS] + ["pids_limit"] + [d for _, d, _ in DEVICE_FLAGS]
    return {d: getattr(args, d) for d in dests if getattr(args, d, None) is not None}


def register(sub: Any) -> None:
    p = sub.add_parser(
        "update",
        help="change running workloads' limits live (docker update)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_limit_flags(p)
    p.add_argument("names", nargs="+", metavar="NAME", type=workload_name)
    p.add_argument("--socket", default=default_socket(), help=SOCKET_HELP)
    p.set_defaults(func=cmd_update)


def cmd_update(args: argparse.Namespace) -> int:
    from agent.api.client import ApiError, WorkloadClient

    values = limit_values(args)
    if not values:
        from agent.cli.common import usage_error

        return usage_error(args, "nothing to update: give at least one limit flag")
    client = WorkloadClient(args.socket)
    status = 0
    for name in args.names:
        try:
            client._json("POST", client._path(name, "/update"), values)
            print(name)
        except ApiError as e:
            print(f"pystats: error: {about(name, e)}", file=sys.stderr)
            status = 1
            if e.status == 0:  # no agent answers: every other name would say the same
                break
    return status

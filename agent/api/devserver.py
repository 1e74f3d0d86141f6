"""A workload API server without the rest of the agent, for tests and benchmarks.

    python -m agent.api.devserver --root /sys/fs/cgroup/pystats --state /tmp/st \
        --socket /tmp/st/api.sock

It serves only the workload routes; the real daemon (agent/daemon.py) mounts the same routes
beside its others. SIGTERM/SIGINT stop the server; the workloads keep running, as they do when
the real agent stops.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from agent.api.server import make_app, serve_unix
from cgroupfs.paths import CgroupRoot
from workloads.lifecycle.manager import WorkloadManager


async def serve(args: argparse.Namespace) -> None:
    manager = WorkloadManager(
        CgroupRoot(args.root),
        args.state,
        log_max_bytes=args.log_max_bytes,
        log_keep=args.log_keep,
        use_fork_server=not args.no_fork_server,
    )
    await manager.start()
    for problem in manager.problems:
        print(f"devserver: {problem}", file=sys.stderr)
    app = make_app(manager, allowed_uids=[0, *args.allow_uid])
    runner = await serve_unix(app, args.socket, mode=int(args.mode, 8))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    watcher = asyncio.create_task(manager.run())
    print("devserver: ready", flush=True)
    await stop.wait()
    await manager.close()
    await watcher
    await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m agent.api.devserver")
    p.add_argument("--root", required=True, help="the agent's cgroup root")
    p.add_argument("--state", required=True, help="state directory")
    p.add_argument("--socket", required=True, help="API socket path")
    p.add_argument("--mode", default="600", help="socket mode, octal (default 600)")
    p.add_argument("--allow-uid", type=int, action="append", default=[], help="besides root")
    p.add_argument("--log-max-bytes", type=int, default=10 * 1024 * 1024)
    p.add_argument("--log-keep", type=int, default=3)
    p.add_argument("--no-fork-server", action="store_true", help="one interpreter per shim")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="devserver: %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())

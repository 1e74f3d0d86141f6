"""`pystats start/restart/wait/pause/unpause/container prune`: clients of the agent's lifecycle
routes (agent.api.lifecycle_routes). Each takes several names, as docker's do: every name is
tried, each printed when done, and the exit status is 1 if any failed."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

from agent.api.socketpath import SOCKET_HELP, default_socket
from agent.cli.common import about, confirmed, workload_name

Action = Callable[[Any, str, argparse.Namespace], str]


def _post(client: Any, name: str, verb: str, **query: Any) -> dict[str, Any]:
    out: dict[str, Any] = client._json("POST", client._path(name, "/" + verb, **query))
    return out


def _start(client: Any, name: str, args: argparse.Namespace) -> str:
    _post(client, name, "start")
    return name


def _restart(client: Any, name: str, args: argparse.Namespace) -> str:
    _post(client, name, "restart", grace=args.time)
    return name


def _pause(client: Any, name: str, args: argparse.Namespace) -> str:
    _post(client, name, "pause")
    return name


def _unpause(client: Any, name: str, args: argparse.Namespace) -> str:
    _post(client, name, "unpause")
    return name


def _wait(client: Any, name: str, args: argparse.Namespace) -> str:
    info = _post(client, name, "wait")
    code = info.get("exit_code")
    return "-1" if code is None else str(code)  # docker prints each exit code


def each_name(action: Action) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        from agent.api.client import ApiError, WorkloadClient

        client = WorkloadClient(args.socket, timeout=None)
        status = 0
        for name in args.names:
            try:
                print(action(client, name, args), flush=True)
            except ApiError as e:
                print(f"pystats: error: {about(name, e)}", file=sys.stderr)
                status = 1
                if e.status == 0:  # no agent answers: every other name would say the same
                    break
        return status

    return handler


def _prune(args: argparse.Namespace) -> int:
    from agent.api.client import ApiError, WorkloadClient

    if not args.force and not confirmed(
        "This removes every exited workload (record, logs, cgroup). Go on?",
        "container prune cancelled",
    ):
        return 0
    client = WorkloadClient(args.socket)
    try:
        removed = client._json("POST", "/v1/workloads-prune")["removed"]
    except ApiError as e:
        print(f"pystats: error: {e}", file=sys.stderr)
        return 1
    print("Deleted workloads:" if removed else "Nothing to delete")
    for name in removed:
        print(name)
    return 0


def _socket(p: argparse.ArgumentParser) -> None:
    p.add_argument("--socket", default=default_socket(), help=SOCKET_HELP)


def _names(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="+", metavar="NAME", type=workload_name)


def register(sub: Any) -> None:
    specs: list[tuple[str, str, Action]] = [
        ("start", "run exited workloads again (their restart policy applies again)", _start),
        ("pause", "freeze every process of workloads (cgroup.freeze)", _pause),
        ("unpause", "thaw paused workloads", _unpause),
        ("wait", "block until workloads exit for good; print their exit codes", _wait),
    ]
    for cmd, text, action in specs:
        p = sub.add_parser(cmd, help=text, description=text)
        _names(p)
        _socket(p)
        p.set_defaults(func=each_name(action))

    p = sub.add_parser("restart", help="stop workloads (as pystats stop), then start them")
    p.add_argument(
        "-t", "--time", type=float, help="grace seconds (default: its --stop-timeout, else 10)"
    )
    _names(p)
    _socket(p)
    p.set_defaults(func=each_name(_restart))

    register_top(sub)
    register_attach(sub)

    p = sub.add_parser("container", help="manage workloads as a group (docker's `container`)")
    csub = p.add_subparsers(dest="container_command", metavar="ACTION", required=True)
    pr = csub.add_parser("prune", help="remove every exited workload")
    pr.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")
    _socket(pr)
    pr.set_defaults(func=_prune)


def stop_one(client: Any, name: str, args: argparse.Namespace) -> str:
    client.stop(name, grace_s=args.time)
    return name


def kill_one(client: Any, name: str, args: argparse.Namespace) -> str:
    client.kill(name, signal=args.signal)
    return name


def rm_one(client: Any, name: str, args: argparse.Namespace) -> str:
    client.rm(name, force=args.force)
    return name


def add_run_flags(p: argparse.ArgumentParser) -> None:
    """`pystats run`'s docker flags for how a workload runs and ends."""
    p.add_argument(
        "--init",
        action="store_true",
        help="run Debian's tini as PID 1: it forwards signals to CMD and reaps orphans, so"
        " `stop` ends a plain `sleep` at once (pystats: needs the host's /, no --rootfs yet)",
    )
    p.add_argument(
        "--stop-signal", type=_checked("parse_signal"), metavar="SIGNAL",
        help="signal that `stop` sends first (default TERM)",
    )  # fmt: skip
    p.add_argument(
        "--stop-timeout", type=_checked("parse_stop_timeout"), metavar="SECONDS",
        help="seconds `stop` waits before cgroup.kill (default 10; pystats refuses -1)",
    )  # fmt: skip
    p.add_argument(
        "--rm", action="store_true",
        help="remove the workload once it has exited (and will not be restarted)",
    )  # fmt: skip


def _checked(parser: str) -> Callable[[str], str]:
    def check(text: str) -> str:
        from workloads.runtime import runopts
        from workloads.runtime.errors import SpecError

        try:
            getattr(runopts, parser)(text)
        except SpecError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
        return text

    return check


def run_opts_body(args: argparse.Namespace) -> dict[str, Any]:
    """The API's ``run`` object, absent when no flag is given."""
    run: dict[str, Any] = {}
    if args.init:
        run["init"] = True
    if args.stop_signal is not None:
        run["stop_signal"] = args.stop_signal
    if args.stop_timeout is not None:
        run["stop_timeout"] = float(args.stop_timeout)
    if args.rm:
        run["auto_remove"] = True
    return {"run": run} if run else {}


def final_record(client: Any, name: str) -> dict[str, Any]:
    """The workload's record once it exited for good (a --rm one's last record too)."""
    return _post(client, name, "wait")


def _top(args: argparse.Namespace) -> int:
    """docker top: `ps` (default -ef) run here on the workload's PIDs (host PIDs)."""
    import subprocess

    from agent.api.client import ApiError, WorkloadClient

    client = WorkloadClient(args.socket)
    try:
        pids = client._json("GET", client._path(args.name, "/top"))["pids"]
    except ApiError as e:
        print(f"pystats: error: {e}", file=sys.stderr)
        return 1
    if not pids:
        print(f"pystats: error: workload {args.name!r} has no processes", file=sys.stderr)
        return 1
    opts = list(args.ps_options) or ["-ef"]
    # -e would list every process: ps takes -p for the selection, so drop it from the options.
    opts = [o.replace("e", "") if o.startswith("-") and not o.startswith("--") else o for o in opts]
    opts = [o for o in opts if o != "-"]
    proc = subprocess.run(["ps", *opts, "-p", ",".join(map(str, pids))], check=False)
    return proc.returncode


def register_top(sub: Any) -> None:
    p = sub.add_parser(
        "top",
        help="the processes of a workload (host PIDs), as ps shows them",
        description="Runs ps (default -ef) on the processes of the workload's cgroup. As docker"
        " top; PIDs are the host's, not those inside the workload.",
    )
    p.add_argument("name", type=workload_name)
    p.add_argument("ps_options", nargs=argparse.REMAINDER, metavar="PS OPTIONS")
    _socket(p)
    p.set_defaults(func=_top)


PROXIED = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")


def _bool(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not true or false")


def add_attach_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--sig-proxy", type=_bool, default=True, metavar="BOOL",
        help="without -d: pass the signals this command receives (Ctrl-C's INT, TERM, HUP,"
        " QUIT, USR1, USR2) to the workload (default true)",
    )  # fmt: skip


@contextlib.contextmanager
def signals_proxied(args: argparse.Namespace, name: str) -> Iterator[None]:
    """While a `run` streams its output: each signal received goes to the workload (docker's
    --sig-proxy); the stream ends when the workload does."""
    if not getattr(args, "sig_proxy", True):
        yield
        return
    import signal

    from agent.api.client import ApiError, WorkloadClient

    def forward(signum: int, _frame: object) -> None:
        try:
            WorkloadClient(args.socket, timeout=10).kill(name, signal=signal.Signals(signum).name)
        except ApiError as e:
            print(f"pystats: could not pass {signal.Signals(signum).name}: {e}", file=sys.stderr)

    old = {s: signal.signal(getattr(signal, s), forward) for s in PROXIED}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(getattr(signal, s), handler)


def _attach(args: argparse.Namespace) -> int:
    """A workload made with -i/-t: its stdio (agent.cli.interactive). Else follow its output
    from now on, passing signals to it. Either way, exit with its exit code."""
    from agent.api.client import ApiError, WorkloadClient
    from agent.cli.common import EXIT_BROKEN_PIPE, silence_stdout
    from agent.cli.interactive import attach_console

    client = WorkloadClient(args.socket)
    try:
        if client.inspect(args.name)["state"] not in ("running", "paused", "restarting"):
            print(f"pystats: error: workload {args.name!r} is not running", file=sys.stderr)
            return 1
        console = attach_console(args, args.name)
        if console is not None:
            return console
        with signals_proxied(args, args.name):
            out = sys.stdout.buffer
            try:
                for chunk in client.logs(args.name, follow=True, tail=0):
                    out.write(chunk)
                    out.flush()
            except BrokenPipeError:
                silence_stdout()
                return EXIT_BROKEN_PIPE
        code = final_record(client, args.name).get("exit_code")
    except ApiError as e:
        print(f"pystats: error: {e}", file=sys.stderr)
        return 1
    return 125 if code is None else int(code)


def register_attach(sub: Any) -> None:
    p = sub.add_parser(
        "attach",
        help="attach to a running workload's stdio (its terminal with -t)",
        description="As docker attach. A workload run with -i/-t: its terminal (or stdin and"
        " output), detached with the detach keys (default ctrl-p,ctrl-q). Without: its output"
        " from now on, signals (Ctrl-C) passed to it unless --sig-proxy=false. The exit code is"
        " the workload's.",
    )
    p.add_argument("name", type=workload_name)
    add_attach_flags(p)
    from agent.cli.stdioopts import add_detach_keys

    add_detach_keys(p)
    p.add_argument("--no-stdin", action="store_true", help="do not attach stdin")
    _socket(p)
    p.set_defaults(func=_attach)

"""`pystats run/ps/logs/stop/kill/rm/inspect`: the workload commands, clients of the agent API.

Only argparse is imported at start-up; the handlers import the small http.client-based client.
`pystats run` without -d streams the workload's output and exits with its exit code, as
`docker run` does (125 when the agent refused or could not start it).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any

from agent.api.socketpath import SOCKET_HELP
from agent.cli import envopts, stdioopts
from agent.cli import images as cli_images
from agent.cli import network as cli_network
from agent.cli import pod as cli_pod
from agent.cli.common import silence_stdout, usage_error, workload_name

EXIT_API_ERROR = 125
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what `cat` reports when its reader is gone


def _socket_default() -> str:
    from agent.api.socketpath import default_socket

    return default_socket()


def _memory(text: str) -> str:
    from workloads.runtime.errors import SpecError
    from workloads.runtime.values import parse_limits

    try:
        parse_limits(memory=text)
    except SpecError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("invalid --memory: ")) from None
    return text


def _cpus(text: str) -> str:
    from workloads.runtime.errors import SpecError
    from workloads.runtime.values import parse_limits

    try:
        parse_limits(cpus=text)
    except SpecError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("invalid --cpus: ")) from None
    return text


def _pids(text: str) -> str:
    if text != "max" and not (text.isdigit() and int(text) >= 1):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer or max")
    return text


def _restart(text: str) -> str:
    if text == "no":  # the default, which argparse runs through here too: nothing to import
        return text
    from workloads.lifecycle.restart import parse_restart
    from workloads.runtime.errors import SpecError

    try:
        parse_restart(text)
    except SpecError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def _userns_base(text: str) -> int:
    from workloads.runtime.errors import SpecError
    from workloads.runtime.values import parse_userns_base

    try:
        return parse_userns_base(text)
    except SpecError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("invalid --userns-base ")) from None


def _userns_mode(text: str) -> str:
    if text != "auto":
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a mode: use --userns alone, or --userns=auto (put the command "
            "after --)"
        )
    return text


def _tail(text: str) -> int | None:
    if text == "all":
        return None
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of lines or all")
    return int(text)


def _grace(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 1e9:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds >= 0")
    return value


def _signal(text: str) -> str:
    """A signal name (KILL, SIGKILL) or number, checked here: the agent would refuse it too."""
    import signal

    t = text.upper()
    if t.isdigit():
        if not 1 <= int(t) <= signal.SIGRTMAX:
            raise argparse.ArgumentTypeError(f"{text!r}: a signal number is 1 to {signal.SIGRTMAX}")
        return t
    if (t if t.startswith("SIG") else "SIG" + t) not in signal.Signals.__members__:
        raise argparse.ArgumentTypeError(f"{text!r} is not a signal name (e.g. KILL, TERM, HUP)")
    return text


def _env(text: str) -> str:
    key, sep, _ = text.partition("=")
    if not sep or not key or not (key[0].isalpha() or key[0] == "_"):
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return text


def _cap(text: str) -> str:
    from workloads.runtime.caps import canonical

    try:
        return canonical(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _security_opt(text: str) -> str:
    from workloads.runtime.errors import SpecError
    from workloads.runtime.security import parse_security_opts

    try:
        parse_security_opts([text])
    except SpecError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("invalid --security-opt ")) from None
    return text


def _add_security(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "security",
        "By default a workload keeps docker's 14 capabilities (CHOWN, DAC_OVERRIDE, FSETID, "
        "FOWNER, MKNOD, NET_RAW, SETGID, SETUID, SETFCAP, SETPCAP, NET_BIND_SERVICE, "
        "SYS_CHROOT, KILL, AUDIT_WRITE), runs with no_new_privs, and under the seccomp "
        "profile of podman and crun (/usr/share/containers/seccomp.json).",
    )
    g.add_argument(
        "--cap-add", action="append", type=_cap, default=[], metavar="CAP",
        help="add a capability (SYS_ADMIN or CAP_SYS_ADMIN; ALL for every one)",
    )  # fmt: skip
    g.add_argument(
        "--cap-drop", action="append", type=_cap, default=[], metavar="CAP",
        help="drop a capability (ALL: keep only those added)",
    )  # fmt: skip
    g.add_argument(
        "--privileged",
        action="store_true",
        help="root-equivalent: every capability, no seccomp profile, no masked paths, every "
        "device; only for workloads trusted as much as host root",
    )
    g.add_argument(
        "--security-opt", action="append", type=_security_opt, default=[], metavar="OPT",
        help="no-new-privileges=false, seccomp=unconfined, seccomp=FILE (docker's JSON format)",
    )  # fmt: skip


def _add_socket(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--socket",
        default=_socket_default(),
        help=SOCKET_HELP,
    )


def register(sub: Any) -> None:
    p = sub.add_parser(
        "run",
        help="launch an isolated workload with limits",
        description="Launch CMD in new mount, PID, network, UTS, IPC and cgroup namespaces, in "
        "its own cgroup with the limits in force before its first instruction. With --userns it "
        "also gets a user namespace that owns the others: root inside is an unprivileged host "
        "uid and gid (BASE, default 100000; ids 0-65535 inside map to BASE..BASE+65535 on the "
        "host), so host files it can see but does not own are as out of reach as for any other "
        "user. Host files outside the range appear owned by nobody (65534); chown a --rootfs "
        "into the range (e.g. chown -R 100000:100000 DIR) for the workload to own it.",
    )
    p.add_argument("--name", help="workload name (default: generated)")
    p.add_argument(
        "--cpus", type=_cpus, help="CPU limit in cores (cpu.max), e.g. 0.5 (default: no limit)"
    )
    p.add_argument(
        "--memory", type=_memory,
        help="memory limit (memory.max), e.g. 256M; docker's -m too (default: no limit)",
    )  # fmt: skip
    p.add_argument(
        "--pids", type=_pids,
        help="maximum number of processes (pids.max); docker's --pids-limit too (default: no "
        "limit)",
    )  # fmt: skip
    # docker's spellings, separate so that an error names the flag the user typed
    p.add_argument("-m", dest="memory", type=_memory, help=argparse.SUPPRESS)
    p.add_argument("--pids-limit", dest="pids", type=_pids, help=argparse.SUPPRESS)
    p.add_argument(
        "--restart",
        type=_restart,
        default="no",
        help="no | on-failure[:N] | always | unless-stopped (default no)",
    )
    p.add_argument(
        "--rootfs",
        help="directory to pivot_root into (default: the host's /, read-only, with private "
        "/tmp, /run and /var/tmp)",
    )
    p.add_argument("--hostname", help="hostname inside (default: the name)")
    cli_network.add_run_flags(p)  # --net/--network, -p, -P, --expose, --network-rate
    cli_pod.add_run_flags(p)  # --pod
    p.add_argument(
        "--userns",
        nargs="?",
        const=True,  # bare --userns, as before; not a string, so argparse keeps it as is
        type=_userns_mode,
        metavar="auto",
        help="run in a new user namespace, root inside mapped to host uid/gid BASE;"
        " --userns=auto gives the workload a 65536-id range of its own, released by rm",
    )
    p.add_argument(
        "--userns-base",
        type=_userns_base,
        metavar="BASE",
        help="first host uid/gid of the 65536-id range (default 100000; implies --userns);"
        " it must hold no account, group or /etc/subuid, /etc/subgid range",
    )
    p.add_argument(
        "--env", "-e", action="append", type=envopts.env_arg, default=[],
        help="KEY=VALUE, or KEY for the caller's value",
    )  # fmt: skip
    envopts.add_flags(p)
    p.add_argument("--workdir", "-w", help="working directory inside")
    p.add_argument("-d", "--detach", action="store_true", help="print the name and return")
    stdioopts.add_stdio_flags(p)  # -i, -t
    stdioopts.add_detach_keys(p)
    _add_security(p)
    _lifecycle().add_run_flags(p)  # --init, --stop-signal, --stop-timeout, --rm
    _lifecycle().add_attach_flags(p)  # --sig-proxy
    _add_mounts(p)
    cli_images.add_run_flags(p)
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="IMAGE [CMD...] | -- CMD ...")
    _add_socket(p)
    p.set_defaults(func=cmd_run)

    from agent.cli import observe

    p = sub.add_parser("ps", help="list workloads")
    p.add_argument("-a", "--all", action="store_true", help="include exited workloads")
    p.add_argument("--json", action="store_true", help="print JSON")
    observe.add_ps_flags(p)
    _add_socket(p)
    p.set_defaults(func=observe.cmd_ps)

    p = sub.add_parser(
        "logs",
        help="print a workload's output",
        description="Its stdout to stdout and its stderr to stderr, as docker logs. Output"
        " stored by an earlier pystats has no times and streams: shown as stdout, and left out"
        " by --since/--until.",
    )
    p.add_argument("-f", "--follow", action="store_true", help="follow until it exits")
    p.add_argument(
        "-n", "--tail", type=_tail, metavar="N",
        help="only the last N lines (all: everything, the default); with -f, then follow",
    )  # fmt: skip
    p.add_argument("-t", "--timestamps", action="store_true", help="show each line's time")
    when = "RFC3339 (2026-12-07T10:20:00Z), Unix seconds, or a duration ago (10m, 1h30m)"
    p.add_argument("--since", type=_log_time, metavar="TIME", help="from this time: " + when)
    p.add_argument("--until", type=_log_time, metavar="TIME", help="up to this time: " + when)
    p.add_argument("name", type=workload_name)
    _add_socket(p)
    p.set_defaults(func=cmd_logs)

    from agent.cli import lifecycle

    p = sub.add_parser("stop", help="SIGTERM, then cgroup.kill after a grace period")
    p.add_argument(
        "-t", "--time", type=_grace, help="grace seconds (default: its --stop-timeout, else 10)"
    )
    p.add_argument("names", nargs="+", metavar="NAME", type=workload_name)
    _add_socket(p)
    p.set_defaults(func=lifecycle.each_name(lifecycle.stop_one))

    p = sub.add_parser("kill", help="send a signal (default KILL: the whole cgroup)")
    p.add_argument(
        "-s", "--signal", default="KILL", type=_signal,
        help="signal name (KILL, SIGTERM) or number (default: KILL)",
    )  # fmt: skip
    p.add_argument("names", nargs="+", metavar="NAME", type=workload_name)
    _add_socket(p)
    p.set_defaults(func=lifecycle.each_name(lifecycle.kill_one))

    p = sub.add_parser("rm", help="remove a stopped workload (record, logs, cgroup)")
    p.add_argument("-f", "--force", action="store_true", help="kill it first if running")
    p.add_argument("names", nargs="+", metavar="NAME", type=workload_name)
    _add_socket(p)
    p.set_defaults(func=lifecycle.each_name(lifecycle.rm_one))

    p = sub.add_parser("inspect", help="workloads' records as JSON (or --format)")
    p.add_argument("names", nargs="+", metavar="NAME", type=workload_name)
    observe.add_inspect_flags(p)
    _add_socket(p)
    p.set_defaults(func=observe.cmd_inspect)


def _lifecycle() -> Any:
    from agent.cli import lifecycle

    return lifecycle


def _interactive() -> Any:
    from agent.cli import interactive

    return interactive


def _err(msg: str) -> None:
    print(f"pystats: error: {msg}", file=sys.stderr)


def _client(args: argparse.Namespace) -> Any:
    from agent.api.client import WorkloadClient

    return WorkloadClient(args.socket)


def run_body(args: argparse.Namespace) -> dict[str, Any]:
    cmd, image = cli_images.split_run_args(args)  # IMAGE [CMD...] or -- CMD...
    body: dict[str, Any] = {"argv": cmd, "net": args.net, "restart": args.restart, **image}
    for key in ("name", "cpus", "memory", "pids", "rootfs", "hostname", "workdir"):
        value = getattr(args, key)
        if value is not None:
            body[key] = value
    if args.rootfs is not None:
        body["rootfs"] = os.path.abspath(args.rootfs)
    body.update(envopts.body(args))  # -e, --env-file, --label
    body.update(cli_network.run_body(args))  # -p, -P, --expose, --network-rate
    body.update(cli_pod.run_body(args))  # --pod
    if args.userns == "auto" and args.userns_base is not None:
        raise ValueError("--userns=auto picks the range itself: drop --userns-base")
    if args.userns or args.userns_base is not None:
        body["userns"] = "auto" if args.userns == "auto" else True
    if args.userns_base is not None:
        body["userns_base"] = args.userns_base
    if mounts := mounts_body(args):
        body["mounts"] = mounts
    body.update(_lifecycle().run_opts_body(args))
    body.update(stdioopts.stdio_body(args))  # -i, -t
    security = security_body(args)
    if security:
        body["security"] = security
    return body


def security_body(args: argparse.Namespace) -> dict[str, Any]:
    """The ``security`` object of the request: only what the flags change from the default."""
    out: dict[str, Any] = {}
    if args.security_opt:  # imported only then: the security module loads ctypes and more
        from workloads.runtime.security import parse_security_opts

        out = parse_security_opts(list(args.security_opt))
    if args.cap_add:
        out["cap_add"] = list(args.cap_add)
    if args.cap_drop:
        out["cap_drop"] = list(args.cap_drop)
    if args.privileged:
        out["privileged"] = True
    return out


def _copy_out(chunks: Iterable[bytes]) -> bool:
    """Copy a log stream to stdout; False when the reader went away (`pystats logs -f W | head`)."""
    out = sys.stdout.buffer
    try:
        for chunk in chunks:
            out.write(chunk)
            out.flush()
    except BrokenPipeError:
        # As `cat` would, but quietly: no traceback, and no second error when Python flushes
        # stdout at exit.
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        return False
    return True


def cmd_run(args: argparse.Namespace) -> int:
    from agent.api.client import ApiError

    try:
        body = run_body(args)
    except stdioopts.NotATerminal as e:
        _err(str(e))
        return 1  # docker's code for it
    except ValueError as e:  # a flag's value, as docker's 125 for an invalid -v or --env-file
        return usage_error(args, str(e))
    client = _client(args)
    try:
        info = cli_images.create_pulling(client, args, body)  # pulls a missing image first
    except ApiError as e:
        _err(str(e))
        return EXIT_API_ERROR
    name = info["name"]
    if args.detach:
        if info.get("state") == "exited" and info.get("error"):  # as docker: no ID, its code
            _err(f"{name}: {info['error']}")
            return int(info.get("exit_code") or EXIT_API_ERROR)
        print(name)
        return 0
    if args.interactive or args.tty:  # its terminal or stdin, through the shim
        code = _interactive().attach_console(args, name, run=True)
        if code is not None:
            return int(code)
    try:
        with _lifecycle().signals_proxied(args, name):  # --sig-proxy: Ctrl-C reaches it
            if not _copy_out(_output(client, args, name)):
                return EXIT_BROKEN_PIPE
        final = _lifecycle().final_record(client, name)  # also after --rm removed it
    except ApiError as e:
        _err(str(e))
        return EXIT_API_ERROR
    code = final.get("exit_code")
    return EXIT_API_ERROR if code is None else int(code)


def _output(client: Any, args: argparse.Namespace, name: str) -> Iterator[bytes]:
    """The workload's output from its start, followed. An attached --rm run without -i/-t has
    the shim hold its output (stdio.attach): the log is opened first, so its removal cannot
    come before, then the agent lets the output go (POST .../stdio)."""
    from agent.api.client import ApiError

    if not args.rm or args.interactive or args.tty:
        yield from client.logs(name, follow=True)
        return
    resp = client._open("GET", client._path(name, "/logs", follow=1), timeout=None)
    try:
        with contextlib.suppress(ApiError):  # refused: the shim lets it go after a while
            client._json("POST", client._path(name, "/stdio"))
        while chunk := resp.read1(65536):
            yield chunk
    finally:
        resp.close()


def cmd_logs(args: argparse.Namespace) -> int:
    """Frames of stream 1 to stdout, 2 to stderr; 141 when the reader of either went away."""
    from agent.api.client import ApiError

    outs = {1: sys.stdout.buffer, 2: sys.stderr.buffer}
    frames = _client(args).log_frames(
        args.name,
        follow=args.follow,
        tail=args.tail,
        since=args.since,
        until=args.until,
        timestamps=args.timestamps,
    )
    try:
        for sid, data in frames:
            out = outs.get(sid, outs[1])
            out.write(data)
            out.flush()
    except BrokenPipeError:
        silence_stdout()  # as `cat`: quietly, no second error at exit
        return EXIT_BROKEN_PIPE
    except ApiError as e:
        _err(str(e))
        return 1
    return 0


def _log_time(text: str) -> float:
    from agent.cli.logtime import parse_log_time

    try:
        return parse_log_time(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


_MOUNT_FLAGS = (
    (
        ("-v", "--volume"),
        "HOST:CONTAINER[:ro]",
        "bind a host path (the only way, with --mount and --tmpfs, to write host files)",
    ),
    (
        ("--mount",),
        "type=bind|tmpfs,...",
        "type=bind,source=HOST,target=PATH[,readonly] or type=tmpfs,target=PATH"
        "[,tmpfs-size=64m][,tmpfs-mode=1777]",
    ),
    (
        ("--tmpfs",),
        "PATH[:size=..,mode=..]",
        "a private tmpfs (nosuid, nodev, noexec unless 'exec')",
    ),
    (
        ("--device",),
        "HOST[:CONTAINER[:PERMS]]",
        "add a host device node to /dev (PERMS of rwm, default rwm)",
    ),
)


def _add_mounts(p: argparse.ArgumentParser) -> None:
    for names, metavar, text in _MOUNT_FLAGS:
        p.add_argument(*names, action="append", default=[], metavar=metavar, help=text)
    p.add_argument(
        "--read-only",
        action="store_true",
        help="make the --rootfs read-only (add --tmpfs for writable paths)",
    )


def mounts_body(args: argparse.Namespace) -> dict[str, Any]:
    """The API's ``mounts`` object (workloads.runtime.mounts.from_body), empty when unused. The
    syntax is checked here (SpecError is a ValueError: exit 125); the agent checks the host side."""
    if args.volume or args.mount or args.tmpfs or args.device:  # the mount code only then
        from workloads.runtime import mounts

        for parse, values in (
            (mounts.parse_volume, args.volume),
            (mounts.parse_mount, args.mount),
            (mounts.parse_tmpfs, args.tmpfs),
            (mounts.split_device, args.device),
        ):
            for value in values:
                parse(value)
    body: dict[str, Any] = {}
    for key, value in (
        ("volumes", args.volume),
        ("mounts", args.mount),
        ("tmpfs", args.tmpfs),
        ("devices", args.device),
    ):
        if value:
            body[key] = list(value)
    if args.read_only:
        body["read_only"] = True
    return body

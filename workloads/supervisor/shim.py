"""The shim: supervises one run of one workload, independently of the agent.

It is a fresh single-threaded process (forked by the fork server, or started with
``python -m workloads.supervisor.shim DIR RUN``; never forked from the threaded agent). It:

1. leaves the agent's session and cgroup (its own session, the ``<root>/shims`` leaf), so the
   workload keeps running when the agent stops or crashes;
2. unshares the PID namespace and forks the workload process, which is PID 1 there (with
   --userns a helper makes the namespaces instead, and the shim writes its uid/gid maps:
   see workloads.runtime.userns);
3. moves that process into ``<root>/workloads/<name>`` (limits already set by the manager) and
   only then lets it go on to set up its namespaces and exec (workloads.runtime.init);
4. holds the read ends of the workload's stdout and stderr pipes and writes what comes to
   rotated logs, one timestamped record per line and stream (workloads.supervisor.logs);
5. reaps it, reads memory.events oom_kill, and records the exit durably in ``status.json``.

``status.json`` (a RunStatus, workloads.supervisor.record) belongs to the shim; the manager reads
it, at every start too, which is how it learns of exits that happened while it was down. A full
disk costs output (counted in the record), never the record of the exit: the shim holds a small
reserve file beside it and gives that space up for its last record if it must.
"""

from __future__ import annotations

import contextlib
import errno
import os
import selectors
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from cgroupfs.paths import CgroupRoot
from workloads.runtime import cgroups, linux, security, startsignals, userns
from workloads.runtime.init import EXIT_SETUP, exec_workload
from workloads.runtime.runopts import exec_spec
from workloads.runtime.spec import WorkloadSpec
from workloads.supervisor import procs
from workloads.supervisor.console import Console, read_some
from workloads.supervisor.logs import STDERR, STDOUT, StreamLog, log_path
from workloads.supervisor.record import (
    CONFIG,
    STATUS,
    RunStatus,
    ShimConfig,
    State,
    read_json,
    write_json_atomic,
)

DRAIN_AFTER_EXIT_S = 2.0
RESERVE = "status.reserve"
RESERVE_BYTES = 64 * 1024  # room for a few status records on a full filesystem
DROPS_REPORT_EVERY_S = 1.0


def status_path(wdir: str) -> str:
    return os.path.join(wdir, STATUS)


def _reserve_space(wdir: str) -> None:
    try:
        fd = os.open(os.path.join(wdir, RESERVE), os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.posix_fallocate(fd, 0, RESERVE_BYTES)
        finally:
            os.close(fd)
    except OSError as e:
        _note(f"cannot reserve room for the exit record: {e}")


def _release_space(wdir: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(wdir, RESERVE))


def _write_status(wdir: str, status: RunStatus, *, last: bool = False) -> None:
    """Record ``status``; a ``last`` record (the exit) may use the reserved space to get written."""
    try:
        write_json_atomic(status_path(wdir), status.to_json())
    except OSError as e:
        if not last or e.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        _release_space(wdir)
        write_json_atomic(status_path(wdir), status.to_json())


def _redirect_own_stdio(wdir: str) -> None:
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    own = os.open(os.path.join(wdir, "shim.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    os.dup2(own, 1)
    os.dup2(own, 2)
    os.close(null)
    os.close(own)


def _note(msg: str) -> None:
    with contextlib.suppress(OSError):
        os.write(2, f"{time.strftime('%Y-%m-%dT%H:%M:%S')} shim[{os.getpid()}]: {msg}\n".encode())


def _state_dir(wdir: str) -> str:
    # A workload's dir is STATE_DIR/workloads/ID (lifecycle.manager): the state dir is two up.
    return os.path.dirname(os.path.dirname(wdir))


def warm(wdir: str) -> None:
    """In the fork server after a spawn: what the next shim would read, read once here."""
    security.warm(_state_dir(wdir))


def run_shim(wdir: str, run: int) -> int:
    """Supervise one run; returns the shim's own exit status (0 once the exit is recorded)."""
    try:
        return _supervise(wdir, run)
    except BaseException as e:
        # Whatever failed, the manager must not wait forever for a record of this run.
        _note(f"failed: {e!r}")
        with contextlib.suppress(Exception):
            failed = RunStatus(
                run=run,
                state=State.EXITED,
                exit_code=EXIT_SETUP,
                finished_at=time.time(),
                error=f"the supervisor failed: {e}",
            )
            _write_status(wdir, failed, last=True)
        return 1
    finally:
        _release_space(wdir)


def _supervise(wdir: str, run: int) -> int:
    with contextlib.suppress(OSError):  # already a session leader (start_new_session)
        os.setsid()
    _redirect_own_stdio(wdir)
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_IGN)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)

    _reserve_space(wdir)
    cfg_path = os.path.join(wdir, CONFIG)
    cfg = ShimConfig.from_json(read_json(cfg_path), cfg_path)
    spec = exec_spec(cfg.spec)  # --init: tini runs the command
    root = CgroupRoot(cfg.root)
    rel = cgroups.workload_rel(spec.name, spec.pod)
    try:
        cgroups.move_to(root, cgroups.SHIMS, os.getpid())
    except Exception as e:  # not fatal: the workload still runs, only less protected
        _note(f"could not move to {cgroups.SHIMS}: {e}")
    log = StreamLog(log_path(wdir), cfg.log_max_bytes, cfg.log_keep)
    oom_before = cgroups.oom_kills(root, spec.name, spec.pod)
    # The security plan, its seccomp program compiled once into the state dir's cache, made
    # while the host's files are in view; the workload's init inherits it (and reports a failure).
    with contextlib.suppress(Exception):
        security.prepare(spec.security, security.cache_dir(_state_dir(wdir)))

    console = Console(wdir, spec, root, rel, run == 1)  # -i/-t, attach and exec (stdio.sock)
    out_r, out_w, in_r = console.workload_stdio()  # with -t: the pty's master and slave
    eo_r, eo_w = console.stderr_pipe()  # the workload's stderr, kept apart from its stdout
    go_r, go_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    started, error = True, ""
    mask = startsignals.block_all()  # signals before its exec stay pending (startsignals)
    if spec.userns:
        pid, started, error = _fork_in_userns(
            spec, (out_r, out_w, eo_r, eo_w), go_r, go_w, err_r, err_w, in_r
        )
    else:
        linux.unshare(linux.CLONE_NEWPID)
        pid = os.fork()
        if pid == 0:
            try:
                _child_stdio(out_w, eo_w, (out_r, out_w, eo_r, eo_w, go_w, err_r), in_r)
                os.closerange(3, go_r)
                exec_workload(spec, go_r, err_w)
            finally:
                os._exit(EXIT_SETUP)
    startsignals.restore(mask)
    for fd in (out_w, eo_w, go_r, err_w):
        os.close(fd)
    console.forked(pid)

    record = RunStatus(
        run=run,
        state=State.RUNNING,
        shim_pid=os.getpid(),
        shim_start=procs.start_ticks(os.getpid()),
        pid=pid,
        pid_start=procs.start_ticks(pid),
        started_at=time.time(),
    )
    placed = False
    if started:
        try:
            placed = cgroups.move_to(root, rel, pid)
        except Exception as e:
            error = f"could not move the workload into {rel}: {e}"
    if placed:
        _write_status(wdir, record)
        # Once "running" is on disk the workload can be killed (`pystats kill` at once): its end
        # of the pipe is then gone, and its wait status below says how it ended.
        with contextlib.suppress(BrokenPipeError):
            os.write(go_w, b"g")
    elif started:
        error = error or f"could not move the workload into {rel}: it vanished"
    os.close(go_w)

    now = [record]  # the running record as last written (exec_at, drops)

    def update(**changes: Any) -> None:
        # Best effort while running (a full disk); the exit record says it all again.
        if placed:
            now[0] = now[0].but(**changes)
            with contextlib.suppress(OSError):
                _write_status(wdir, now[0])

    wait_status, errtext = _pump(
        pid,
        (out_r, eo_r),
        err_r,
        log,
        error,
        lambda dropped: update(log_bytes_dropped=dropped),
        lambda: update(exec_at=time.time()),
        console,
    )
    log.close()
    if log.dropped:
        _note(f"dropped {log.dropped} bytes of output: {log.last_error}")
    code, term_sig = procs.exit_code_of(wait_status)
    console.finish(code)
    record = now[0].but(
        state=State.EXITED,
        finished_at=time.time(),
        exit_code=code,
        signal=term_sig,
        oom_killed=cgroups.oom_kills(root, spec.name, spec.pod) > oom_before,
        error=(errtext.strip() or None),
        log_bytes_dropped=log.dropped,
    )
    _write_status(wdir, record, last=True)
    return 0


def _child_stdio(out_w: int, eo_w: int, close: tuple[int, ...], stdin: int | None = None) -> None:
    """In a freshly forked child: stdin from /dev/null, stdout and stderr into their log pipes,
    and the pipes' other fds closed."""
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null if stdin is None else stdin, 0)  # -i/-t: the shim's pipe or pty
    os.dup2(out_w, 1)
    os.dup2(eo_w, 2)
    for fd in (null, *close):
        os.close(fd)


def _fork_in_userns(
    spec: WorkloadSpec,
    outs: tuple[int, ...],
    go_r: int,
    go_w: int,
    err_r: int,
    err_w: int,
    stdin: int | None = None,
) -> tuple[int, bool, str]:
    """Start the workload through the user-namespace helper (workloads.runtime.userns).

    ``outs``: both ends of the stdout and stderr pipes. Returns (pid, started, error).
    Started: ``pid`` is the workload, now a child of this shim, waiting for its go. Not
    started: ``pid`` is the helper, not yet reaped, which has failed or will fail (its message
    comes on the error pipe) and ``error`` says what the shim saw.
    """
    sync_r, sync_w = os.pipe2(os.O_CLOEXEC)
    ctl_r, ctl_w = os.pipe2(os.O_CLOEXEC)
    # The helper exits once it has forked the workload; the workload must come to us, not init.
    linux.set_child_subreaper()
    helper = os.fork()
    if helper == 0:
        try:
            _child_stdio(outs[1], outs[3], (*outs, go_w, err_r, sync_r, ctl_w), stdin)
            _close_other_fds({go_r, err_w, sync_w, ctl_r})
            userns.run_helper(spec, sync_w, ctl_r, go_r, err_w)
        finally:
            os._exit(EXIT_SETUP)
    os.close(sync_w)
    os.close(ctl_r)
    try:
        if os.read(sync_r, 1) != userns.SYNC_UNSHARED:
            return helper, False, ""  # it said why on the error pipe
        line = spec.id_map()
        assert line is not None
        try:
            userns.write_id_maps(helper, line)
        except OSError as e:
            return helper, False, f"could not map the user namespace's ids: {e.strerror}"
        os.write(ctl_w, userns.CTL_MAPPED)
        data = b""
        while chunk := os.read(sync_r, 64):  # EOF: the helper has exited
            data += chunk
    finally:
        os.close(sync_r)
        os.close(ctl_w)
    text = data.decode(errors="replace").strip()
    if not text.isdigit():
        return helper, False, ""
    os.waitpid(helper, 0)  # once reaped, its orphan (the workload) is ours
    return int(text), True, ""


def _close_other_fds(keep: set[int]) -> None:
    """Close every fd from 3 up except ``keep`` (the helper must hold nothing of the shim's)."""
    low = 3
    for fd in sorted(keep):
        if fd >= low:
            os.closerange(low, fd)
            low = fd + 1
    os.closerange(low, max(os.sysconf("SC_OPEN_MAX"), 1 << 16))


def _pump(
    pid: int,
    outs: tuple[int, int],
    err_r: int,
    log: StreamLog,
    error: str,
    report_drops: Callable[[int], None],
    report_exec: Callable[[], None],
    console: Console,
) -> tuple[int, str]:
    """Copy output (``outs``: the stdout and stderr pipes) to the log until the workload has
    exited and its pipes are drained. ``report_exec``: called once the error pipe closes with
    nothing said while the workload lives (its exec closed it: the command runs).

    Returns (wait status, what the runtime said on the error pipe)."""
    pidfd = os.pidfd_open(pid)
    sel = selectors.DefaultSelector()
    sel.register(err_r, selectors.EVENT_READ, "err")
    sel.register(pidfd, selectors.EVENT_READ, "exit")
    console.register(sel)  # its fds carry their handlers
    console.read_output({outs[0]: STDOUT, outs[1]: STDERR})  # now, or once `run` attached
    wait_status: int | None = None
    deadline: float | None = None
    errbuf = error.encode()
    open_fds = {*outs, err_r}
    reported, next_report = 0, 0.0
    while open_fds:
        hold = console.hold_left()  # the output waits for the run's client (read_output)
        if deadline is not None:  # the drain counts from the output's release too
            deadline = max(deadline, console.released_at + DRAIN_AFTER_EXIT_S)
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        events = sel.select(hold if hold is not None else timeout)
        if not events and hold is not None:
            console.release()  # the client never came: the log takes the output
            continue
        if not events and deadline is not None:
            break  # something in the namespace still holds the pipe: stop waiting for it
        for key, _ in events:
            if callable(key.data):
                key.data()
                continue
            if key.data == "exit":
                _, wait_status = os.waitpid(pid, 0)
                sel.unregister(pidfd)
                os.close(pidfd)
                deadline = time.monotonic() + DRAIN_AFTER_EXIT_S
                continue
            fd = int(key.fd)
            chunk = read_some(fd)  # a pty master says EIO for EOF
            if chunk is None:  # a pty master is non-blocking (console.Feeder)
                continue
            if not chunk:
                sel.unregister(fd)
                os.close(fd)
                open_fds.discard(fd)
                if fd == err_r and errbuf == error.encode() and wait_status is None:
                    report_exec()
                elif fd == err_r:  # it never ran: its create waits for its end, not a client
                    console.release()
            elif key.data in (STDOUT, STDERR):
                log.write(key.data, chunk)
                console.output(chunk, stderr=key.data == STDERR)
                if log.dropped != reported and time.monotonic() >= next_report:
                    reported, next_report = log.dropped, time.monotonic() + DROPS_REPORT_EVERY_S
                    report_drops(reported)
            else:
                errbuf += chunk
    if wait_status is None:
        _, wait_status = os.waitpid(pid, 0)
        os.close(pidfd)
    for fd in open_fds:
        os.close(fd)
    sel.close()
    if error:
        log.write(STDERR, f"pystats: {error}\n".encode())
    return wait_status, errbuf.decode(errors="replace").replace("pystats: ", "")


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m workloads.supervisor.shim WORKLOAD_DIR RUN", file=sys.stderr)
        return 2
    return run_shim(argv[0], int(argv[1]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

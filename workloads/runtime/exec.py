"""`pystats exec`: a process entering a running workload (runc's `runc exec`).

Run in a fresh process forked by the shim (never by the threaded agent), with its stdio already
on fds 0-2. ``enter_and_exec`` joins the PID namespace of the workload's PID 1 (that applies to
children only) and forks; the child joins the workload's cgroup (while the host's cgroup tree is
still in view), then its mount, network, UTS, IPC and cgroup namespaces, then its user namespace
if it has one (and becomes root there: the workload's uid mapping), its root and workdir, and
applies the workload's own security plan (capability sets, no_new_privs, seccomp filter) before
execve: never more privilege than the workload has. The first process waits for the child and
exits with its exit code (126/127/125 as docker's for not executable / not found / setup).
Namespaces the workload shares with the host (--net host) are not joined: they are ours already.
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass, field
from typing import NoReturn

from cgroupfs.paths import CgroupRoot
from workloads.runtime import cgroups, init, linux, security, stdio
from workloads.runtime.init import EXIT_CANNOT_EXEC, EXIT_NOT_FOUND, EXIT_SETUP
from workloads.runtime.spec import WorkloadSpec

# Joined in this order after the cgroup move, as host root: that may join each directly, and a
# network namespace the workload joined (a CNI network's) belongs to the host's user namespace,
# so it could not be joined from inside the workload's. The user namespace comes last: from
# there on this process holds capabilities only inside it, as the workload does.
NAMESPACES = (
    ("mnt", linux.CLONE_NEWNS),
    ("net", linux.CLONE_NEWNET),
    ("uts", linux.CLONE_NEWUTS),
    ("ipc", linux.CLONE_NEWIPC),
    ("cgroup", linux.CLONE_NEWCGROUP),
    ("user", linux.CLONE_NEWUSER),
)


@dataclass(frozen=True)
class ExecOpts:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)  # over the workload's environment
    workdir: str | None = None  # default: the workload's
    uid: int | None = None  # -u, resolved by the agent in the workload's root; default: the
    gid: int | None = None  # workload's own user (root, or its image's User)
    groups: tuple[int, ...] = ()
    tty: bool = False


def _fail(code: int, msg: str) -> NoReturn:
    with contextlib.suppress(OSError):
        os.write(2, f"pystats exec: {msg}\n".encode())
    os._exit(code)


def same_ns(pid: int, name: str) -> bool:
    a, b = os.stat(f"/proc/{pid}/ns/{name}"), os.stat(f"/proc/self/ns/{name}")
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def open_namespaces(pid: int) -> list[tuple[str, int, int]]:
    """(name, fd, CLONE_NEW*) of each namespace of ``pid`` that is not ours, in joining order."""
    out = []
    for name, flag in NAMESPACES:
        if not same_ns(pid, name):
            out.append((name, os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC), flag))
    return out


def enter_and_exec(
    spec: WorkloadSpec, opts: ExecOpts, pid: int, root: CgroupRoot, rel: str
) -> NoReturn:
    """In the shim's fresh child. Never returns: exits with the command's exit code."""
    try:
        namespaces = open_namespaces(pid)
        root_fd = os.open(f"/proc/{pid}/root", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        pid_ns = os.open(f"/proc/{pid}/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        linux.setns(pid_ns, linux.CLONE_NEWPID)
        os.close(pid_ns)
    except OSError as e:
        _fail(EXIT_SETUP, f"cannot enter the workload (is it still running?): {e.strerror or e}")
    child = os.fork()
    if child == 0:
        try:
            _child(spec, opts, namespaces, root_fd, root, rel)
        finally:
            os._exit(EXIT_SETUP)
    for _, fd, _ in namespaces:
        os.close(fd)
    os.close(root_fd)
    for fd in (0, 1, 2):  # the command's ends only: EOF reaches the shim when it exits
        with contextlib.suppress(OSError):
            os.close(fd)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _, status = os.waitpid(child, 0)
    code = os.waitstatus_to_exitcode(status)
    os._exit(128 - code if code < 0 else code)


def _child(
    spec: WorkloadSpec,
    opts: ExecOpts,
    namespaces: list[tuple[str, int, int]],
    root_fd: int,
    root: CgroupRoot,
    rel: str,
) -> NoReturn:
    try:
        plan = security.prepare(spec.security)  # the shim's plan (memoized): no file is read
    except ValueError as e:
        _fail(EXIT_SETUP, str(e))
    try:
        # Our PID as our own namespace sees it: cgroup.procs resolves it there.
        if not cgroups.move_to(root, rel, os.getpid()):
            _fail(EXIT_SETUP, "could not join the workload's cgroup")
    except Exception as e:
        _fail(EXIT_SETUP, f"could not join the workload's cgroup: {e}")
    try:
        for name, fd, flag in namespaces:
            linux.setns(fd, flag)
            os.close(fd)
            if name == "user":  # root of the namespace: the workload's host ids, not ours
                os.setresgid(0, 0, 0)
                os.setgroups([])
                os.setresuid(0, 0, 0)
        os.fchdir(root_fd)
        os.chroot(".")
        os.close(root_fd)
    except OSError as e:
        _fail(EXIT_SETUP, f"cannot enter the workload's namespaces: {e.strerror or e}")
    if opts.tty:
        try:
            stdio.take_terminal(0)
        except OSError as e:
            _fail(EXIT_SETUP, f"cannot take the terminal: {e.strerror or e}")
    workdir = opts.workdir or spec.workdir or "/"
    try:
        os.chdir(workdir)
    except OSError as e:
        _fail(EXIT_CANNOT_EXEC, f"cannot use workdir {workdir!r}: {e.strerror}")
    for sig in (signal.SIGPIPE, signal.SIGINT, signal.SIGHUP, signal.SIGTERM, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    init.reset_nofile()  # the workload's soft fd limit, not the agent's raised one
    try:
        security.apply_security(plan)
    except OSError as e:
        _fail(EXIT_SETUP, f"cannot apply the security profile: {e.strerror or e}")
    _become_user(spec, opts)
    env = {**spec.exec_env(), **opts.env}
    try:
        os.execvpe(opts.argv[0], opts.argv, env)
    except FileNotFoundError:
        _fail(EXIT_NOT_FOUND, f"command not found: {opts.argv[0]!r}")
    except PermissionError:
        _fail(EXIT_CANNOT_EXEC, f"permission denied: {opts.argv[0]!r} is not executable")
    except OSError as e:
        _fail(EXIT_CANNOT_EXEC, f"cannot execute {opts.argv[0]!r}: {e.strerror}")


def _become_user(spec: WorkloadSpec, opts: ExecOpts) -> None:
    """-u, else the workload's own user (its image's User, or its -u and --group-add)."""
    uid, gid, groups = opts.uid, opts.gid, opts.groups
    img, ru = spec.image, spec.user
    if uid is None:
        if img is not None and img.uid is not None:
            uid, gid, groups = img.uid, img.gid, img.groups
        elif ru is not None and ru.uid is not None:
            uid, gid, groups = ru.uid, ru.gid, ru.groups
        if ru is not None and ru.extra_groups:
            groups = (*(groups if uid is not None else os.getgroups()), *ru.extra_groups)
    if uid is None and groups == opts.groups:
        return
    try:
        os.setgroups(sorted(set(groups)))
        if uid is not None:
            os.setgid(gid if gid is not None else uid)
            os.setuid(uid)
    except OSError as e:
        _fail(EXIT_SETUP, f"cannot become uid {uid}: {e.strerror}")

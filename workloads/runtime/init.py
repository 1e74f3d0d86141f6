"""The workload's own process between fork and exec (runc's `runc init`).

It runs in a fresh single-threaded process forked by the shim after the shim unshared the PID
namespace, so this process is PID 1 of that namespace. It waits until the shim has moved it into
the workload cgroup (limits are in force before any of the workload's instructions), then makes
its own mount, UTS, IPC and (for --net none) network namespaces, builds its filesystem and
pivots into it (workloads.runtime.mounts), and execs argv without a shell. Its own cgroup
namespace, made once it is in its cgroup, shows that cgroup as "/". With --userns the namespaces
exist already, made by the helper in workloads.runtime.userns and owned by the new user
namespace.

Exit codes when the workload never starts: 127 command not found, 126 not executable or bad
workdir, 125 the runtime's own setup failed. The message goes to the workload's log (fd 2) and to
the shim's error pipe, which closes unseen on a successful exec (O_CLOEXEC).
"""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import signal
from typing import NoReturn

from workloads.runtime import linux, mounts, security, startsignals, stdio
from workloads.runtime.spec import WorkloadSpec

EXIT_SETUP = 125
EXIT_CANNOT_EXEC = 126
EXIT_NOT_FOUND = 127


def fail(err_fd: int, code: int, msg: str) -> NoReturn:
    line = f"pystats: {msg}\n".encode()
    for fd in (2, err_fd):
        with contextlib.suppress(OSError):
            os.write(fd, line)
    os._exit(code)


def mount_root(spec: WorkloadSpec, *, in_userns: bool) -> None:
    """The workload's filesystem (workloads.runtime.mounts), entered with pivot_root. Without a
    --rootfs the root is a read-only copy of the host's tree, built here as host root, or by
    the user-namespace helper before the user namespace existed (``in_userns``)."""
    if spec.rootfs:
        if not in_userns:  # else the helper did, as host root
            mounts.prepare_rootfs(spec.rootfs, spec.mounts)
        root, host_root = spec.rootfs, False
    else:
        root = mounts.staged_root() if in_userns else mounts.build_host_root()
        host_root = True
    plan = mounts.Plan(
        root=root,
        host_root=host_root,
        # A joined CNI netns is the host user namespace's: a fresh sysfs only outside --userns.
        own_net=spec.net == "none" or (spec.netns is not None and not in_userns),
        in_userns=in_userns,
        privileged=spec.security.privileged,
    )
    mounts.enter(plan, spec.mounts)


def namespace_flags(spec: WorkloadSpec) -> int:
    """The namespaces this process makes for itself (the PID namespace is made by its parent)."""
    flags = linux.CLONE_NEWNS
    flags |= 0 if spec.utsns else linux.CLONE_NEWUTS  # a pod's, joined (join_netns)
    flags |= 0 if spec.ipcns else linux.CLONE_NEWIPC
    if spec.net != "host" and spec.netns is None:  # none (or a network without its netns)
        flags |= linux.CLONE_NEWNET
    return flags


def join_netns(spec: WorkloadSpec) -> None:
    """A CNI network's namespace, made and configured by the lifecycle before the launch;
    joined before any user namespace exists (setns needs CAP_SYS_ADMIN over its owner)."""
    if spec.netns is not None and spec.net != "host":
        linux.setns_path(spec.netns, linux.CLONE_NEWNET)
    # A pod's IPC and UTS namespaces (workloads.pods), bound as files like the netns.
    if spec.ipcns is not None:
        linux.setns_path(spec.ipcns, linux.CLONE_NEWIPC)
    if spec.utsns is not None:
        linux.setns_path(spec.utsns, linux.CLONE_NEWUTS)


def setup_namespaces(spec: WorkloadSpec, *, unshared: bool = False) -> None:
    """Unshare (unless the user-namespace helper already did), then mounts, hostname, lo.

    The cgroup namespace is made here in every case, after the go: only then is this process in
    its workload cgroup, which becomes the root of its view (/proc/self/cgroup reads "0::/"), so
    the workload learns nothing of the host's cgroup layout, as with docker's default on v2.
    """
    if not unshared:
        join_netns(spec)
    linux.unshare((0 if unshared else namespace_flags(spec)) | linux.CLONE_NEWCGROUP)
    # Nothing we mount may propagate back to the host.
    linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
    mount_root(spec, in_userns=unshared)
    if spec.utsns is None:  # a pod's hostname is the pod's, set when it was made
        linux.sethostname(spec.hostname or spec.name)
    if spec.net != "host" and spec.netns is None:
        linux.loopback_up()


def reset_nofile() -> None:
    """The agent raises its own soft fd limit for the collector; a workload gets the usual 1024
    back (as systemd gives services), since select()-based programs break above it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(1024, hard) if hard != resource.RLIM_INFINITY else 1024
    if soft > want:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def _hint(spec: WorkloadSpec, e: OSError) -> str:
    """Why a setup step fails inside a user namespace, where it would work for host root."""
    if not spec.userns:
        return ""
    if e.errno == errno.EPERM:
        return (
            " (inside a user namespace the kernel refuses a new /proc or /sys while parts of the"
            " host's are hidden by over-mounts)"
        )
    if e.errno == errno.EACCES:
        return (
            f" (the user namespace's root is host uid {spec.userns_base}: it needs search"
            " permission on the path)"
        )
    return ""


def _become_image_user(spec: WorkloadSpec, err_fd: int) -> None:
    """-u or an image's User (resolved to ids at create time), with --group-add's groups:
    dropping from root clears the capabilities, as for docker's non-root users."""
    img, ru = spec.image, spec.user
    extra = ru.extra_groups if ru is not None else ()
    if img is not None and img.uid is not None:
        name, uid, gid, groups = img.user, img.uid, img.gid, img.groups
    elif ru is not None and ru.uid is not None:
        name, uid, gid, groups = ru.user, ru.uid, ru.gid, ru.groups
    else:
        name, uid, gid, groups = "root", None, None, tuple(os.getgroups())
    if uid is None and not extra:
        return
    try:
        os.setgroups(sorted({*groups, *extra}))
        if uid is not None:
            os.setgid(gid if gid is not None else uid)
            os.setuid(uid)
    except OSError as e:
        fail(err_fd, EXIT_SETUP, f"cannot become the user {name!r}: {e.strerror}")


def exec_workload(
    spec: WorkloadSpec, go_fd: int, err_fd: int, *, unshared: bool = False
) -> NoReturn:
    """Wait for the shim's go, set up, exec. Never returns. ``unshared``: the namespaces exist
    already (the user-namespace helper made them, owned by the new user namespace)."""
    # While the host's files are in view: the shim prepared this plan already (memoized).
    try:
        plan = security.prepare(spec.security)
    except ValueError as e:
        fail(err_fd, EXIT_SETUP, str(e))
    try:
        go = os.read(go_fd, 1)
    except OSError:
        go = b""
    os.close(go_fd)
    if go != b"g":
        fail(err_fd, EXIT_SETUP, "the supervisor could not place the workload in its cgroup")
    if spec.stdio.tty:  # -t: the shim's pty slave (fds 0-2) as the controlling terminal
        try:
            stdio.take_terminal(0)
        except OSError as e:
            fail(err_fd, EXIT_SETUP, f"cannot take the terminal: {e.strerror or e}")
    try:
        setup_namespaces(spec, unshared=unshared)
    except OSError as e:
        fail(err_fd, EXIT_SETUP, f"runtime setup failed: {e.strerror or e}{_hint(spec, e)}")
    workdir = spec.workdir or "/"
    try:
        if spec.workdir:  # created if missing, as docker does (a read-only root still refuses)
            os.makedirs(workdir, mode=0o755, exist_ok=True)
        os.chdir(workdir)
    except OSError as e:
        why = e.strerror
        if e.errno == errno.EROFS:  # makedirs of a missing one on a read-only root
            why = "it does not exist and the root file system is read-only"
        fail(err_fd, EXIT_CANNOT_EXEC, f"cannot use workdir {workdir!r}: {why}")
    # Python ignores SIGPIPE; the workload must get the default back (as subprocess does).
    for sig in (signal.SIGPIPE, signal.SIGINT, signal.SIGHUP, signal.SIGTERM, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    reset_nofile()
    argv = spec.argv
    try:
        security.apply_security(plan)  # the last step: seccomp is in force from here on
    except OSError as e:
        fail(err_fd, EXIT_SETUP, f"cannot apply the security profile: {e.strerror or e}")
    _become_image_user(spec, err_fd)
    fatal = startsignals.release()
    if fatal is not None and spec.run.init:
        # Signalled before tini ran (a `stop` right after `run -d`): tini would have forwarded
        # it and the command died of it, so end as tini then does. Without --init the command,
        # PID 1 with no handler yet, would have ignored it: it starts.
        os._exit(128 + fatal)
    try:
        os.execvpe(argv[0], argv, spec.exec_env())
    except FileNotFoundError:
        fail(err_fd, EXIT_NOT_FOUND, f"command not found: {argv[0]!r}")
    except PermissionError:
        fail(err_fd, EXIT_CANNOT_EXEC, f"permission denied: {argv[0]!r} is not executable")
    except OSError as e:
        fail(err_fd, EXIT_CANNOT_EXEC, f"cannot execute {argv[0]!r}: {e.strerror}")

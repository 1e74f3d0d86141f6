"""The workload's own process between fork and exec (runc's `runc init`).

It runs in a fresh single-threaded process forked by the shim after the shim unshared the PID
namespace, so this process is PID 1 of that namespace. It waits until the shim has moved it into
the workload cgroup (limits are in force before any of the workload's instructions), then makes
its own mount, UTS, IPC and (for --net none) network namespaces, mounts a fresh /proc, pivots into
the rootfs when one is given, and execs argv without a shell. Its own cgroup namespace, made
once it is in its cgroup, shows that cgroup as "/". With --userns the namespaces exist
already, made by the helper in workloads.runtime.userns and owned by the new user namespace.

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

from workloads.runtime import linux, security
from workloads.runtime.spec import WorkloadSpec

EXIT_SETUP = 125
EXIT_CANNOT_EXEC = 126
EXIT_NOT_FOUND = 127

_DEVICES = ("null", "zero", "full", "random", "urandom", "tty")


def fail(err_fd: int, code: int, msg: str) -> NoReturn:
    line = f"pystats: {msg}\n".encode()
    for fd in (2, err_fd):
        with contextlib.suppress(OSError):
            os.write(fd, line)
    os._exit(code)


def _setup_dev(rootfs: str) -> None:
    dev = os.path.join(rootfs, "dev")
    if not os.path.isdir(dev):
        return
    linux.mount("tmpfs", dev, "tmpfs", linux.MS_NOSUID | linux.MS_NOEXEC, "mode=755,size=64k")
    for name in _DEVICES:
        host = f"/dev/{name}"
        if not os.path.exists(host):
            continue
        target = os.path.join(dev, name)
        os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o666))
        linux.mount(host, target, None, linux.MS_BIND)


def _mount_proc_sys(prefix: str, new_net: bool) -> None:
    """A fresh /proc (this PID namespace's) and, in a new network namespace, a read-only /sys
    whose /sys/class/net shows that namespace's devices instead of the host's."""
    flags = linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC
    linux.mount("proc", prefix + "/proc", "proc", flags)
    if new_net and os.path.isdir(prefix + "/sys"):
        linux.mount("sysfs", prefix + "/sys", "sysfs", flags | linux.MS_RDONLY)


def prepare_rootfs(rootfs: str) -> None:
    """Create the rootfs's /proc mount point if it lacks one (done as host root: inside a user
    namespace the rootfs's owner is usually unmapped and the directory could not be made)."""
    proc = os.path.join(rootfs, "proc")
    if not os.path.isdir(proc):
        os.mkdir(proc, 0o555)


def _enter_rootfs(rootfs: str, new_net: bool) -> None:
    # pivot_root needs the new root to be a mount point: bind it onto itself.
    linux.mount(rootfs, rootfs, None, linux.MS_BIND | linux.MS_REC)
    prepare_rootfs(rootfs)
    _mount_proc_sys(rootfs, new_net)
    _setup_dev(rootfs)
    os.chdir(rootfs)
    # pivot_root(".", "."): the old root is stacked under the new one, then detached.
    linux.pivot_root(".", ".")
    linux.umount2(".", linux.MNT_DETACH)
    os.chdir("/")


def namespace_flags(spec: WorkloadSpec) -> int:
    """The namespaces this process makes for itself (the PID namespace is made by its parent)."""
    flags = linux.CLONE_NEWNS | linux.CLONE_NEWUTS | linux.CLONE_NEWIPC
    if spec.net == "none":
        flags |= linux.CLONE_NEWNET
    return flags


def setup_namespaces(spec: WorkloadSpec, *, unshared: bool = False) -> None:
    """Unshare (unless the user-namespace helper already did), then mounts, hostname, lo.

    The cgroup namespace is made here in every case, after the go: only then is this process in
    its workload cgroup, which becomes the root of its view (/proc/self/cgroup reads "0::/"), so
    the workload learns nothing of the host's cgroup layout, as with docker's default on v2.
    """
    linux.unshare((0 if unshared else namespace_flags(spec)) | linux.CLONE_NEWCGROUP)
    # Nothing we mount may propagate back to the host.
    linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
    if spec.rootfs:
        _enter_rootfs(spec.rootfs, spec.net == "none")
    else:
        _mount_proc_sys("", spec.net == "none")
    linux.sethostname(spec.hostname or spec.name)
    if spec.net == "none":
        linux.loopback_up()


def _reset_nofile() -> None:
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
    """An image's User (resolved to ids at create time): dropping from root clears the
    capabilities, as for docker's non-root users."""
    img = spec.image
    if img is None or img.uid is None:
        return
    try:
        os.setgroups(list(img.groups))
        os.setgid(img.gid if img.gid is not None else img.uid)
        os.setuid(img.uid)
    except OSError as e:
        fail(err_fd, EXIT_SETUP, f"cannot become the image's user {img.user!r}: {e.strerror}")


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
    try:
        setup_namespaces(spec, unshared=unshared)
    except OSError as e:
        fail(err_fd, EXIT_SETUP, f"runtime setup failed: {e.strerror or e}{_hint(spec, e)}")
    workdir = spec.workdir or "/"
    try:
        os.chdir(workdir)
    except OSError as e:
        fail(err_fd, EXIT_CANNOT_EXEC, f"cannot use workdir {workdir!r}: {e.strerror}")
    # Python ignores SIGPIPE; the workload must get the default back (as subprocess does).
    for sig in (signal.SIGPIPE, signal.SIGINT, signal.SIGHUP, signal.SIGTERM, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    _reset_nofile()
    argv = spec.argv
    try:
        security.apply_security(plan)  # the last step: seccomp is in force from here on
    except OSError as e:
        fail(err_fd, EXIT_SETUP, f"cannot apply the security profile: {e.strerror or e}")
    _become_image_user(spec, err_fd)
    try:
        os.execvpe(argv[0], argv, spec.exec_env())
    except FileNotFoundError:
        fail(err_fd, EXIT_NOT_FOUND, f"command not found: {argv[0]!r}")
    except PermissionError:
        fail(err_fd, EXIT_CANNOT_EXEC, f"permission denied: {argv[0]!r} is not executable")
    except OSError as e:
        fail(err_fd, EXIT_CANNOT_EXEC, f"cannot execute {argv[0]!r}: {e.strerror}")

"""--userns: the workload in a new user namespace, root inside mapped to unprivileged host ids.

Why a helper process: the kernel lets a process mount a fresh /proc only when the user namespace
that owns its PID namespace gives it CAP_SYS_ADMIN, and a PID namespace is owned by the user
namespace of the process that unshares it. The shim must stay host root (it moves processes
between cgroups and writes the records), so it cannot unshare the user namespace itself. Instead
(the order runc's `runc init` follows, in two processes):

    shim                                 helper (child of the shim)         workload (PID 1)
    fork helper ------------------------> as host root: unshare(MNT), the read-only
                                          copy of / (or a rootfs's mount points)
                                          unshare(USER|PID|MNT|UTS|IPC[|NET])
                                          "u" on the sync pipe
    write /proc/H/uid_map, gid_map <----'
    "m" on the ctl pipe ----------------> setresgid/setgroups([])/setresuid 0
                                          fork ------------------------------> waits for "g"
                                          "<pid>\\n" on the sync pipe, exit 0
    reap the helper; the workload is
    re-parented to the shim (subreaper)
    move the workload into its cgroup
    "g" on the go pipe ------------------------------------------------------> mounts, exec

So the limits are in force before the workload's first instruction exactly as without --userns:
the workload is moved into its cgroup before it may go on.

setgroups is left "allow" (the shim is privileged, so the kernel does not require "deny"): the
helper must drop the supplementary groups it inherited from host root, and with "deny" it could
not, keeping host group 0 inside the namespace.
"""

from __future__ import annotations

import contextlib
import os
from typing import NoReturn

from workloads.runtime import init, linux, mounts
from workloads.runtime.init import EXIT_SETUP
from workloads.runtime.spec import WorkloadSpec

SYNC_UNSHARED = b"u"
CTL_MAPPED = b"m"


def unavailable() -> str | None:
    """Why this kernel cannot give a workload a user namespace, or None when it can."""
    if not os.path.exists("/proc/self/ns/user"):
        return "this kernel has no user namespaces (CONFIG_USER_NS is off)"
    try:
        with open("/proc/sys/user/max_user_namespaces") as f:
            limit = int(f.read())
    except (OSError, ValueError):
        return None
    if limit == 0:
        return "user namespaces are disabled here (sysctl user.max_user_namespaces = 0)"
    return None


def write_id_maps(pid: int, line: str) -> None:
    """Write the uid and gid maps of ``pid``'s user namespace (one write each, as required)."""
    for name in ("uid_map", "gid_map"):
        fd = os.open(f"/proc/{pid}/{name}", os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, f"{line}\n".encode())
        except OSError as e:
            raise OSError(e.errno, f"writing {name} of the user namespace: {e.strerror}") from None
        finally:
            os.close(fd)


def _unshare_error(e: OSError) -> str:
    hint = {
        28: " (the user.max_user_namespaces limit is reached)",  # ENOSPC
        1: " (refused here: a seccomp or LSM policy, or a chroot)",  # EPERM
    }.get(e.errno or 0, "")
    return f"cannot create the user namespace: {e.strerror or e}{hint}"


def _prepare_root(spec: WorkloadSpec) -> None:
    """As host root, before the user namespace exists: a rootfs's mount points, or the read-only
    copy of the host's tree in a mount namespace of the helper's own. The user namespace's mount
    namespace is copied from it with every mount locked: the workload can neither detach a part
    nor lift the read-only flag (workloads.runtime.mounts)."""
    if spec.rootfs:
        mounts.prepare_rootfs(spec.rootfs, spec.mounts)
        return
    linux.unshare(linux.CLONE_NEWNS)
    linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
    mounts.build_host_root(owner=spec.userns_base)  # root inside owns its /tmp, /run


def run_helper(spec: WorkloadSpec, sync_w: int, ctl_r: int, go_r: int, err_w: int) -> NoReturn:
    """The helper's whole life (see the module docstring). Never returns."""
    try:
        _prepare_root(spec)
    except OSError as e:
        init.fail(err_w, EXIT_SETUP, f"cannot prepare the workload's root: {e.strerror or e}")
    try:
        init.join_netns(spec)
        linux.unshare(linux.CLONE_NEWUSER | linux.CLONE_NEWPID | init.namespace_flags(spec))
    except OSError as e:
        init.fail(err_w, EXIT_SETUP, _unshare_error(e))
    os.write(sync_w, SYNC_UNSHARED)
    try:
        ok = os.read(ctl_r, 1) == CTL_MAPPED
    except OSError:
        ok = False
    os.close(ctl_r)
    if not ok:
        init.fail(err_w, EXIT_SETUP, "the supervisor could not map the user namespace's ids")
    try:
        # Become root of the namespace (host BASE); drop host root's supplementary groups.
        os.setresgid(0, 0, 0)
        os.setgroups([])
        os.setresuid(0, 0, 0)
    except OSError as e:
        init.fail(err_w, EXIT_SETUP, f"cannot become root of the user namespace: {e.strerror}")
    pid = os.fork()
    if pid == 0:
        try:
            os.close(sync_w)  # the shim reads it to EOF: only the helper may hold it
            init.exec_workload(spec, go_r, err_w, unshared=True)
        finally:
            os._exit(EXIT_SETUP)
    # The helper is in the host's PID namespace: fork returned the workload's host PID.
    with contextlib.suppress(OSError):
        os.write(sync_w, f"{pid}\n".encode())
    os._exit(0)

"""What to launch: a workload's spec, validated once, stored as JSON beside its state.

The spec is the contract between the manager (which validates and records it), the shim (which
reads it from disk, so it needs nothing from the agent) and the runtime (which applies it).
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import asdict, dataclass, field
from typing import Any

from cgroupfs import paths
from cgroupfs.errors import UnsafePath
from workloads.runtime import idranges, mounts, security
from workloads.runtime.errors import SpecError as SpecError  # its home; re-exported
from workloads.runtime.imagespec import ImageSpec
from workloads.runtime.mounts import MountOpts
from workloads.runtime.runopts import RunOpts
from workloads.runtime.runopts import check as check_run_opts
from workloads.runtime.runuser import RunUser
from workloads.runtime.security import SecurityOpts
from workloads.runtime.stdio import StdioOpts
from workloads.runtime.values import NAME_RE as NAME_RE  # re-exported: the spec's values
from workloads.runtime.values import USERNS_DEFAULT_BASE as USERNS_DEFAULT_BASE
from workloads.runtime.values import USERNS_MAX_BASE as USERNS_MAX_BASE
from workloads.runtime.values import USERNS_MAX_ID as USERNS_MAX_ID
from workloads.runtime.values import USERNS_SIZE as USERNS_SIZE
from workloads.runtime.values import Limits as Limits
from workloads.runtime.values import parse_limits as parse_limits
from workloads.runtime.values import parse_userns_base as parse_userns_base

ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NET_MODES = ("none", "host")


@dataclass(frozen=True)
class WorkloadSpec:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    workdir: str | None = None
    hostname: str | None = None
    net: str = "none"
    rootfs: str | None = None
    limits: Limits = field(default_factory=Limits)
    restart: str = "no"
    run: RunOpts = field(default_factory=RunOpts)  # --init, --stop-signal/--stop-timeout, --rm
    labels: dict[str, str] = field(default_factory=dict)  # --label KEY=VALUE (ps --filter)
    userns: bool = False
    userns_base: int = USERNS_DEFAULT_BASE
    userns_auto: bool = False  # --userns=auto: userns_base was allocated (lifecycle.idalloc)
    security: SecurityOpts = field(default_factory=SecurityOpts)
    mounts: MountOpts = field(default_factory=MountOpts)
    image: ImageSpec | None = None  # run from an image: rootfs is its snapshot's mount
    user: RunUser | None = None  # -u, --group-add (resolved; an image's User is in image)
    stdio: StdioOpts = field(default_factory=StdioOpts)  # -i, -t
    netns: str | None = None  # a CNI network's namespace (bind-mounted file) to join
    # A pod's (workloads.pods): its IPC and UTS namespaces' bind-mounted files to join, too.
    pod: str | None = None
    ipcns: str | None = None
    utsns: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> WorkloadSpec:
        lim = d.get("limits") or {}
        return cls(
            name=str(d["name"]),
            argv=[str(a) for a in d["argv"]],
            env={str(k): str(v) for k, v in (d.get("env") or {}).items()},
            workdir=d.get("workdir"),
            hostname=d.get("hostname"),
            net=str(d.get("net", "none")),
            rootfs=d.get("rootfs"),
            limits=Limits(
                memory_bytes=lim.get("memory_bytes"),
                cpus=lim.get("cpus"),
                pids=lim.get("pids"),
            ),
            restart=str(d.get("restart", "no")),
            run=RunOpts.from_json(d.get("run")),
            labels={str(k): str(v) for k, v in (d.get("labels") or {}).items()},
            userns=bool(d.get("userns", False)),
            userns_base=int(d.get("userns_base", USERNS_DEFAULT_BASE)),
            userns_auto=bool(d.get("userns_auto", False)),
            security=SecurityOpts.from_json(d.get("security")),
            mounts=MountOpts.from_json(d.get("mounts")),
            image=ImageSpec.from_json(d.get("image")),
            user=RunUser.from_json(d.get("user")),
            stdio=StdioOpts.from_json(d.get("stdio")),
            netns=d.get("netns"),
            pod=d.get("pod"),
            ipcns=d.get("ipcns"),
            utsns=d.get("utsns"),
        )

    def id_map(self) -> str | None:
        """The uid_map/gid_map line written for this workload, None without --userns."""
        if not self.userns:
            return None
        return f"0 {self.userns_base} {USERNS_SIZE}"

    def exec_env(self) -> dict[str, str]:
        """The workload's environment: a clean one, as docker gives, plus the user's."""
        env = {"PATH": DEFAULT_PATH, "HOSTNAME": self.hostname or self.name, "HOME": "/"}
        env.update(self.env)
        return env


def validate_name(name: str) -> str:
    """A workload name is also its hostname default and its cgroup's directory name."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise SpecError(
            f"invalid workload name {name!r}: use 1-63 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    try:
        paths.validate_name(name)
    except UnsafePath as e:
        raise SpecError(f"invalid workload name: {e}") from None
    return name


def parse_env(items: list[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not ENV_KEY_RE.match(key):
            raise SpecError(f"invalid --env {item!r}: expected KEY=VALUE")
        env[key] = value
    return env


def _userns_ids_free(base: int) -> None:
    """The range must be nobody else's: no account, group or subordinate range of the host's."""
    last = base + USERNS_SIZE - 1
    used = idranges.taken()
    clash = idranges.overlaps(base, last, used)
    if clash:
        more = f" and {len(clash) - 1} more" if len(clash) > 1 else ""
        free = idranges.free_base(USERNS_SIZE, used, at_least=base)
        raise SpecError(
            f"--userns-base {base}: host ids {base}..{last} are already in use: "
            f"{clash[0].describe()}{more}; --userns-base {free} is free"
        )


def _userns_reachable(rootfs: str, base: int) -> None:
    """With --userns the workload's root is an unprivileged host uid: every directory down to
    the rootfs must be searchable by it, or the runtime fails late with a bare EACCES."""
    end = base + USERNS_SIZE
    path = "/"
    for part in [p for p in rootfs.split("/") if p]:
        path = os.path.join(path, part)
        try:
            st = os.stat(path)
        except OSError as e:
            raise SpecError(f"--rootfs {rootfs!r}: cannot stat {path}: {e.strerror}") from None
        if base <= st.st_uid < end:
            ok = bool(st.st_mode & stat.S_IXUSR)
        elif base <= st.st_gid < end:
            ok = bool(st.st_mode & stat.S_IXGRP)
        else:
            ok = bool(st.st_mode & stat.S_IXOTH)
        if not ok:
            raise SpecError(
                f"--rootfs {rootfs!r} is not reachable from the user namespace: {path} has mode "
                f"{stat.S_IMODE(st.st_mode):04o} and its owner is outside host ids {base}.."
                f"{end - 1}; chmod o+x it, or chown the rootfs into that range"
            )


def check_spec(spec: WorkloadSpec) -> None:
    """Checks that need no cgroup: argv, net mode, paths, hostname."""
    validate_name(spec.name)
    if not spec.argv or not spec.argv[0]:
        raise SpecError("no command given: pystats run [OPTIONS] -- CMD [ARG...]")
    net = spec.net.removeprefix("container:")  # container:NAME joins NAME's netns (docker)
    if net not in NET_MODES and not NAME_RE.match(net):  # else a network's name
        raise SpecError(
            f"invalid --net {spec.net!r}: expected {', '.join(NET_MODES)}, bridge or a network"
        )
    for ns in (spec.netns, spec.ipcns, spec.utsns):
        if ns is not None and not ns.startswith("/"):
            raise SpecError(f"invalid namespace file {ns!r}: must be an absolute path")
    if spec.pod is not None and not NAME_RE.match(spec.pod):
        raise SpecError(f"invalid --pod {spec.pod!r}")
    if spec.hostname is not None and not NAME_RE.match(spec.hostname):
        raise SpecError(f"invalid --hostname {spec.hostname!r}")
    if spec.workdir is not None and not spec.workdir.startswith("/"):
        raise SpecError(f"invalid --workdir {spec.workdir!r}: must be an absolute path")
    if spec.rootfs is not None:
        if not spec.rootfs.startswith("/"):
            raise SpecError(f"invalid --rootfs {spec.rootfs!r}: must be an absolute path")
        if spec.image is None and not os.path.isdir(spec.rootfs):  # an image's: mounted later
            raise SpecError(f"--rootfs {spec.rootfs!r} does not exist or is not a directory")
    lim = spec.limits
    if lim.memory_bytes is not None and lim.memory_bytes < 4096:
        raise SpecError(f"--memory {lim.memory_bytes} bytes is too small (minimum 4096)")
    if lim.cpus is not None and not lim.cpus > 0:
        raise SpecError(f"--cpus {lim.cpus} must be greater than 0")
    if lim.pids is not None and lim.pids < 1:
        raise SpecError(f"--pids {lim.pids} must be at least 1")
    for key in spec.env:
        if not ENV_KEY_RE.match(key):
            raise SpecError(f"invalid environment variable name {key!r}")
    security.check(spec.security)
    check_run_opts(spec)
    mounts.check(spec.mounts, spec.rootfs)
    if spec.userns_auto and not spec.userns:
        raise SpecError("userns_auto is set but userns is not")
    if spec.userns and not spec.userns_auto:  # an auto range is checked once allocated
        check_userns_range(spec)


def check_userns_range(spec: WorkloadSpec) -> None:
    """The --userns range must be valid, nobody else's, and able to reach the rootfs."""
    parse_userns_base(spec.userns_base)
    _userns_ids_free(spec.userns_base)
    if spec.rootfs is not None and spec.image is None:  # a snapshot's dirs are 0711
        _userns_reachable(spec.rootfs, spec.userns_base)

"""How a workload is run and ended, beyond what it runs: --init, --stop-signal, --stop-timeout,
--rm (docker's flags). Part of the spec; the shim applies ``exec_spec`` before it launches."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from workloads.runtime.errors import SpecError
from workloads.runtime.mounts import Bind

if TYPE_CHECKING:
    from workloads.runtime.spec import WorkloadSpec

# Debian's tini: PID 1 that forwards signals to the command and reaps orphans (docker --init).
INIT_BINARIES = ("/usr/bin/tini-static", "/usr/bin/tini")
# In another root (--rootfs, an image) the static one is bound read-only here, as docker binds
# its docker-init at /sbin/docker-init; the dynamic one would need the host's libc there.
INIT_IN_ROOTFS = "/run/pystats-init"
DEFAULT_STOP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class RunOpts:
    init: bool = False
    stop_signal: int | None = None  # None: SIGTERM (or the image's StopSignal)
    stop_timeout: float | None = None  # seconds from the stop signal to cgroup.kill
    auto_remove: bool = False  # --rm: removed once it exited for good

    def to_json(self) -> dict[str, Any]:
        return {
            "init": self.init,
            "stop_signal": self.stop_signal,
            "stop_timeout": self.stop_timeout,
            "auto_remove": self.auto_remove,
        }

    @classmethod
    def from_json(cls, d: object) -> RunOpts:
        if d is None:
            return cls()
        if not isinstance(d, dict):
            raise SpecError("run options must be an object")
        unknown = set(d) - {"init", "stop_signal", "stop_timeout", "auto_remove"}
        if unknown:
            raise SpecError(f"unknown run option(s): {', '.join(sorted(unknown))}")
        sig, timeout = d.get("stop_signal"), d.get("stop_timeout")
        for key in ("init", "auto_remove"):
            if not isinstance(d.get(key, False), bool):
                raise SpecError(f"{key} must be true or false")
        return cls(
            init=bool(d.get("init", False)),
            stop_signal=None if sig is None else parse_signal(sig),
            stop_timeout=None if timeout is None else parse_stop_timeout(timeout),
            auto_remove=bool(d.get("auto_remove", False)),
        )


def parse_signal(value: object) -> int:
    """A signal name (TERM, SIGTERM) or number, as --stop-signal and kill -s take it."""
    text = str(value).strip().upper()
    if text.isdigit():
        if not 1 <= int(text) <= signal.SIGRTMAX:
            raise SpecError(f"invalid signal {value!r}: a number from 1 to {signal.SIGRTMAX}")
        return int(text)
    try:
        return int(signal.Signals[text if text.startswith("SIG") else "SIG" + text])
    except KeyError:
        raise SpecError(f"invalid signal {value!r}: e.g. TERM, INT, QUIT or 15") from None


def parse_stop_timeout(value: object) -> float:
    """Seconds (docker takes whole seconds; -1 waits forever, which pystats refuses: a stop
    must end)."""
    if isinstance(value, bool):
        raise SpecError(f"invalid --stop-timeout {value!r}")
    try:
        seconds = float(str(value))
    except ValueError:
        raise SpecError(f"invalid --stop-timeout {value!r}: a number of seconds") from None
    if not 0 <= seconds < 1e9:
        raise SpecError(f"invalid --stop-timeout {value!r}: from 0 to 1e9 seconds")
    return seconds


def init_binary(static: bool = False) -> str | None:
    """The tini to run; ``static``: one that needs no library (another root)."""
    found = (p for p in INIT_BINARIES if os.access(p, os.X_OK))
    return next((p for p in found if not static or p.endswith("-static")), None)


def check(spec: WorkloadSpec) -> None:
    if spec.run.init and init_binary(static=spec.rootfs is not None) is None:
        if spec.rootfs is not None:
            raise SpecError("--init with --rootfs or an image needs /usr/bin/tini-static (tini)")
        raise SpecError("--init: tini is not installed (apt-get install tini)")


def exec_spec(spec: WorkloadSpec) -> WorkloadSpec:
    """The spec the runtime executes: with --init, tini runs the command as its child; in
    another root, from a read-only bind of the host's static tini."""
    if not spec.run.init:
        return spec
    tini = init_binary(static=spec.rootfs is not None)
    if tini is None:
        raise SpecError("--init: tini is not installed")
    if spec.rootfs is None:
        return replace(spec, argv=[tini, "--", *spec.argv])
    bind = Bind(tini, INIT_IN_ROOTFS, readonly=True)
    return replace(
        spec,
        argv=[INIT_IN_ROOTFS, "--", *spec.argv],
        mounts=replace(spec.mounts, binds=(*spec.mounts.binds, bind)),
    )

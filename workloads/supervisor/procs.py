"""Process identity that survives PID reuse: (pid, start time in clock ticks since boot)."""

from __future__ import annotations

import os


def start_ticks(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat, or None when the process is gone (or a zombie)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    # comm (field 2) may hold spaces and parentheses: split after its last ')'.
    rest = raw[raw.rindex(b")") + 2 :].split()
    if rest[0] == b"Z":
        return None
    return int(rest[19])


def alive(pid: int | None, ticks: int | None) -> bool:
    if not pid or pid <= 0:
        return False
    now = start_ticks(pid)
    return now is not None and (ticks is None or now == ticks)


def exit_code_of(wait_status: int) -> tuple[int, int | None]:
    """(exit code as a shell reports it, terminating signal or None)."""
    if os.WIFSIGNALED(wait_status):
        sig = os.WTERMSIG(wait_status)
        return 128 + sig, sig
    return os.waitstatus_to_exitcode(wait_status), None


def takes_signal(pid: int, sig: int) -> bool | None:
    """Whether ``sig`` sent to ``pid`` now would be acted on rather than dropped, as the kernel
    drops a signal to a PID namespace's init that neither blocks nor handles it: blocked (kept
    pending) or caught, from /proc/<pid>/status. None when the process is gone."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    bit = 1 << (sig - 1)
    masks = {
        k: int(v, 16)
        for k, _, v in (ln.partition(b":\t") for ln in lines)
        if k in (b"SigBlk", b"SigCgt")
    }
    return any(m & bit for m in masks.values())

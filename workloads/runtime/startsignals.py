"""Signals that reach a workload before it has exec'd its command.

From its fork until its exec the workload is PID 1 of its PID namespace running the runtime's
setup, and the kernel discards any signal such a process has no handler for: a `stop` right
after `run -d` (before a slow setup is done) would be lost, and with --init the stop would wait
out its grace period and end in 137 although tini would have forwarded the SIGTERM. So the shim
forks it with every signal blocked (``block_all``): they stay pending, and just before exec
``release`` takes them off and unblocks; the runtime then acts on a fatal one as tini would.
"""

from __future__ import annotations

import signal

# Signals whose default action does not end the process: never a reason not to start.
NOT_FATAL = frozenset(
    {
        signal.SIGCHLD,
        signal.SIGURG,
        signal.SIGWINCH,
        signal.SIGCONT,
        signal.SIGTSTP,
        signal.SIGTTIN,
        signal.SIGTTOU,
    }
)


def block_all() -> set[int | signal.Signals]:
    """Block every catchable signal (before forking the workload, which keeps the mask);
    returns the mask to ``restore`` in the shim afterwards."""
    return signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())


def restore(mask: set[int | signal.Signals]) -> None:
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def release() -> int | None:
    """In the workload right before exec: discard what is pending (setting SIG_IGN does, by
    POSIX), give back the default dispositions Python changed, unblock everything. Returns the
    fatal signal that came (SIGTERM first), or None."""
    pending = signal.sigpending()
    for sig in pending:
        old = signal.signal(sig, signal.SIG_IGN)
        signal.signal(sig, signal.SIG_IGN if old == signal.SIG_IGN else signal.SIG_DFL)
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)  # Python ignores it; subprocess resets it too
    signal.pthread_sigmask(signal.SIG_SETMASK, ())
    fatal = sorted(set(pending) - NOT_FATAL)
    if signal.SIGTERM in fatal:
        return signal.SIGTERM
    return fatal[0] if fatal else None

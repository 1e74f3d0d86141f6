"""The fork server's footprint: modules loaded and resident memory, for one or more source trees.

    .venv/bin/python benchmarks/supervisor_forkserver_footprint.py [TREE ...]

Each TREE is a checkout (e.g. `git archive REV | tar -x -C /tmp/rev`); default: this one. For
each, the fork server is started as the agent starts it (`python -m
workloads.supervisor.forkserver`, stdin a pipe), given time to load, and measured: the number of
modules in its sys.modules once it serves (counted in a second run that exits at EOF) and
VmRSS from /proc/PID/status once it has answered a first request (median of REPEAT starts).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPEAT = 5
COUNT = (
    "import atexit, runpy, sys\n"
    "atexit.register(lambda: print(len(sys.modules), file=sys.stderr))\n"
    "runpy.run_module('workloads.supervisor.forkserver', run_name='__main__')\n"
)


def modules(tree: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", COUNT],
        cwd=tree,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stderr.split()[-1])


def rss_kib(tree: str) -> int:
    proc = subprocess.Popen(
        [sys.executable, "-m", "workloads.supervisor.forkserver"],
        cwd=tree,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        # It reads requests only once it has loaded everything: its answer to a bad one
        # (every protocol version refuses this line) says it is ready to be measured.
        proc.stdin.write(b"not a request\n")
        proc.stdin.flush()
        assert b"error" in proc.stdout.readline()
        with open(f"/proc/{proc.pid}/status") as f:
            line = next(x for x in f if x.startswith("VmRSS:"))
        return int(line.split()[1])
    finally:
        proc.stdin.close()
        proc.wait()


def main(trees: list[str]) -> int:
    print(f"{'tree':40} {'modules':>8} {'VmRSS KiB (median of ' + str(REPEAT) + ')':>28}")
    for tree in trees or [REPO]:
        rss = statistics.median(rss_kib(tree) for _ in range(REPEAT))
        print(f"{tree:40} {modules(tree):>8} {rss:>28.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

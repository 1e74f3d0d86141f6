"""µs per cgroup file read: KeptReader (kept fds, pread) against reopening the file each tick.

Creates N cgroups of its own in the host's writable cgroup v2 tree (default 1,000, flat under
one parent), reads each one's cpu.stat once per round with each method, prints the median
µs per file, and removes everything it created. Needs root.

    .venv/bin/python benchmarks/reader_bench.py [--count 1000] [--rounds 7] [--tree PATH]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cgroupfs import writer
from cgroupfs.mount import detect
from cgroupfs.paths import CgroupRoot
from cgroupfs.reader import KeptReader, raise_fd_limit, walk

FILE = "cpu.stat"


def measure(methods: list[tuple[str, Callable[[], int]]], rounds: int) -> list[tuple[str, float]]:
    """Median µs per file of each method; rounds interleave the methods so load drift on a
    shared machine hits them alike."""
    for _name, fn in methods:
        fn()  # warm-up (KeptReader opens its fds here)
    samples: dict[str, list[float]] = {name: [] for name, _ in methods}
    for _ in range(rounds):
        for name, fn in methods:
            t = time.perf_counter()
            count = fn()
            samples[name].append((time.perf_counter() - t) / count * 1e6)
    return [(name, statistics.median(samples[name])) for name, _ in methods]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--tree", default=None, help="cgroup v2 tree (default: the detected mount)")
    args = ap.parse_args()
    tree = args.tree or detect().path
    if tree is None or os.geteuid() != 0:
        print("reader_bench: needs root and a cgroup v2 mount", file=sys.stderr)
        return 2
    raise_fd_limit()
    root = CgroupRoot(tree)
    parent = f"pystats-bench-{uuid.uuid4().hex[:8]}"
    rels = [f"{parent}/cg{i:04d}" for i in range(args.count)]
    writer.create(root, parent)
    try:
        t = time.perf_counter()
        for rel in rels:
            writer.create(root, rel)
        made = time.perf_counter() - t
        paths = [os.path.join(root.resolve(rel), FILE) for rel in rels]
        inodes = dict(walk(root, start=parent))

        reader = KeptReader(root, max_fds=4 * args.count + 64)

        def kept() -> int:
            for rel in rels:
                reader.read(rel, FILE, inodes[rel])
            return len(rels)

        def os_open_read_close() -> int:
            for p in paths:
                fd = os.open(p, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    os.read(fd, 4096)
                finally:
                    os.close(fd)
            return len(paths)

        def with_open() -> int:
            for p in paths:
                with open(p, "rb") as f:
                    f.read()
            return len(paths)

        dir_fds = [os.open(root.resolve(rel), os.O_RDONLY | os.O_DIRECTORY) for rel in rels]

        def openat_dir_fd() -> int:
            for d in dir_fds:
                fd = os.open(FILE, os.O_RDONLY | os.O_CLOEXEC, dir_fd=d)
                try:
                    os.read(fd, 4096)
                finally:
                    os.close(fd)
            return len(dir_fds)

        raw_fds = [os.open(p, os.O_RDONLY | os.O_CLOEXEC) for p in paths]

        def raw_pread() -> int:
            for fd in raw_fds:
                os.pread(fd, 4096, 0)
            return len(raw_fds)

        results = measure(
            [
                ("KeptReader.read (kept fd, pread at 0)", kept),
                ("bare os.pread on kept fds (no bookkeeping)", raw_pread),
                ("os.open + os.read + os.close", os_open_read_close),
                ("openat on a kept dir fd + read + close", openat_dir_fd),
                ("with open(path, 'rb') as f: f.read()", with_open),
            ],
            args.rounds,
        )
        fds_kept = reader.open_fd_count()
        reader.close()
        for fd in dir_fds + raw_fds:
            os.close(fd)
    finally:
        t = time.perf_counter()
        writer.remove(root, parent, timeout_s=30)
        removed = time.perf_counter() - t

    base = results[0][1]
    print(
        f"cgroupfs reader: {args.count} cgroups in {tree}, {FILE}, median of {args.rounds} rounds"
    )
    print(f"{'reader':<44} {'µs/file':>8} {'vs kept':>8}")
    for name, us in results:
        print(f"{name:<44} {us:8.2f} {us / base:7.1f}x")
    print(
        f"KeptReader kept {fds_kept} fds; "
        f"created the cgroups in {made:.2f} s, removed them in {removed:.2f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Collector cost on a real cgroup2 tree, against a C reader of the same files.

    sudo .venv/bin/python benchmarks/collect_bench.py [--counts 1000,10000] [--tree PATH]

Per N: creates N empty cgroups under a scratch cgroup of the v2 tree (this host's
/sys/fs/cgroup/unified by default; removed afterwards), runs ``--warm`` ticks (default 21: every
cgroup has had two slow-cadence reads, the steady state of a running agent), then prints:
- us per cgroup for a full tick (walk, read, parse, rates, store publish), idle sampling off;
- the same with every file parsed each tick (the sampler's caches dropped before each tick:
  empty cgroups repeat their bytes, busy ones do not);
- the same with idle sampling on (the default: empty cgroups read every 5th tick);
- the files one tick reads, and a C reader (compiled here with gcc) reading exactly those files
  with open+read+close and with kept fds + pread;
- the process's CPU % while Collector.run() ticks at 1 s (a few seconds only);
- RSS with every cgroup's history filled to 600 points (10 minutes at 1 s);
and the ratios against the targets: tick <= C open/read/close, <= 2.5x C pread; CPU at 1 s
<= 2 % (1,000 cgroups) / 25 % (10,000); RSS <= 150 MB.

``--steady-ticks T`` only warms up and runs T full ticks (no C reader, no run()): for counting
instructions, which the machine's load does not disturb, e.g. per cgroup per tick
(Ir(T=5) - Ir(T=0)) / 5 / N of
``PYTHONHASHSEED=0 valgrind --tool=callgrind .venv/bin/python benchmarks/collect_bench.py
--counts 1000 --steady-ticks T``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cgroupfs.paths import CgroupRoot
from collectors.collector import Collector
from collectors.store import Store

HERE = os.path.dirname(os.path.abspath(__file__))
TARGET_CPU = {1000: 2.0, 10000: 25.0}
TARGET_RSS_MB = 150.0


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def compile_c(tmp: str) -> str | None:
    if shutil.which("gcc") is None:
        return None
    exe = os.path.join(tmp, "collect_cread")
    src = os.path.join(HERE, "collect_cread.c")
    subprocess.run(["gcc", "-O2", "-o", exe, src], check=True)
    return exe


def c_reader(exe: str, listfile: str, iters: int, mode: str) -> tuple[float, float, int]:
    """(wall us, CPU us) per pass over all files, and how many fds it could keep."""
    out = subprocess.run([exe, listfile, str(iters), mode], check=True, capture_output=True)
    f = out.stdout.split()
    return float(f[0]) / 1000.0, float(f[1]) / 1000.0, int(f[4])


def make_tree(parent: str, n: int, controllers: str) -> str:
    base = os.path.join(parent, f"pystats-bench-{uuid.uuid4().hex[:8]}")
    os.mkdir(base)
    if controllers:  # the full file set (VM): enable them down to the N cgroups
        want = " ".join(f"+{c}" for c in controllers.split(","))
        for d in (parent, base):
            with open(os.path.join(d, "cgroup.subtree_control"), "w") as f:
                f.write(want)
    for i in range(n):
        os.mkdir(os.path.join(base, f"c{i:05d}"))
    return base


def remove_tree(base: str) -> None:
    gc.collect()
    for name in os.listdir(base):
        p = os.path.join(base, name)
        if os.path.isdir(p):
            os.rmdir(p)
    os.rmdir(base)


def tick_us(c: Collector, ticks: int, *, parse_all: bool = False) -> tuple[float, float]:
    """(wall us, CPU us) per tick; CPU time is what load on the shared machine disturbs least.
    ``parse_all``: before each tick, drop what the sampler remembers of each file's bytes, so
    every file is parsed and every rate computed (as when every cgroup is busy)."""
    wall = cpu = 0.0
    for _ in range(ticks):
        if parse_all:
            for st in c.sampler._states.values():
                st.cache.clear()
                st.same_streak = False
                if hasattr(st, "last"):
                    st.last = None
        t0, c0 = time.perf_counter(), time.process_time()
        c.tick_sync()
        wall += time.perf_counter() - t0
        cpu += time.process_time() - c0
    return wall / ticks * 1e6, cpu / ticks * 1e6


def bench(
    parent: str,
    n: int,
    exe: str | None,
    tmp: str,
    ticks: int,
    run_s: float,
    controllers: str,
    warm: int,
) -> None:
    print(f"\n== {n} cgroups ==", flush=True)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n * 24 + 1024  # ~23 kept fds per cgroup with every controller
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(want, hard)))
    except (ValueError, OSError):  # no CAP_SYS_RESOURCE: the hard limit is the ceiling
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    # KeptReader caps file fds at max_fds but opens one directory fd per cgroup regardless:
    # leave room for those (n) and for this process's own files.
    max_fds = max(0, limit - n - 512) if limit < want else None
    print(f"RLIMIT_NOFILE: {limit}, reader max_fds: {max_fds or 'default'}")
    rss0 = rss_mb()
    t0 = time.perf_counter()
    base = make_tree(parent, n, controllers)
    print(f"created in {time.perf_counter() - t0:.1f} s under {base}")
    try:
        store = Store(history_len=600)
        c = Collector(CgroupRoot(base), store, idle_every=1, kmsg=False, max_fds=max_fds)
        for _ in range(max(2, warm)):  # fds opened, absent files known, caches shared
            c.tick_sync()
        # The files one steady tick reads, for the C reader.
        reads: list[str] = []
        real_read = c.reader.read

        def logged(rel: str, filename: str, inode: int | None = None) -> bytes | None:
            data = real_read(rel, filename, inode)
            if data is not None:
                reads.append(c.root.file(rel, filename, strict=False))
            return data

        real_read_files = getattr(c.reader, "read_files", None)

        def logged_files(
            rel: str, filenames: tuple[str, ...], inode: int | None = None
        ) -> list[bytes | None]:
            assert real_read_files is not None
            datas: list[bytes | None] = real_read_files(rel, filenames, inode)
            for filename, data in zip(filenames, datas, strict=True):
                if data is not None:
                    reads.append(c.root.file(rel, filename, strict=False))
            return datas

        c.reader.read = logged  # type: ignore[method-assign]
        if real_read_files is not None:
            c.reader.read_files = logged_files  # type: ignore[method-assign]
        res = c.collect()
        c.publish(res)
        c.reader.read = real_read  # type: ignore[method-assign]
        if real_read_files is not None:
            c.reader.read_files = real_read_files  # type: ignore[method-assign]
        listfile = os.path.join(tmp, f"files-{n}.txt")
        reads[:] = dict.fromkeys(reads)  # read_files may go through read: count each once
        with open(listfile, "w") as f:
            f.write("\n".join(reads) + "\n")
        files = len(reads)
        reads.clear()
        del res

        full, full_cpu = tick_us(c, ticks)
        parsed, parsed_cpu = tick_us(c, ticks, parse_all=True)
        for _ in range(max(2, warm)):  # back to the steady state
            c.tick_sync()
        walk_t0 = time.perf_counter()
        for _ in range(ticks):
            c.tree._full()  # what discovery would cost each tick without inotify
        walk = (time.perf_counter() - walk_t0) / ticks * 1e6
        c.sampler.idle_every = 5
        idle, idle_cpu = tick_us(c, max(ticks, 5))
        c.sampler.idle_every = 1
        print(f"load average: {os.getloadavg()[0]:.1f}; figures: wall / CPU time, us per cgroup")
        print(f"files per tick: {files} ({files / n:.1f} per cgroup)")
        print(
            f"tick, full:        {full / n:7.2f} / {full_cpu / n:7.2f}  ({full / 1000:.1f} ms wall)"
        )
        print(f"tick, all parsed:  {parsed / n:7.2f} / {parsed_cpu / n:7.2f}")
        print(f"tick, idle on:     {idle / n:7.2f} / {idle_cpu / n:7.2f}")
        print(f"(a full walk, which inotify avoids: {walk / n:.2f} us/cgroup wall)")
        if exe is not None:
            iters = max(3, 20000 // max(1, files) * 5)
            orc, orc_cpu, _ = c_reader(exe, listfile, iters, "orc")
            pr, pr_cpu, c_kept = c_reader(exe, listfile, iters, "pread")
            if c_kept < files:
                print(f"(fd limit: C keeps {c_kept} of {files} fds, reopens the rest)")
            print(
                f"C open+read+close: {orc / n:7.2f} / {orc_cpu / n:7.2f}"
                f"  ({orc_cpu / files:.2f} us/file CPU)"
            )
            print(
                f"C kept fd + pread: {pr / n:7.2f} / {pr_cpu / n:7.2f}"
                f"  ({pr_cpu / files:.2f} us/file CPU)"
            )
            print(
                f"ratio tick/C-orc   = {full / orc:.2f} wall, {full_cpu / orc_cpu:.2f} CPU"
                " (target <= 1.0)"
            )
            print(
                f"ratio tick/C-pread = {full / pr:.2f} wall, {full_cpu / pr_cpu:.2f} CPU"
                " (target <= 2.5)"
            )

        # CPU % of the whole process with the asyncio loop ticking at 1 s.
        async def run_for(seconds: float, idle_every: int) -> tuple[float, float]:
            c.sampler.idle_every = idle_every
            task = asyncio.create_task(c.run())
            await store.wait_tick()  # first tick (adds the inotify watches)
            t0 = store.stats.ticks
            cpu0, w0 = cpu_s(), time.monotonic()
            await asyncio.sleep(seconds)
            wall = time.monotonic() - w0
            pct = (cpu_s() - cpu0) / wall * 100
            ticks_per_s = (store.stats.ticks - t0) / wall
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return pct, ticks_per_s

        target = TARGET_CPU.get(n)
        tgt = f" (target <= {target:.0f} %)" if target else ""
        print(
            f"CPU for one tick per second, from the tick's CPU time: {full_cpu / 1e4:.2f} %"
            f" (every file parsed: {parsed_cpu / 1e4:.2f} %){tgt}"
        )
        for label, idle_every in (("full reads", 1), ("idle sampling (default)", 5)):
            pct, tps = asyncio.run(run_for(run_s, idle_every))
            late = "" if tps > 0.9 else " - ticks overran the 1 s interval"
            print(f"run() at 1 s, {label}: {pct:5.2f} % of a core, {tps:.2f} ticks/s{late}{tgt}")

        # RSS with full history: every cgroup's ring filled to 600 points.
        tick = store.stats.ticks
        for e in store.entries.values():
            h = e.history
            for t in range(tick, tick + 600):
                h.put(t, 0.25, 123 << 20)
        rss = rss_mb()
        print(
            f"RSS with 600-point history: {rss:.1f} MB (before creating the tree: {rss0:.1f} MB;"
            f" history arrays {store.history_nbytes() / 1e6:.1f} MB; target <= {TARGET_RSS_MB:.0f})"
        )
        print(
            f"kept fds: {c.reader.open_fd_count()} (reader max {c.reader.max_fds}),"
            f" errors: {store.stats.errors}"
        )
        c.close()
    finally:
        remove_tree(base)


def steady(parent: str, n: int, warm: int, ticks: int) -> None:
    base = make_tree(parent, n, "")
    try:
        c = Collector(CgroupRoot(base), Store(history_len=600), idle_every=1, kmsg=False)
        for _ in range(max(2, warm)):
            c.tick_sync()
        c0 = time.thread_time()
        for _ in range(ticks):
            c.tick_sync()
        if ticks:
            cpu = (time.thread_time() - c0) / ticks / n * 1e6
            print(f"{ticks} steady ticks: {cpu:.2f} us CPU per cgroup")
        c.close()
    finally:
        remove_tree(base)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--counts", default="1000,10000")
    ap.add_argument("--tree", default="/sys/fs/cgroup/unified")
    ap.add_argument("--ticks", type=int, default=3)
    ap.add_argument("--run-s", type=float, default=3.0)
    ap.add_argument("--warm", type=int, default=21, help="ticks before measuring")
    ap.add_argument(
        "--controllers", default="", help="e.g. cpu,memory,pids,io: enable them (VM only)"
    )
    ap.add_argument("--steady-ticks", type=int, default=None, help="only T steady ticks")
    a = ap.parse_args()
    print(f"kernel {os.uname().release}, python {sys.version.split()[0]}, tree {a.tree}")
    if a.steady_ticks is not None:
        steady(a.tree, int(a.counts.split(",")[0]), a.warm, a.steady_ticks)
        return
    counts = [int(x) for x in a.counts.split(",")]
    if len(counts) > 1:  # one process per N, so each RSS figure stands alone
        for n in counts:
            argv = [sys.argv[0], "--counts", str(n), "--tree", a.tree]
            argv += ["--ticks", str(a.ticks), "--run-s", str(a.run_s), "--warm", str(a.warm)]
            argv += ["--controllers", a.controllers]
            subprocess.run([sys.executable, *argv], check=True)
        return
    with tempfile.TemporaryDirectory() as tmp:
        exe = compile_c(tmp)
        if exe is None:
            print("gcc not found: C reader skipped")
        for n in counts:
            bench(a.tree, n, exe, tmp, a.ticks, a.run_s, a.controllers, a.warm)


if __name__ == "__main__":
    main()

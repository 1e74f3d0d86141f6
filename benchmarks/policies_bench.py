"""Policy engine figures: placement latency (exec -> in the target cgroup), reconcile cost.

    .venv/bin/python -m benchmarks.policies_bench plan            # synthetic 1,000 / 5,000
    .venv/bin/python -m benchmarks.policies_bench scan [--spawn 1000 5000]   # real /proc read
    .venv/bin/python -m benchmarks.policies_bench latency --parent P [--n 200] [--rounds 4]
        [--base-src DIR] [--event-nice off -10] [--cgrulesengd [--cgre-forms cpu pids]]
    .venv/bin/python -m benchmarks.policies_bench event --parent P [--n 2000] [--engine-src D]
    (in the test VM: benchmarks/policies_vm.py)

Latency is measured the same way for every placer: the bench spawns `sleep` processes one at a
time; the exec timestamp is the kernel's (the proc connector's exec event, CLOCK_MONOTONIC);
the arrival is when inotify reports the target's cgroup.events changing to "populated 1"
(plus the wake-up of this process, the same for every placer). Each placer runs in its own
process, in blocks interleaved with the others' (A B C A B C ...) so that a change of load on
a shared machine is spread over all of them: pystats' PolicyEngine (proc connector -> read
/proc -> write cgroup.procs; also the engine of another revision, --base-src), or libcgroup's
cgrulesengd with `*:sleep <controller> <target>/` in /etc/cgrules.conf (only inside the test
VM, where /etc is overlaid by the bench; never on a hybrid host, whose v1 hierarchies belong
to the machine). For the engine, its own split is printed too: exec -> its handler entered
(delivery and wake-up), the handler's work, and of that the cgroup.procs write (the kernel's
migration).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

from policies import procs
from policies.connector import ProcConnector
from policies.plan import Current, GroupState, plan
from policies.procs import Proc
from policies.validate import load_policy

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(REPO, "policies", "examples", "build-farm.yaml")
COMMS = ["make", "cc1", "cc1plus", "ld", "bash", "sshd", "python3", "pytest", "node", "sleep"]


# -- plan cost on synthetic process tables ------------------------------------------------------


def synthetic(n: int) -> list[Proc]:
    out = []
    for pid in range(2, n + 2):
        comm = COMMS[pid % len(COMMS)]
        cmd = (comm, "-c", "pytest tests/" if comm == "python3" else "x")
        ppid = max(1, pid - 1 - pid % 7)
        out.append(
            Proc(
                pid,
                ppid,
                comm,
                f"/usr/bin/{comm}",
                cmd,
                pid % 3 * 1000,
                0,
                "u",
                "g",
                "/",
                kthread=pid % 50 == 0,
                start=pid,
            )
        )
    return out


def bench_plan(sizes: list[int], repeat: int) -> None:
    policy = load_policy(EXAMPLE)
    groups = {g.path: GroupState() for g in policy.all_groups()}
    current = Current("/pystats/policies", frozenset({"cpu", "memory", "pids"}), groups)
    print(
        f"plan() with {os.path.basename(EXAMPLE)} ({len(policy.all_groups())} groups), "
        f"synthetic tables, best of {repeat} (thread CPU time):"
    )
    for n in sizes:
        table = synthetic(n)
        times = []
        for _ in range(repeat):
            t0 = time.thread_time()
            actions = plan(policy, table, current, {1})
            times.append(time.thread_time() - t0)
        moves = sum(1 for a in actions if type(a).__name__ == "MovePid")
        print(
            f"  {n:>6} processes: {min(times) * 1e3:7.1f} ms "
            f" ({min(times) / n * 1e6:.1f} us/process, {moves} moves)"
        )


# -- real /proc scan ----------------------------------------------------------------------------


def bench_scan(spawn: list[int], repeat: int) -> None:
    print(f"procs.snapshot() over the real /proc, best of {repeat} (wall, and CPU time):")

    def measure(label: str) -> None:
        # all fields (explain, plan CLI) and only stat+cgroup (a policy of comm rules)
        for fields, what in ((procs.ALL_FIELDS, "all files"), (frozenset(), "stat+cgroup")):
            times = []
            cpu = []
            count = 0
            for _ in range(repeat):
                t0, c0 = time.perf_counter(), time.thread_time()
                count = len(procs.snapshot(fields=fields))
                times.append(time.perf_counter() - t0)
                cpu.append(time.thread_time() - c0)
            print(
                f"  {label}, {what}: {count:>6} processes: wall {min(times) * 1e3:7.1f} ms, CPU "
                f"{min(cpu) * 1e3:7.1f} ms ({min(cpu) / count * 1e6:.1f} us/process)"
            )

    measure("as is")
    base = len(procs.list_pids())
    for n in spawn:
        # one shell forks the sleepers: cheap, and they all exit with it
        sh = subprocess.Popen(
            ["bash", "-c", f"for i in $(seq {n}); do sleep 600 & done; wait"],
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 60
            while len(procs.list_pids()) < base + n and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(0.5)
            measure(f"+{n} sleeps")
        finally:
            os.killpg(sh.pid, signal.SIGKILL)
            sh.wait()
            time.sleep(0.5)


# -- event path CPU cost -------------------------------------------------------------------------

EVENT_CODE = """
import os, statistics, struct, subprocess, sys, time
from cgroupfs import writer
from cgroupfs.paths import CgroupRoot
from policies import connector
from policies.engine import PolicyEngine
root_path, pol_path, n, label = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
eng = PolicyEngine(CgroupRoot(root_path), pol_path, use_connector=False)
import dataclasses
def stats():  # a dict in revisions before the engine's stats became a frozen dataclass
    s = eng.stats
    return dataclasses.asdict(s) if dataclasses.is_dataclass(s) else s
assert eng.reload() == [] and eng.reconcile() == []
p = subprocess.Popen(["sleep", "30"])
try:
    ev = struct.pack("=IIQ", connector.PROC_EVENT_EXEC, 0, time.monotonic_ns())
    ev += struct.pack("=II", p.pid, p.pid)
    cn = struct.pack("=IIIIHH", connector.CN_IDX_PROC, connector.CN_VAL_PROC, 0, 0, len(ev), 0)
    d = struct.pack("=IHHII", 16 + len(cn) + len(ev), 3, 0, 0, 0) + cn + ev
    if hasattr(eng, "on_event"):  # this tree: what the event thread runs per datagram
        handle = lambda: connector.scan(d, len(d), eng.on_event)
    else:  # before: what the asyncio reader callback ran
        handle = lambda: eng.handle_events(connector.parse(d))
    root = CgroupRoot(root_path)
    cpu, wall = [], []
    for _ in range(n):
        writer.move_pid(root, "default", p.pid)
        t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
        handle()
        cpu.append(time.thread_time_ns() - c0)
        wall.append(time.perf_counter_ns() - t0)
    assert stats()["event_moves"] == n, stats()
    cpu.sort()
    print(f"  {label}exec event -> moved, n={n}: CPU median {statistics.median(cpu) / 1e3:.1f} us"
          f"  p90 {cpu[int(n * 0.9)] / 1e3:.1f} us; wall median"
          f" {statistics.median(wall) / 1e3:.1f} us", flush=True)
finally:
    p.kill()
    p.wait()
"""


def bench_event(parent: str, n: int, src: str = REPO, label: str = "") -> None:
    """CPU time of the event path for one exec event (datagram parse, /proc reads, match,
    cgroup.procs write), the process moved back to default between events (not timed)."""
    root = os.path.join(parent, f"pystats-bench-{uuid.uuid4().hex[:6]}")
    os.mkdir(root)
    fd, pol_path = tempfile.mkstemp(suffix=".yaml")
    with os.fdopen(fd, "w") as f:
        f.write("groups:\n  - name: sleepers\n    match: [{comm: sleep, cmdline: '^sleep 30$'}]\n")
    try:
        subprocess.run(
            [sys.executable, "-c", EVENT_CODE, root, pol_path, str(n), label],
            cwd=src,
            env=dict(os.environ, PYTHONPATH=src),
            check=False,
        )
    finally:
        os.unlink(pol_path)
        _remove_tree(root)


def _remove_tree(root: str) -> None:
    for d in sorted((dp for dp, _d, _f in os.walk(root)), key=len, reverse=True):
        for _ in range(50):
            try:
                os.rmdir(d)
                break
            except OSError:
                time.sleep(0.05)


# -- placement latency --------------------------------------------------------------------------

IN_MODIFY = 0x2


class Populated:
    """inotify on a cgroup's cgroup.events: wakes when 'populated' flips."""

    def __init__(self, cgroup: str) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self.fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        self.events = os.path.join(cgroup, "cgroup.events")
        if self.fd < 0 or libc.inotify_add_watch(self.fd, self.events.encode(), IN_MODIFY) < 0:
            raise OSError(ctypes.get_errno(), "inotify")
        self.poll = select.poll()
        self.poll.register(self.fd, select.POLLIN)

    def state(self) -> bool:
        with open(self.events) as f:
            return "populated 1" in f.read()

    def wait(self, want: bool, timeout_s: float) -> int | None:
        """monotonic ns when the state became ``want`` (None on timeout)."""
        deadline = time.monotonic() + timeout_s
        while True:
            if self.state() == want:
                return time.monotonic_ns()
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            if self.poll.poll(left * 1000):
                t = time.monotonic_ns()
                with contextlib.suppress(BlockingIOError):
                    os.read(self.fd, 4096)
                if self.state() == want:
                    return t


def _exec_ts(conn: ProcConnector, pid: int, timeout_s: float = 5.0) -> int | None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        select.select([conn.sock], [], [], 0.05)
        for ev in conn.read_ready():
            if ev.kind == "exec" and ev.pid == pid:
                return ev.timestamp_ns
    return None


def measure_latency(
    target: str, n: int, timeout_s: float, give_up_after: int | None = None
) -> tuple[list[float], int]:
    """Latencies (ms) of ``n`` execs; stops early when the first ``give_up_after`` all missed."""
    conn = ProcConnector.open()
    pop = Populated(target)
    lat: list[float] = []
    missed = 0
    try:
        for i in range(n):
            if give_up_after is not None and i == give_up_after and not lat:
                break
            p = subprocess.Popen(["sleep", "30"])
            try:
                ts = _exec_ts(conn, p.pid)
                arrived = pop.wait(True, timeout_s)
                if ts is None or arrived is None:
                    missed += 1
                else:
                    lat.append((arrived - ts) / 1e6)
            finally:
                p.kill()
                p.wait()
            pop.wait(False, 5.0)
    finally:
        conn.stop()
    return lat, missed


def report(name: str, lat: list[float], missed: int, n: int) -> None:
    if not lat:
        print(f"  {name}: no placement observed in {n} execs ({missed} missed)")
        return
    lat.sort()
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    print(
        f"  {name}: n={n} placed={len(lat)} missed={missed}  p50 {statistics.median(lat):.2f} ms"
        f"  p90 {lat[int(len(lat) * 0.9)]:.2f} ms  p99 {p99:.2f} ms  max {lat[-1]:.2f} ms"
    )


ENGINE_CODE = """
import asyncio, json, logging, signal, sys, time
from cgroupfs.paths import CgroupRoot
from policies.engine import PolicyEngine
logging.basicConfig(level=logging.WARNING)
import os
os.nice(int(sys.argv[3]))
en = sys.argv[4]
kw = {} if en == "default" else {"event_nice": None if en == "off" else int(en)}
eng = PolicyEngine(CgroupRoot(sys.argv[1]), sys.argv[2], reconcile_s=3600, **kw)
import dataclasses
def stats():  # a dict in revisions before the engine's stats became a frozen dataclass
    s = eng.stats
    return dataclasses.asdict(s) if dataclasses.is_dataclass(s) else s
# split of the engine-side time for exec events: exec -> handler entered (kernel delivery,
# wake-up, scheduling), and the handler's own work (read /proc, match, move)
split = []
def timed(handler, exec_ts):
    def wrapper(*a):
        t0 = time.monotonic_ns()
        handler(*a)
        ts = exec_ts(*a)
        if ts:
            split.append((t0 - ts, time.monotonic_ns() - t0))
    return wrapper
from cgroupfs import writer
moves = []  # the cgroup.procs write alone (the kernel's migration)
def _timed_move(*a, _move=writer.move_pid, **k):
    t0 = time.monotonic_ns()
    try:
        return _move(*a, **k)
    finally:
        moves.append(time.monotonic_ns() - t0)
writer.move_pid = _timed_move
if hasattr(eng, "on_event"):  # this tree: the event thread's callback
    eng.on_event = timed(eng.on_event, lambda w, p, ts: ts if w == 2 else 0)
else:  # before: the asyncio reader's callback
    eng.handle_events = timed(
        eng.handle_events, lambda evs: next((e.timestamp_ns for e in evs if e.kind == "exec"), 0)
    )
async def main():
    t = asyncio.create_task(eng.run())
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    while stats()["reconciles"] < 1:
        await asyncio.sleep(0.01)
    print("ready", flush=True)
    await stop.wait()
    t.cancel()
    print(json.dumps({"engine": list(eng.placement_latency_ns),
                      "delivery": [x[0] for x in split], "work": [x[1] for x in split],
                      "move": moves, "stats": {k: v for k, v in stats().items() if v}}),
          flush=True)
asyncio.run(main())
"""


def _pct(v: list[float], q: float) -> float:
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * q))]


class Placer:
    """One placer measured in blocks: start() -> the target cgroup (None: unusable), stop()."""

    name = ""
    failed = False  # placed nothing in its first block: not measured again

    def start(self) -> str | None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def details(self) -> str:
        return ""


class PystatsPlacer(Placer):
    """pystats' PolicyEngine in its own process; ``src`` is where its packages are imported
    from (another revision's); ``event_nice``: "" for the engine's default, "off", or a value."""

    def __init__(self, parent: str, nice: int, src: str, label: str, event_nice: str) -> None:
        self.parent, self.nice, self.src, self.event_nice = parent, nice, src, event_nice
        thread = f", event thread nice {event_nice}" if event_nice else ""
        self.name = f"{label}pystats PolicyEngine (nice {nice}{thread})"
        self.pooled: dict[str, list[float]] = {"engine": [], "delivery": [], "work": [], "move": []}
        self.stats: dict[str, float] = {}

    def start(self) -> str | None:
        self.root = os.path.join(self.parent, f"pystats-bench-{uuid.uuid4().hex[:6]}")
        os.mkdir(self.root)
        fd, self.pol_path = tempfile.mkstemp(suffix=".yaml")
        with os.fdopen(fd, "w") as f:
            f.write(
                "groups:\n  - name: sleepers\n    match: [{comm: sleep, cmdline: '^sleep 30$'}]\n"
            )
        argv = [self.root, self.pol_path, str(self.nice), self.event_nice or "default"]
        self.proc = subprocess.Popen(
            [sys.executable, "-c", ENGINE_CODE, *argv],
            stdout=subprocess.PIPE,
            text=True,
            cwd=self.src,
            env=dict(os.environ, PYTHONPATH=self.src),
        )
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            print(f"  {self.name}: engine did not start")
            self.stop()
            return None
        return os.path.join(self.root, "sleepers")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=60)
        try:
            got = json.loads(out.strip().splitlines()[-1])
            for k, v in self.pooled.items():
                v.extend(x / 1e6 for x in got[k])
            for k, n in got["stats"].items():
                self.stats[k] = self.stats.get(k, 0) + n
        except (ValueError, IndexError, KeyError):
            print(f"    engine output: {out.strip()[-500:]}")
        os.unlink(self.pol_path)
        _remove_tree(self.root)

    def details(self) -> str:
        p = self.pooled
        if not p["engine"]:
            return f"    engine stats: {self.stats}"
        parts = [
            f"engine-side exec->moved p50 {_pct(p['engine'], 0.5):.2f} / p99 "
            f"{_pct(p['engine'], 0.99):.2f} ms"
        ]
        for k, what in (("delivery", "exec->handler"), ("work", "handler"), ("move", "move_pid")):
            if p[k]:
                parts.append(f"{what} {_pct(p[k], 0.5):.2f} / {_pct(p[k], 0.99):.2f}")
        moved = int(self.stats.get("event_moves", 0))
        return "    " + "; ".join(parts) + f" ms; event_moves {moved}"


class CgrulesEnv:
    """/etc overlaid with a tmpfs (read-only in the VM) holding what libcgroup needs, and a
    target cgroup directly under the mount (libcgroup's paths are mount-relative)."""

    def __init__(self, parent: str) -> None:
        self.mount = "/sys/fs/cgroup"
        rel = os.path.relpath(parent, self.mount)
        name = f"cgre-{uuid.uuid4().hex[:6]}"
        self.target_rel = f"{rel}/{name}" if rel != "." else name
        self.target = os.path.join(self.mount, self.target_rel)

    def __enter__(self) -> CgrulesEnv:
        os.mkdir(self.target)
        self.up = tempfile.mkdtemp(prefix="etc-")
        subprocess.run(["mount", "-t", "tmpfs", "none", self.up], check=True)
        os.makedirs(f"{self.up}/u")
        os.makedirs(f"{self.up}/w")
        opts = f"lowerdir=/etc,upperdir={self.up}/u,workdir={self.up}/w"
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, "/etc"], check=True)
        # a pure v2 mount: let the target have the controllers libcgroup may look for
        with contextlib.suppress(OSError), open(f"{self.mount}/cgroup.subtree_control", "w") as f:
            f.write("+cpu +memory +pids")
        os.makedirs("/etc/cgconfig.d", exist_ok=True)  # libcgroup refuses to start without them
        os.makedirs("/etc/cgrules.d", exist_ok=True)
        with open("/etc/cgconfig.conf", "a"):
            pass
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["umount", "/etc"], check=False)
        subprocess.run(["umount", self.up], check=False)
        _remove_tree(self.target)


class CgrulesPlacer(Placer):
    """libcgroup's cgrulesengd with the rule `*:sleep <controllers> <target>/`, at its default
    verbosity (logging every event would slow it); -v -v only to show why it placed nothing."""

    def __init__(self, binary: str, env: CgrulesEnv, form: str) -> None:
        self.binary, self.env = binary, env
        self.rule = f"*:sleep {form} {env.target_rel}/"
        self.name = f"cgrulesengd, rule '{self.rule}'"

    def start(self, verbose: bool = False) -> str | None:
        with open("/etc/cgrules.conf", "w") as f:
            f.write(self.rule + "\n")
        self.log = open(os.path.join(tempfile.gettempdir(), "cgrulesengd.log"), "w+")  # noqa: SIM115
        args = [self.binary, "-n", *(["-v", "-v"] if verbose else []), "-f", "-"]
        self.daemon = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        time.sleep(2.0)
        if self.daemon.poll() is not None:
            self.log.seek(0)
            print(f"  cgrulesengd exited with {self.daemon.returncode}:\n{self.log.read()[-3000:]}")
            self.log.close()
            return None
        return self.env.target

    def stop(self) -> None:
        if self.daemon.poll() is None:
            self.daemon.terminate()
            self.daemon.wait(10)
        self.log.close()

    def explain_failure(self) -> None:
        if self.start(verbose=True) is None:
            return
        measure_latency(self.env.target, 3, 2.0)
        self.stop()
        with open(self.log.name) as f:
            lines = f.read().splitlines()
        shown = [*lines[:8], "...", *lines[-4:]] if len(lines) > 12 else lines
        print("    cgrulesengd -v -v log:\n      " + "\n      ".join(shown))


def run_rounds(placers: list[Placer], n: int, rounds: int) -> None:
    """Each placer places ``n`` execs in ``rounds`` interleaved blocks (A B C A B C ...), so
    that a change in the machine's load during the run is shared out between them."""
    block = -(-n // rounds)
    results: dict[str, tuple[list[float], list[int]]] = {p.name: ([], [0]) for p in placers}
    for r in range(rounds):
        for pl in placers:
            count = min(block, n - r * block)
            if pl.failed or count <= 0:
                continue
            target = pl.start()
            if target is None:
                pl.failed = True
                continue
            try:
                lat, missed = measure_latency(target, count, 2.0, give_up_after=10)
            finally:
                pl.stop()
            results[pl.name][0].extend(lat)
            results[pl.name][1][0] += missed
            if r == 0 and not lat:
                pl.failed = True
        print(f"  (round {r + 1}/{rounds} done)", flush=True)
    for pl in placers:
        lat, misses = results[pl.name]
        report(pl.name, lat, misses[0], n)
        if pl.details():
            print(pl.details())
        if pl.failed and isinstance(pl, CgrulesPlacer):
            pl.explain_failure()


def cgrules_binary() -> str | None:
    binary = shutil.which("cgrulesengd")
    if binary is None:
        print("  cgrulesengd: not installed (apt-get install cgroup-tools)")
    elif os.environ.get("PYSTATS_IN_VM") != "1":
        print(
            "  cgrulesengd: refused outside the test VM (it would act on this host's v1 "
            "hierarchies and needs /etc/cgrules.conf)"
        )
        return None
    return binary


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="what", required=True)
    p = sub.add_parser("plan")
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000])
    p.add_argument("--repeat", type=int, default=5)
    s = sub.add_parser("scan")
    s.add_argument("--spawn", type=int, nargs="*", default=[])
    s.add_argument("--repeat", type=int, default=3)
    ev = sub.add_parser("event")
    ev.add_argument("--parent", required=True, help="a writable cgroup2 directory to work under")
    ev.add_argument("--n", type=int, default=2000)
    ev.add_argument("--engine-src", default=REPO, help="import the engine from here instead")
    ev.add_argument("--label", default="", help="prefix for the output line")
    lt = sub.add_parser("latency")
    lt.add_argument("--parent", required=True, help="a writable cgroup2 directory to work under")
    lt.add_argument("--n", type=int, default=200)
    lt.add_argument("--nice", type=int, nargs="+", default=[0], help="engine niceness to try")
    lt.add_argument("--cgrulesengd", action="store_true", help="also measure cgrulesengd (VM only)")
    lt.add_argument(
        "--cgre-forms",
        nargs="+",
        default=["*", "cpu", "memory", "pids"],
        help="cgrulesengd controller forms to try",
    )
    lt.add_argument("--rounds", type=int, default=1, help="interleaved blocks per placer")
    lt.add_argument("--base-src", help="also time the engine imported from this directory")
    lt.add_argument("--base-label", default="before: ", help="prefix for that engine's lines")
    lt.add_argument(
        "--event-nice",
        nargs="+",
        default=[""],
        help="event thread nice values to try ('off': leave it; default: the engine's)",
    )
    lt.add_argument("--no-pystats", action="store_true", help="measure cgrulesengd only")
    lt.add_argument("--label", default="", help="prefix for the engine's lines")
    args = ap.parse_args()
    if args.what == "plan":
        bench_plan(args.sizes, args.repeat)
    elif args.what == "scan":
        bench_scan(args.spawn, args.repeat)
    elif args.what == "event":
        bench_event(args.parent, args.n, args.engine_src, args.label)
    else:
        print(
            f"placement latency, exec -> in the target cgroup, {args.n} execs each in "
            f"{args.rounds} interleaved rounds (kernel {os.uname().release}):",
            flush=True,
        )
        placers: list[Placer] = []
        if args.base_src:
            for nice in args.nice:
                placers.append(PystatsPlacer(args.parent, nice, args.base_src, args.base_label, ""))
        for nice in [] if args.no_pystats else args.nice:
            for en in args.event_nice:
                placers.append(PystatsPlacer(args.parent, nice, REPO, args.label, en))
        binary = cgrules_binary() if args.cgrulesengd else None
        if binary is None:
            run_rounds(placers, args.n, args.rounds)
        else:
            with CgrulesEnv(args.parent) as env:
                placers += [CgrulesPlacer(binary, env, f) for f in args.cgre_forms]
                run_rounds(placers, args.n, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())

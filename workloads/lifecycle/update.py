"""`pystats update`: a running workload's limits changed live, checked against the host first.

Every flag maps to one cgroup file (docker's names; `--cpu-shares` is converted to cpu.weight as
runc does). Values are refused up front, in one line, when the host cannot honour them: more CPUs
than it has, more memory than it has, CPUs or memory nodes outside the parent's cpuset, a device
that is not a block device, a controller missing from the workload's cgroup (a hybrid host).
The values written are kept in ``limits.json`` beside the workload's records (inspect shows them;
the cgroup keeps them across restarts).
"""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field

from cgroupfs import reader, units, writer
from cgroupfs.errors import CgroupError
from cgroupfs.parsers import parse_controllers
from cgroupfs.paths import CgroupRoot
from workloads.runtime.cgroups import CPU_PERIOD_USEC, workload_rel
from workloads.runtime.errors import SpecError

LIMITS_FILE = "limits.json"
IO_KEYS = {
    "device_read_bps": "rbps",
    "device_write_bps": "wbps",
    "device_read_iops": "riops",
    "device_write_iops": "wiops",
}
FLAGS = (
    "cpus", "cpu_shares", "cpu_weight", "cpuset_cpus", "cpuset_mems", "memory",
    "memory_reservation", "memory_high", "memory_swap", "pids_limit", "blkio_weight",
    "oom_score_adj", *IO_KEYS,
)  # fmt: skip


@dataclass(frozen=True)
class LimitUpdate:
    """What to write: cgroup file -> value, and the workload's oom_score_adj (a /proc file)."""

    files: Mapping[str, str] = field(default_factory=dict)
    oom_score_adj: int | None = None


def host_cpus() -> int:
    return os.cpu_count() or 1


def host_memory() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    raise SpecError("cannot read MemTotal from /proc/meminfo")


def _bytes(flag: str, text: str, *, allow_max: bool = True) -> str:
    try:
        value = units.parse_bytes(text)
    except ValueError as e:
        raise SpecError(f"invalid --{flag}: {e}") from None
    if isinstance(value, float):  # "max"
        if not allow_max:
            raise SpecError(f"invalid --{flag} {text!r}: a size, not max")
        return "max"
    if value < 0:
        raise SpecError(f"invalid --{flag} {text!r}: must not be negative")
    total = host_memory()
    if flag != "memory-swap" and value > total:
        raise SpecError(
            f"invalid --{flag} {text!r}: more than this host's memory ({units.format_bytes(total)})"
        )
    return str(value)


def _int_in(flag: str, text: str, low: int, high: int) -> int:
    try:
        value = int(str(text))
    except ValueError:
        raise SpecError(f"invalid --{flag} {text!r}: a whole number") from None
    if not low <= value <= high:
        raise SpecError(f"invalid --{flag} {text!r}: from {low} to {high}")
    return value


def _cpu_list(flag: str, text: str, allowed: str | None) -> str:
    """A cpuset list ("0-2,4"), every member inside ``allowed`` (the parent's effective set)."""
    wanted = _expand(flag, text)
    if allowed is not None:
        outside = wanted - _expand(flag, allowed)
        if outside:
            raise SpecError(
                f"invalid --{flag} {text!r}: {','.join(map(str, sorted(outside)))} not in this"
                f" host's {allowed.strip() or 'empty set'}"
            )
    return text


def _expand(flag: str, text: str) -> set[int]:
    out: set[int] = set()
    for part in text.strip().split(","):
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise SpecError(f"invalid --{flag} {text!r}: a list such as 0-2,4")
        out.update(range(int(lo), int(hi if sep else lo) + 1))
    return out


def _device(flag: str, item: str) -> tuple[str, str]:
    """'/dev/sda:1M' -> ('8:0', '1048576') (bps) or ('8:0', '1000') (iops)."""
    path, sep, rate = item.rpartition(":")
    if not sep or not path:
        raise SpecError(f"invalid --{flag} {item!r}: DEVICE:RATE, e.g. /dev/sda:1M")
    try:
        st = os.stat(path)
    except OSError as e:
        raise SpecError(f"invalid --{flag} {item!r}: {path}: {e.strerror}") from None
    if not stat.S_ISBLK(st.st_mode):
        raise SpecError(f"invalid --{flag} {item!r}: {path} is not a block device")
    if flag.endswith("iops"):
        value = str(_int_in(flag, rate, 1, 2**63 - 1))
    else:
        value = _bytes(flag, rate, allow_max=False)
        if value == "0":
            raise SpecError(f"invalid --{flag} {item!r}: the rate must be positive")
    return f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}", value


def parse_update(
    values: Mapping[str, object], parent_cpus: str | None = None, parent_mems: str | None = None
) -> LimitUpdate:
    """Flags (FLAGS keys, strings as typed) -> the files to write; SpecError says what is wrong.
    ``parent_cpus``/``parent_mems``: the parent's cpuset.*.effective, when it has cpuset."""
    unknown = set(values) - set(FLAGS)
    if unknown:
        raise SpecError(f"unknown limit(s): {', '.join(sorted(unknown))}")
    v = {k: x for k, x in values.items() if x is not None}
    files: dict[str, str] = {}
    if "cpus" in v:
        try:
            cores = units.parse_cpus(str(v["cpus"]))
        except ValueError as e:
            raise SpecError(f"invalid --cpus: {e}") from None
        if not math.isinf(cores) and cores > host_cpus():
            raise SpecError(
                f"invalid --cpus {v['cpus']!r}: this host has {host_cpus()} CPUs (0.01 to"
                f" {host_cpus()})"
            )
        files["cpu.max"] = units.cpu_max_value(
            None if math.isinf(cores) else cores, CPU_PERIOD_USEC
        )
    if "cpu_shares" in v and "cpu_weight" in v:
        raise SpecError("give --cpu-shares or --cpu-weight, not both")
    if "cpu_shares" in v:  # runc's conversion of the v1 range 2..262144 to 1..10000
        shares = _int_in("cpu-shares", str(v["cpu_shares"]), 2, 262144)
        files["cpu.weight"] = str(1 + ((shares - 2) * 9999) // 262142)
    if "cpu_weight" in v:
        files["cpu.weight"] = str(_int_in("cpu-weight", str(v["cpu_weight"]), 1, 10000))
    if "cpuset_cpus" in v:
        files["cpuset.cpus"] = _cpu_list("cpuset-cpus", str(v["cpuset_cpus"]), parent_cpus)
    if "cpuset_mems" in v:
        files["cpuset.mems"] = _cpu_list("cpuset-mems", str(v["cpuset_mems"]), parent_mems)
    for key, file in (
        ("memory", "memory.max"),
        ("memory_reservation", "memory.low"),
        ("memory_high", "memory.high"),
    ):
        if key in v:
            files[file] = _bytes(key.replace("_", "-"), str(v[key]))
    if "memory_swap" in v:
        # docker: --memory-swap is memory + swap; -1 is unlimited swap.
        text = str(v["memory_swap"])
        if text == "-1":
            files["memory.swap.max"] = "max"
        else:
            total = _bytes("memory-swap", text)
            mem = files.get("memory.max")
            if mem is None or mem == "max" or total == "max":
                raise SpecError("--memory-swap needs --memory (it is memory plus swap), or -1")
            if int(total) < int(mem):
                raise SpecError("--memory-swap must be at least --memory (it is memory plus swap)")
            files["memory.swap.max"] = str(int(total) - int(mem))
    if "pids_limit" in v:
        text = str(v["pids_limit"])
        files["pids.max"] = (
            "max" if text in ("max", "-1", "0") else str(_int_in("pids-limit", text, 1, 2**31))
        )
    if "blkio_weight" in v:
        files["io.weight"] = f"default {_int_in('blkio-weight', str(v['blkio_weight']), 10, 1000)}"
    io: dict[str, list[str]] = {}
    for key, word in IO_KEYS.items():
        items = v.get(key) or []
        for item in items if isinstance(items, list) else [items]:
            dev, value = _device(key.replace("_", "-"), str(item))
            io.setdefault(dev, []).append(f"{word}={value}")
    for n, (dev, words) in enumerate(sorted(io.items())):
        files[f"io.max#{n}"] = f"{dev} {' '.join(words)}"  # one write per device
    oom = None
    if "oom_score_adj" in v:
        oom = _int_in("oom-score-adj", str(v["oom_score_adj"]), -1000, 1000)
    if not files and oom is None:
        raise SpecError("nothing to update: give at least one limit flag")
    return LimitUpdate(files, oom)


def controller_of(file: str) -> str:
    return file.split(".", 1)[0]


def parent_cpuset(
    root: CgroupRoot, name: str, pod: str | None = None
) -> tuple[str | None, str | None]:
    """The parent's cpuset.cpus.effective and cpuset.mems.effective (None without cpuset)."""
    rel = os.path.dirname(workload_rel(name, pod))
    out: list[str | None] = []
    for file in ("cpuset.cpus.effective", "cpuset.mems.effective"):
        try:
            out.append(reader.read_file(root, rel, file).decode().strip())
        except (CgroupError, FileNotFoundError):
            out.append(None)
    return out[0], out[1]


def apply(
    root: CgroupRoot, name: str, update: LimitUpdate, pid: int | None, pod: str | None = None
) -> dict[str, str]:
    """Write ``update`` into the workload's cgroup; every controller is checked before any write.
    Returns what was written (io.max by its real name)."""
    rel = workload_rel(name, pod)
    have = parse_controllers(reader.read_file(root, rel, "cgroup.controllers"))
    missing = sorted({controller_of(f) for f in update.files} - have)
    if missing:
        raise SpecError(
            f"controller {', '.join(missing)} is not available in {root.resolve(rel)} (a hybrid"
            " host's v2 tree, or not enabled above it): those limits cannot be set"
        )
    written: dict[str, str] = {}
    for file, value in update.files.items():
        real = file.split("#")[0]
        try:
            writer.write(root, rel, real, value)
        except CgroupError as e:
            raise SpecError(str(e)) from None
        written[real] = value if real not in written else f"{written[real]}\n{value}"
    if update.oom_score_adj is not None:
        if pid is None:
            raise SpecError("--oom-score-adj needs a running workload")
        try:
            with open(f"/proc/{pid}/oom_score_adj", "w") as f:
                f.write(str(update.oom_score_adj))
        except OSError as e:
            raise SpecError(f"cannot set oom_score_adj of PID {pid}: {e.strerror}") from None
        written["oom_score_adj"] = str(update.oom_score_adj)
    return written


def check_run_limits(memory_bytes: int | None, cpus: float | None) -> None:
    """`run --memory/--cpus` against the host, as `update` checks them."""
    if cpus is not None and cpus > host_cpus():
        raise SpecError(f"invalid --cpus {cpus:g}: this host has {host_cpus()} CPUs")
    if memory_bytes is not None and memory_bytes > host_memory():
        raise SpecError(
            f"invalid --memory {units.format_bytes(memory_bytes)}: more than this host's memory"
            f" ({units.format_bytes(host_memory())})"
        )


def read_updated(wdir: str) -> dict[str, str]:
    """The values `update` wrote (inspect's ``updated_limits``), {} if never updated."""
    import json

    try:
        with open(os.path.join(wdir, LIMITS_FILE)) as f:
            data = json.load(f)
    except (FileNotFoundError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

"""Issue 17.3: `pystats update`'s flags mapped to cgroup files and checked against the host."""

from __future__ import annotations

import os

import pytest

from workloads.lifecycle.update import host_cpus, host_memory, parse_update
from workloads.runtime.errors import SpecError


def test_flags_map_to_cgroup_files() -> None:
    upd = parse_update(
        {
            "cpus": "0.5",
            "cpu_shares": "1024",
            "cpuset_cpus": "0",
            "memory": "64M",
            "memory_reservation": "32M",
            "memory_high": "48M",
            "memory_swap": "100M",
            "pids_limit": "50",
            "blkio_weight": "300",
            "oom_score_adj": "500",
        },
        parent_cpus="0-1",
    )
    assert dict(upd.files) == {
        "cpu.max": "50000 100000",
        "cpu.weight": "39",  # runc: 1 + (1024 - 2) * 9999 / 262142
        "cpuset.cpus": "0",
        "memory.max": str(64 << 20),
        "memory.low": str(32 << 20),
        "memory.high": str(48 << 20),
        "memory.swap.max": str(36 << 20),
        "pids.max": "50",
        "io.weight": "default 300",
    }
    assert upd.oom_score_adj == 500
    assert parse_update({"memory_swap": "-1"}).files == {"memory.swap.max": "max"}
    assert parse_update({"pids_limit": "-1"}).files == {"pids.max": "max"}


def test_device_limits_name_the_device_by_number() -> None:
    dev = next((d for d in ("/dev/loop0", "/dev/sda", "/dev/vda") if os.path.exists(d)), None)
    if dev is None:
        pytest.skip("no block device node here")
    rdev = os.stat(dev).st_rdev
    upd = parse_update({"device_read_bps": [f"{dev}:1M"], "device_write_iops": [f"{dev}:100"]})
    assert dict(upd.files) == {
        "io.max#0": f"{os.major(rdev)}:{os.minor(rdev)} rbps=1048576 wiops=100"
    }
    with pytest.raises(SpecError, match="/dev/null is not a block device"):
        parse_update({"device_read_bps": ["/dev/null:1mb"]})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"cpus": "1000"}, f"this host has {host_cpus()} CPUs"),
        ({"memory": "99999999T"}, "more than this host's memory"),
        ({"memory": "-5M"}, "invalid --memory"),
        ({"cpu_weight": "0"}, "from 1 to 10000"),
        ({"cpu_shares": "1", "cpu_weight": "5"}, "not both"),
        ({"cpuset_cpus": "0-99"}, "not in this host's 0-1"),
        ({"cpuset_cpus": "a-b"}, "a list such as 0-2,4"),
        ({"memory_swap": "1G"}, "needs --memory"),
        ({"memory": "1G", "memory_swap": "512M"}, "at least --memory"),
        ({"oom_score_adj": "2000"}, "from -1000 to 1000"),
        ({"blkio_weight": "5"}, "from 10 to 1000"),
        ({}, "nothing to update"),
        ({"colour": "red"}, "unknown limit(s): colour"),
    ],
)
def test_values_the_host_cannot_honour_are_refused(values: dict[str, object], message: str) -> None:
    with pytest.raises(SpecError) as e:
        parse_update(values, parent_cpus="0-1")
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_host_figures_are_plausible() -> None:
    assert host_cpus() >= 1 and host_memory() > 64 << 20

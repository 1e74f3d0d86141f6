"""The parsers' fast paths give exactly what their generic paths give: the cpu.stat layout
regex against the generic flat-file path, and the generated frozen-dataclass constructors
against the dataclasses' own __init__."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cgroupfs import parsers
from cgroupfs.errors import ParseError
from cgroupfs.types import CgroupEvents, CpuStat, Pressure, PressureLine

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures")


def _generic_cpu_stat(data: bytes) -> CpuStat:
    p = parsers
    return CpuStat(*p._fields(data, "cpu.stat", p._CPU_STAT, p._CPU_STAT_B, p._CPU_STAT_SET))


def _cpu_stat_fixtures() -> list[bytes]:
    out = []
    for dirpath, _dirs, files in sorted(os.walk(FIXTURES)):
        if "cpu.stat" in files:
            with open(os.path.join(dirpath, "cpu.stat"), "rb") as f:
                out.append(f.read())
    return out


@pytest.mark.parametrize("data", _cpu_stat_fixtures())
def test_real_cpu_stat_takes_the_layout_path_and_equals_the_generic_one(data: bytes) -> None:
    assert parsers._CPU_STAT_LAYOUT.fullmatch(data), "real files take the layout path"
    assert parsers.parse_cpu_stat(data) == _generic_cpu_stat(data)


NUM = st.integers(0, 2**70)


@given(
    base=st.tuples(NUM, NUM, NUM),
    nice=st.none() | NUM,
    core=st.none() | NUM,
    bandwidth=st.none() | st.tuples(NUM, NUM, NUM),
    burst=st.none() | st.tuples(NUM, NUM),
    extra=st.none() | st.sampled_from([b"zz_new 5\n", b"usage_usec 1\n", b"nice_usec 2\n"]),
)
def test_cpu_stat_layouts_parse_like_the_generic_path(
    base: tuple[int, int, int],
    nice: int | None,
    core: int | None,
    bandwidth: tuple[int, int, int] | None,
    burst: tuple[int, int] | None,
    extra: bytes | None,
) -> None:
    text = b"usage_usec %d\nuser_usec %d\nsystem_usec %d\n" % base
    if nice is not None:
        text += b"nice_usec %d\n" % nice
    if core is not None:
        text += b"core_sched.force_idle_usec %d\n" % core
    if bandwidth is not None:
        text += b"nr_periods %d\nnr_throttled %d\nthrottled_usec %d\n" % bandwidth
        if burst is not None:
            text += b"nr_bursts %d\nburst_usec %d\n" % burst
    if extra is not None:  # an unknown key or a duplicate: the generic path, last one wins
        text += extra
    got = parsers.parse_cpu_stat(text)
    assert got == _generic_cpu_stat(text)
    assert type(got) is CpuStat
    assert got.usage_usec == (1 if extra == b"usage_usec 1\n" else base[0])
    assert got.nice_usec == (2 if extra == b"nice_usec 2\n" else nice)
    assert got.nr_periods == (None if bandwidth is None else bandwidth[0])


def test_cpu_stat_layout_path_keeps_the_strictness() -> None:
    for bad in (
        b"usage_usec 1\nuser_usec x\nsystem_usec 3\n",
        b"usage_usec 1\nuser_usec -2\nsystem_usec 3\n",
        b"usage_usec 1 2\nuser_usec 2\nsystem_usec 3\n",
    ):
        with pytest.raises(ParseError) as e:
            parsers.parse_cpu_stat(bad, "some/cpu.stat")
        assert e.value.file == "some/cpu.stat"
    with pytest.raises(ParseError, match="too long"):
        parsers.parse_cpu_stat(b"usage_usec " + b"1" * 5000 + b"\nuser_usec 1\nsystem_usec 1\n")


@pytest.mark.parametrize("cls", [CpuStat, CgroupEvents, Pressure, PressureLine])
def test_generated_constructors_make_the_real_frozen_class(cls: type) -> None:
    make: Callable[..., Any] = parsers._frozen_ctor(cls)
    assert make is not cls, "the fast constructor is in use on this interpreter"
    n = len(dataclasses.fields(cls))
    args = tuple(range(10, 10 + n))
    obj = make(*args)
    assert type(obj) is cls and obj == cls(*args) and hash(obj) == hash(cls(*args))
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(obj, dataclasses.fields(cls)[0].name, 1)

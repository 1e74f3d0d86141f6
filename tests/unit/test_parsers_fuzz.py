"""Malformed input to every parser: a ParseError or a value, never another exception.

Seeds are the fixtures captured from real kernels (tests/fixtures/), then truncated, mutated,
padded with huge numbers, duplicated keys and dropped lines.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cgroupfs import parsers
from cgroupfs.errors import ParseError
from cgroupfs.types import UNLIMITED, Pressure

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures")

# Kernel file name -> parser (the same table as test_parsers.py, kept local to stay standalone).
PARSERS: dict[str, Callable[[bytes, str], Any]] = {
    "cpu.stat": parsers.parse_cpu_stat,
    "cpu.max": parsers.parse_cpu_max,
    "cpu.weight": parsers.parse_cpu_weight,
    "memory.current": parsers.parse_int,
    "memory.peak": parsers.parse_int,
    "memory.swap.current": parsers.parse_int,
    "pids.current": parsers.parse_int,
    "memory.max": parsers.parse_limit,
    "memory.high": parsers.parse_limit,
    "memory.low": parsers.parse_limit,
    "memory.min": parsers.parse_limit,
    "memory.swap.max": parsers.parse_limit,
    "pids.max": parsers.parse_limit,
    "memory.events": parsers.parse_memory_events,
    "memory.events.local": parsers.parse_memory_events,
    "memory.stat": parsers.parse_memory_stat,
    "pids.events": parsers.parse_pids_events,
    "io.stat": parsers.parse_io_stat,
    "cgroup.events": parsers.parse_cgroup_events,
    "cgroup.stat": parsers.parse_cgroup_stat,
    "cgroup.procs": parsers.parse_procs,
    "cgroup.threads": parsers.parse_procs,
    "cgroup.controllers": parsers.parse_controllers,
    "cgroup.subtree_control": parsers.parse_controllers,
    "cpu.pressure": parsers.parse_pressure,
    "memory.pressure": parsers.parse_pressure,
    "io.pressure": parsers.parse_pressure,
}
DISTINCT_PARSERS = list({id(p): p for p in PARSERS.values()}.values())


def _fixture_files() -> list[tuple[str, bytes]]:
    found = []
    for dirpath, _dirs, files in sorted(os.walk(FIXTURES)):
        for name in sorted(files):
            if name in PARSERS:
                with open(os.path.join(dirpath, name), "rb") as f:
                    found.append((name, f.read()))
    return found


FIXTURE_FILES = _fixture_files()
SEEDS = st.sampled_from(FIXTURE_FILES)
# Bytes that kernel files are made of, so random input reaches deep into the parsers.
KERNELISH = st.binary().map(bytes) | st.text(
    alphabet="0123456789 \n\t=:._-maxsomefulavgtlbyrw\x00é", max_size=200
).map(lambda s: s.encode("utf-8"))


def outcome(parser: Callable[[bytes, str], Any], data: bytes, file: str = "f") -> Any:
    """The parser's value, or the ParseError; any other exception fails the test."""
    try:
        value = parser(data, file)
    except ParseError as e:
        assert e.file == file  # the error names the file it was given
        assert e.message
        return e
    _check_sane(value)
    return value


def _check_sane(value: Any) -> None:
    """Whatever a parser returns holds what the types promise: no negatives, no nan/inf
    except UNLIMITED for a limit."""
    if isinstance(value, Pressure):
        for line in (value.some, value.full):
            if line is not None:
                assert all(
                    math.isfinite(a) and a >= 0 for a in (line.avg10, line.avg60, line.avg300)
                )
                assert line.total_usec >= 0
    elif isinstance(value, int):
        assert value >= 0
    elif isinstance(value, float):
        assert value == UNLIMITED
    elif isinstance(value, tuple):
        assert all(isinstance(p, int) and p >= 0 for p in value)
        assert len(set(value)) == len(value)
    elif dataclasses.is_dataclass(value):
        for f in dataclasses.fields(value):
            v = getattr(value, f.name)
            if isinstance(v, int) and not isinstance(v, bool):
                assert v >= 0, f.name


def test_there_are_fixtures_to_fuzz() -> None:
    assert {name for name, _ in FIXTURE_FILES} >= {"cpu.stat", "cgroup.procs", "cpu.pressure"}


@pytest.mark.parametrize(("name", "data"), FIXTURE_FILES, ids=[n for n, _ in FIXTURE_FILES])
def test_every_prefix_of_every_fixture(name: str, data: bytes) -> None:
    parser = PARSERS[name]
    for end in range(len(data) + 1):
        outcome(parser, data[:end])


@given(data=KERNELISH)
@settings(max_examples=300)
def test_random_bytes_to_every_parser(data: bytes) -> None:
    for parser in DISTINCT_PARSERS:
        outcome(parser, data)


@given(seed=SEEDS, pos=st.integers(0, 10_000), junk=st.binary(min_size=1, max_size=8))
@settings(max_examples=300)
def test_fixture_with_bytes_replaced(seed: tuple[str, bytes], pos: int, junk: bytes) -> None:
    name, data = seed
    pos %= len(data) + 1
    outcome(PARSERS[name], data[:pos] + junk + data[pos + len(junk) :])


@given(seed=SEEDS, digits=st.integers(1, 6000))
@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
def test_huge_numbers_are_a_value_or_a_parse_error(seed: tuple[str, bytes], digits: int) -> None:
    name, data = seed
    huge = b"9" * digits
    mutated = re.sub(rb"\b[0-9]+$", huge, data, flags=re.MULTILINE)  # every trailing number
    outcome(PARSERS[name], re.sub(rb"[0-9]+", huge, data))  # every number, keys and avgs too
    result = outcome(PARSERS[name], mutated)
    if (
        digits <= 4000
        and data[:1].isdigit()
        and name in ("memory.current", "pids.current", "memory.max", "pids.max")
    ):
        assert result == int(huge)  # a bare huge number still reads back exactly


def test_huge_value_past_the_int_conversion_limit_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="too long"):
        parsers.parse_int(b"1" * 5000 + b"\n", "memory.current")
    with pytest.raises(ParseError, match="too long"):
        parsers.parse_cpu_stat(b"usage_usec " + b"1" * 5000 + b"\n")
    assert parsers.parse_cpu_stat(b"usage_usec " + b"1" * 4000 + b"\n").usage_usec == int(
        b"1" * 4000
    )


FLAT = st.dictionaries(
    st.sampled_from(["usage_usec", "user_usec", "oom_kill", "max", "anon", "file", "zz_new"]),
    st.integers(0, 2**128),
    min_size=1,
)


@given(first=FLAT, second=FLAT)
def test_duplicate_keys_last_wins(first: dict[str, int], second: dict[str, int]) -> None:
    text = "".join(f"{k} {v}\n" for k, v in [*first.items(), *second.items()]).encode()
    expected = {**first, **second}
    stat = parsers.parse_memory_stat(text)
    assert dict(stat.raw) == expected
    cpu = parsers.parse_cpu_stat(text)
    assert cpu.usage_usec == expected.get("usage_usec")
    assert parsers.parse_memory_events(text).oom_kill == expected.get("oom_kill")


@given(values=FLAT, tabs=st.booleans(), blank=st.booleans(), final_newline=st.booleans())
def test_whitespace_variants_parse_like_canonical(
    values: dict[str, int], tabs: bool, blank: bool, final_newline: bool
) -> None:
    canonical = "".join(f"{k} {v}\n" for k, v in values.items()).encode()
    sep = "\t  " if tabs else " "
    lines = [f"{k}{sep}{v}" for k, v in values.items()]
    if blank:
        lines.insert(len(lines) // 2, "   ")
    variant = ("\n".join(lines) + ("\n" if final_newline else "")).encode()
    assert parsers.parse_memory_stat(variant) == parsers.parse_memory_stat(canonical)
    assert parsers.parse_cpu_stat(variant) == parsers.parse_cpu_stat(canonical)


@given(seed=SEEDS, keep=st.lists(st.booleans(), min_size=200, max_size=200))
def test_missing_lines_leave_fields_none_and_keep_the_rest(
    seed: tuple[str, bytes], keep: list[bool]
) -> None:
    name, data = seed
    lines = data.splitlines(keepends=True)
    assume(len(lines) > 1)
    subset = b"".join(line for line, k in zip(lines, keep, strict=False) if k)
    full = outcome(PARSERS[name], data)
    part = outcome(PARSERS[name], subset)
    assert not isinstance(full, ParseError)
    if name in ("cpu.stat", "memory.events", "memory.events.local", "cgroup.stat"):
        assert not isinstance(part, ParseError)
        for field in type(full).__dataclass_fields__:
            assert getattr(part, field) in (None, getattr(full, field))


@given(pids=st.lists(st.integers(1, 4_194_304), max_size=50))
def test_procs_dedupes_keeping_first_position(pids: list[int]) -> None:
    text = "".join(f"{p}\n" for p in pids).encode()
    assert parsers.parse_procs(text) == tuple(dict.fromkeys(pids))


@given(quota=st.integers(1, 2**70) | st.just(-1), period=st.integers(1, 2**70))
def test_cpu_max_round_trips(quota: int, period: int) -> None:
    text = f"{'max' if quota < 0 else quota} {period}\n".encode()
    value = parsers.parse_cpu_max(text)
    assert value.quota_usec == (UNLIMITED if quota < 0 else quota)
    assert value.period_usec == period


FLAT_FILES = [
    (n, d)
    for n, d in FIXTURE_FILES
    if PARSERS[n] in (parsers.parse_cpu_stat, parsers.parse_memory_stat, parsers.parse_cgroup_stat)
    or PARSERS[n] in (parsers.parse_memory_events, parsers.parse_pids_events)
]


@pytest.mark.parametrize(("name", "data"), FLAT_FILES, ids=[n for n, _ in FLAT_FILES])
def test_fast_path_equals_slow_path_on_real_files(name: str, data: bytes) -> None:
    assert parsers._CANONICAL_PAIRS.fullmatch(data), "real files take the fast path"
    assert parsers._pairs(data, name, None) == parsers._pairs_slow(data, name, None)


PSI_FILES = [(n, d) for n, d in FIXTURE_FILES if n.endswith(".pressure")]


@pytest.mark.parametrize(("name", "data"), PSI_FILES, ids=[n for n, _ in PSI_FILES])
def test_pressure_fast_path_equals_slow_path_on_real_files(name: str, data: bytes) -> None:
    assert parsers._CANONICAL_PSI.fullmatch(data), "real files take the fast path"
    assert parsers.parse_pressure(data, name) == parsers._parse_pressure_slow(data, name)

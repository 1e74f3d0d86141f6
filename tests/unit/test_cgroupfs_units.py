"""Human units for limits."""

from __future__ import annotations

import math

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from cgroupfs.types import UNLIMITED
from cgroupfs.units import cpu_max_value, format_bytes, parse_bytes, parse_cpus

MIB = 1024**2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("512M", 512 * MIB),
        ("512MiB", 512 * MIB),
        ("512m", 512 * MIB),
        ("512Mi", 512 * MIB),
        ("512 MiB", 512 * MIB),
        ("1G", 1024**3),
        ("1.5G", 3 * 1024**3 // 2),
        ("4096", 4096),
        ("4096B", 4096),
        ("1K", 1024),
        ("2T", 2 * 1024**4),
        ("0", 0),
        (4096, 4096),
        ("max", UNLIMITED),
        ("MAX", UNLIMITED),
        ("infinity", UNLIMITED),
        ("0.1K", 102),
    ],
)
def test_parse_bytes(text: str | int, expected: float) -> None:
    assert parse_bytes(text) == expected


@pytest.mark.parametrize(
    "bad", ["512MB", "1kB", "1GB", "-1", -1, "1.5", "abc", "1X", "", "1e3", "1..5G", True, "M"]
)
def test_parse_bytes_refuses_with_example(bad: object) -> None:
    with pytest.raises(ValueError) as info:
        parse_bytes(bad)  # type: ignore[arg-type]
    msg = str(info.value)
    assert repr(bad) in msg
    assert '"512M"' in msg


def test_ambiguous_si_units_explained() -> None:
    with pytest.raises(ValueError, match="powers of 1000 or 1024"):
        parse_bytes("512MB")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.5", 0.5),
        ("1.5", 1.5),
        ("2", 2.0),
        (2, 2.0),
        (0.25, 0.25),
        ("150%", 1.5),
        ("50 %", 0.5),
        ("500m", 0.5),
        ("max", UNLIMITED),
    ],
)
def test_parse_cpus(text: str | float, expected: float) -> None:
    assert parse_cpus(text) == pytest.approx(expected)


@pytest.mark.parametrize("bad", ["x", "0", "-1", "nan", "", "%", "sNaN", 0, -0.5, True])
def test_parse_cpus_refuses(bad: object) -> None:
    with pytest.raises(ValueError) as info:
        parse_cpus(bad)  # type: ignore[arg-type]
    assert repr(bad) in str(info.value)
    assert '"0.5"' in str(info.value)


def test_cpu_max_value() -> None:
    assert cpu_max_value(0.5) == "50000 100000"
    assert cpu_max_value(2) == "200000 100000"
    assert cpu_max_value(1.5, 50000) == "75000 50000"
    assert cpu_max_value(None) == "max 100000"
    assert cpu_max_value(math.inf) == "max 100000"
    for bad_cores in (0, -1, 0.001):
        with pytest.raises(ValueError):
            cpu_max_value(bad_cores)
    for bad_period in (999, 1_000_001):
        with pytest.raises(ValueError, match="100000"):
            cpu_max_value(1, bad_period)


def test_format_bytes() -> None:
    assert format_bytes(512 * MIB) == "512 MiB"
    assert format_bytes(3 * 1024**3 // 2) == "1.5 GiB"
    assert format_bytes(100) == "100 B"
    assert format_bytes(UNLIMITED) == "max"
    assert format_bytes(None) == "-"
    assert format_bytes(123456789) == "117 MiB"


@given(st.integers(min_value=0, max_value=2**62))
@example(2**54 - 1)  # a float n * 10 / scale rounded this up to "16 PiB"
def test_format_bytes_reads_back_not_above(n: int) -> None:
    back = parse_bytes(format_bytes(n))
    assert back <= n
    assert back >= n * 0.9 - 1  # one decimal (or whole units from 100 up), rounded down


@given(st.text(max_size=20))
def test_parse_bytes_never_crashes_otherwise(text: str) -> None:
    try:
        v = parse_bytes(text)
    except ValueError:
        return
    assert v == UNLIMITED or (isinstance(v, int) and v >= 0)


@given(st.text(max_size=20))
def test_parse_cpus_never_crashes_otherwise(text: str) -> None:
    try:
        v = parse_cpus(text)
    except ValueError:
        return
    assert v > 0

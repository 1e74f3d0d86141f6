"""-p / --network-rate parsing, and the host-port checks."""

from __future__ import annotations

import socket

import pytest

from workloads.network.errors import NetworkError
from workloads.network.ports import PortMapping, check_free, parse_publish, parse_rate


@pytest.mark.parametrize(
    ("spec", "want"),
    [
        ("8080:80", PortMapping(8080, 80, "tcp", "")),
        ("8080:80/udp", PortMapping(8080, 80, "udp", "")),
        ("127.0.0.1:8080:80", PortMapping(8080, 80, "tcp", "127.0.0.1")),
        ("[::1]:8080:80/tcp", PortMapping(8080, 80, "tcp", "::1")),
        ("80", PortMapping(0, 80, "tcp", "")),
        (":80", PortMapping(0, 80, "tcp", "")),
        ("10.0.0.1::53/udp", PortMapping(0, 53, "udp", "10.0.0.1")),
    ],
)
def test_publish_forms(spec: str, want: PortMapping) -> None:
    assert parse_publish(spec) == want


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("99999:80", "host port '99999' is not in 1-65535"),
        ("8080:0", "container port '0'"),
        ("8080:80/sctp", "tcp or udp"),
        ("1:2:3:4", "expected [IP:]HOST:CONTAINER"),
        ("host:8080:80", "not an IP address"),
        ("[::1:8080:80", "[IPv6]"),
        ("x:80", "host port 'x'"),
    ],
)
def test_publish_errors_are_one_line(spec: str, needle: str) -> None:
    with pytest.raises(NetworkError) as e:
        parse_publish(spec)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_cni_entry_is_portmaps_runtime_config() -> None:
    m = parse_publish("127.0.0.1:8080:80/udp")
    assert m.cni() == {
        "hostPort": 8080,
        "containerPort": 80,
        "protocol": "udp",
        "hostIP": "127.0.0.1",
    }
    assert m.describe() == "80/udp -> 127.0.0.1:8080"
    assert parse_publish("8080:80").describe() == "80/tcp -> 0.0.0.0:8080"


@pytest.mark.parametrize(
    ("text", "bps"),
    [("1mbit", 1_000_000), ("500kbit", 500_000), ("2.5M", 2_500_000), ("1gbit", 10**9)],
)
def test_rates(text: str, bps: int) -> None:
    bw = parse_rate(text)
    assert bw.rate_bps == bps
    assert bw.burst_bits >= 131_072 and bw.burst_bits >= bps // 10
    assert bw.cni()["ingressRate"] == bps and bw.cni()["egressBurst"] == bw.burst_bits


@pytest.mark.parametrize("text", ["fast", "1mbps", "-1mbit", "1kbit", ""])
def test_bad_rates(text: str) -> None:
    with pytest.raises(NetworkError, match="--network-rate"):
        parse_rate(text)


def test_busy_host_port_is_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(NetworkError, match=f"host port {port}/tcp is already in use"):
            check_free(PortMapping(port, 80, "tcp", "127.0.0.1"))
    check_free(PortMapping(port, 80, "tcp", "127.0.0.1"))  # free again once closed


def test_a_foreign_address_is_refused() -> None:
    with pytest.raises(NetworkError, match="not an address of this host"):
        check_free(PortMapping(8080, 80, "tcp", "192.0.2.1"))

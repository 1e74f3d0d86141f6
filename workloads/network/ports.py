"""Published ports (-p [IP:]HOST:CONTAINER[/tcp|udp], -P) and --network-rate, parsed and checked."""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import re
import socket
from dataclasses import dataclass

from workloads.network.errors import NetworkError

PROTOCOLS = ("tcp", "udp")
_RATE_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*(bit|kbit|mbit|gbit|k|m|g)?$", re.IGNORECASE)
_RATE_UNITS = {"": 1, "bit": 1, "k": 10**3, "kbit": 10**3, "m": 10**6, "mbit": 10**6}
_RATE_UNITS |= {"g": 10**9, "gbit": 10**9}
MIN_RATE_BPS = 8_000  # tc refuses rates near zero; 1 kB/s is the useful floor
MIN_BURST_BITS = 131_072  # 16 KiB: above one MTU-sized frame, small against a second of 1mbit


@dataclass(frozen=True)
class PortMapping:
    """One published port; host_port 0 until an ephemeral one is picked (-p CONTAINER, -P)."""

    host_port: int
    container_port: int
    protocol: str = "tcp"
    host_ip: str = ""  # "" binds every host address, as docker's default 0.0.0.0

    def cni(self) -> dict[str, object]:
        """The portmap plugin's runtimeConfig.portMappings entry."""
        return {
            "hostPort": self.host_port,
            "containerPort": self.container_port,
            "protocol": self.protocol,
            "hostIP": self.host_ip,
        }

    def describe(self) -> str:
        host = f"[{self.host_ip}]" if ":" in self.host_ip else (self.host_ip or "0.0.0.0")
        return f"{self.container_port}/{self.protocol} -> {host}:{self.host_port}"


@dataclass(frozen=True)
class Bandwidth:
    """--network-rate: the bandwidth plugin's rates and bursts, in bits (per second)."""

    rate_bps: int
    burst_bits: int

    def cni(self) -> dict[str, int]:
        return {
            "ingressRate": self.rate_bps,
            "ingressBurst": self.burst_bits,
            "egressRate": self.rate_bps,
            "egressBurst": self.burst_bits,
        }


def _port(text: str, what: str, spec: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise NetworkError(f"invalid -p {spec!r}: {what} port {text!r} is not in 1-65535")
    return int(text)


def parse_publish(spec: str) -> PortMapping:
    """docker's -p: [IP:]HOST:CONTAINER[/PROTO], or CONTAINER[/PROTO] for an ephemeral port."""
    body, _, proto = spec.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in PROTOCOLS:
        raise NetworkError(f"invalid -p {spec!r}: protocol must be tcp or udp")
    host_ip = ""
    if body.startswith("["):  # [IPv6]:HOST:CONTAINER
        end = body.find("]")
        if end < 0 or body[end + 1 : end + 2] != ":":
            raise NetworkError(f"invalid -p {spec!r}: expected [IPv6]:HOST:CONTAINER")
        host_ip, body = body[1:end], body[end + 2 :]
        parts = body.split(":")
    else:
        parts = body.split(":")
        if len(parts) == 3:
            host_ip, parts = parts[0], parts[1:]
    if len(parts) == 1:
        return PortMapping(0, _port(parts[0], "container", spec), proto, _ip(host_ip, spec))
    if len(parts) != 2:
        raise NetworkError(f"invalid -p {spec!r}: expected [IP:]HOST:CONTAINER[/tcp|udp]")
    host = 0 if parts[0] == "" else _port(parts[0], "host", spec)
    return PortMapping(host, _port(parts[1], "container", spec), proto, _ip(host_ip, spec))


def exposed(expose: tuple[str, ...], published: list[PortMapping]) -> list[PortMapping]:
    """-P: each exposed port (PORT[/PROTO]) on an ephemeral host port, once; a port that -p
    already publishes keeps only its -p mapping (docker's rule)."""
    seen = {(m.container_port, m.protocol) for m in published}
    out = []
    for text in expose:
        port, _, proto = text.partition("/")
        if not port.isdigit() or (proto or "tcp").lower() not in PROTOCOLS:
            raise NetworkError(f"-P: cannot publish the exposed port {text!r} (PORT[/tcp|udp])")
        m = parse_publish(text)
        if (m.container_port, m.protocol) not in seen:
            seen.add((m.container_port, m.protocol))
            out.append(m)
    return out


def _ip(text: str, spec: str) -> str:
    if not text:
        return ""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise NetworkError(f"invalid -p {spec!r}: {text!r} is not an IP address") from None


def parse_rate(text: str) -> Bandwidth:
    """--network-rate 1mbit: bits per second (tc's units, 1000-based), both directions."""
    m = _RATE_RE.match(text.strip())
    if not m:
        raise NetworkError(
            f"invalid --network-rate {text!r}: expected a rate such as 500kbit, 1mbit or 1gbit"
        )
    bps = int(float(m.group(1)) * _RATE_UNITS[(m.group(2) or "").lower()])
    if bps < MIN_RATE_BPS:
        raise NetworkError(f"invalid --network-rate {text!r}: at least 8kbit")
    return Bandwidth(bps, max(bps // 10, MIN_BURST_BITS))


def _family(ip: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in ip else socket.AF_INET


def check_free(m: PortMapping) -> None:
    """The host port must be free: a process listening on it would silently lose its traffic
    to the DNAT rule (docker refuses such a run too)."""
    kind = socket.SOCK_STREAM if m.protocol == "tcp" else socket.SOCK_DGRAM
    ip = m.host_ip or "0.0.0.0"
    with socket.socket(_family(ip), kind) as s:
        try:
            s.bind((ip, m.host_port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise NetworkError(
                    f"host port {m.host_port}/{m.protocol} is already in use"
                ) from None
            if e.errno == errno.EADDRNOTAVAIL:
                raise NetworkError(f"-p: {m.host_ip} is not an address of this host") from None
            raise NetworkError(f"-p {m.describe()}: cannot check the port: {e.strerror}") from None


def pick_ephemeral(protocol: str, host_ip: str = "") -> int:
    """A free host port from the kernel's ephemeral range (docker's -P does the same)."""
    kind = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
    ip = host_ip or "0.0.0.0"
    with socket.socket(_family(ip), kind) as s, contextlib.suppress(OSError):
        s.bind((ip, 0))
        port: int = s.getsockname()[1]
        return port
    raise NetworkError(f"no free {protocol} port on the host")

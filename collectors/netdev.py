"""Network I/O of a network namespace, as `docker stats` shows it: /proc/<pid>/net/dev of any
process inside (the file shows the reader's view of that pid's netns), summed over the
interfaces but lo. Counters only; rates are taken by the caller like the cgroup ones.

Not read under a cgroup root (procfs), so outside cgroupfs by design."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NetIO:
    rx_bytes: int = 0
    rx_packets: int = 0
    rx_errors: int = 0
    rx_dropped: int = 0
    tx_bytes: int = 0
    tx_packets: int = 0
    tx_errors: int = 0
    tx_dropped: int = 0

    def __add__(self, o: NetIO) -> NetIO:
        return NetIO(*(a + b for a, b in zip(_fields(self), _fields(o), strict=True)))


def _fields(n: NetIO) -> tuple[int, ...]:
    return (
        n.rx_bytes,
        n.rx_packets,
        n.rx_errors,
        n.rx_dropped,
        n.tx_bytes,
        n.tx_packets,
        n.tx_errors,
        n.tx_dropped,
    )


def parse_net_dev(text: str) -> dict[str, NetIO]:
    """/proc/net/dev: two header lines, then "iface: rx(8 columns) tx(8 columns)". Receive:
    bytes packets errs drop fifo frame compressed multicast; transmit: bytes packets errs drop
    fifo colls carrier compressed."""
    out: dict[str, NetIO] = {}
    for line in text.splitlines()[2:]:
        name, sep, rest = line.partition(":")
        cols = rest.split()
        if not sep or len(cols) < 16 or not all(c.isdigit() for c in cols[:16]):
            continue
        v = [int(c) for c in cols[:16]]
        out[name.strip()] = NetIO(v[0], v[1], v[2], v[3], v[8], v[9], v[10], v[11])
    return out


def total(ifaces: dict[str, NetIO]) -> NetIO:
    """Every interface but loopback (docker stats counts the same)."""
    acc = NetIO()
    for name, io in ifaces.items():
        if name != "lo":
            acc = acc + io
    return acc


def read_pid(pid: int) -> NetIO | None:
    """The namespace of ``pid``; None once it is gone (never zeros for "unavailable")."""
    try:
        with open(f"/proc/{pid}/net/dev") as f:
            return total(parse_net_dev(f.read()))
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None

"""Networks (the default ``bridge`` and user networks) and the CNI configuration lists made from
them: bridge + host-local IPAM, firewall, portmap when ports are published, bandwidth when a
rate is set. Pure: no files, no plugins run here."""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from workloads.network.cni import NetConfList
from workloads.network.errors import NetworkError
from workloads.network.ports import Bandwidth, PortMapping

DEFAULT_NETWORK = "bridge"
DEFAULT_SUBNET = "10.99.0.0/16"
DEFAULT_BRIDGE = "pystats0"
RESERVED = ("none", "host", "default")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
# User networks get a /24 from this pool unless --subnet is given (docker: 172.17-31, /16s).
AUTO_POOL = ipaddress.ip_network("10.100.0.0/16")


@dataclass(frozen=True)
class NetworkDef:
    name: str
    subnet: str
    gateway: str
    bridge: str
    created_at: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: object) -> NetworkDef:
        if not isinstance(d, dict):
            raise ValueError("a network record must be an object")
        return cls(
            name=str(d["name"]),
            subnet=str(d["subnet"]),
            gateway=str(d["gateway"]),
            bridge=str(d["bridge"]),
            created_at=float(d.get("created_at", 0.0)),
        )


def check_name(name: str) -> str:
    if not NAME_RE.match(name) or name in RESERVED:
        raise NetworkError(
            f"invalid network name {name!r}: use 1-63 letters, digits, '_', '.' or '-'"
            f" (not {', '.join(RESERVED)})"
        )
    return name


def bridge_name(name: str) -> str:
    """A Linux interface name (at most 15 bytes) that no other network of ours has."""
    if name == DEFAULT_NETWORK:
        return DEFAULT_BRIDGE
    return "pst-" + hashlib.sha256(name.encode()).hexdigest()[:10]


def parse_subnet(text: str) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as e:
        raise NetworkError(f"invalid --subnet {text!r}: {e}") from None
    if not isinstance(net, ipaddress.IPv4Network):
        raise NetworkError(f"invalid --subnet {text!r}: only IPv4 subnets are supported")
    if net.prefixlen > 29:
        raise NetworkError(f"invalid --subnet {text!r}: at most /29 (room for workloads)")
    return net


def make_network(
    name: str, subnet: str | None, taken: Iterable[str], created_at: float
) -> NetworkDef:
    """A network's record: ``subnet`` checked against ``taken`` (other networks' and the
    host's routes), or the first free /24 of the pool."""
    check_name(name)
    used = [ipaddress.ip_network(t, strict=False) for t in taken]
    if subnet is None:
        net = next(
            (s for s in AUTO_POOL.subnets(new_prefix=24) if not any(s.overlaps(u) for u in used)),
            None,
        )
        if net is None:
            raise NetworkError(f"no free /24 left in {AUTO_POOL}: give --subnet")
    else:
        net = parse_subnet(subnet)
        clash = next((u for u in used if net.overlaps(u)), None)
        if clash is not None:
            raise NetworkError(f"subnet {net} overlaps {clash}, already in use")
    gateway = str(next(net.hosts()))
    return NetworkDef(name, str(net), gateway, bridge_name(name), created_at)


def conflist(
    net: NetworkDef,
    ipam_dir: str,
    ports: tuple[PortMapping, ...] = (),
    bandwidth: Bandwidth | None = None,
) -> NetConfList:
    """The plugin chain of one attachment. portmap and bandwidth are in the list only when
    used, so DEL (built from the same record) runs exactly what ADD ran."""
    plugins: list[dict[str, object]] = [
        {
            "type": "bridge",
            "bridge": net.bridge,
            "isGateway": True,
            "ipMasq": True,  # outbound NAT
            "hairpinMode": True,  # a workload reaches itself through a published port
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": net.subnet, "gateway": net.gateway}]],
                "routes": [{"dst": "0.0.0.0/0"}],
                "dataDir": ipam_dir,
            },
        },
        # Accepts the workloads' forwarded traffic even where FORWARD's policy is DROP.
        {"type": "firewall", "backend": "iptables"},
    ]
    runtime: dict[str, object] = {}
    if ports:
        plugins.append({"type": "portmap", "capabilities": {"portMappings": True}, "snat": True})
        runtime["portMappings"] = [p.cni() for p in ports]
    if bandwidth is not None:
        plugins.append({"type": "bandwidth", "capabilities": {"bandwidth": True}})
        runtime["bandwidth"] = bandwidth.cni()
    return NetConfList(f"pystats-{net.name}", tuple(plugins), runtime)


def loopback_conflist() -> NetConfList:
    """lo up in a new netns (the runtime does it itself only for --net none)."""
    return NetConfList("pystats-loopback", ({"type": "loopback"},))

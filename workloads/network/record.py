"""The typed records of the network store: a workload's attachment and what was asked for it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from workloads.network.cni import Result, parse_result
from workloads.network.ports import Bandwidth, PortMapping


@dataclass(frozen=True)
class NetRequest:
    """What a run asks for (the API's ``ports``, ``publish_all``, ``expose``, ``network_rate``),
    as the user wrote it; parsed and checked by NetworkService.prepare."""

    ports: tuple[str, ...] = ()
    publish_all: bool = False  # -P: each exposed port to an ephemeral host port
    expose: tuple[str, ...] = ()  # --expose, then the image's ExposedPorts (with_image_ports)
    network_rate: str | None = None

    def empty(self) -> bool:
        return not (self.ports or self.publish_all or self.expose or self.network_rate)

    def with_image_ports(self, exposed: Iterable[str]) -> NetRequest:
        """-P publishes the image's ExposedPorts too (docker): they follow --expose's."""
        return replace(self, expose=(*self.expose, *(p for p in exposed if p not in self.expose)))


@dataclass(frozen=True)
class Attachment:
    """One workload on one network. ``result`` is the last ADD's (None while detached): DEL
    gets it back as prevResult, and the addresses shown come from it."""

    workload: str
    network: str
    container_id: str
    netns: str
    hostname: str
    ports: tuple[PortMapping, ...] = ()
    bandwidth: Bandwidth | None = None
    result: Result | None = None
    attached_at: float | None = None

    @property
    def ip(self) -> str | None:
        if self.result is None:
            return None
        ips = self.result.workload_ips()
        return ips[0].ip if ips else None

    def to_json(self) -> dict[str, Any]:
        return {
            "workload": self.workload,
            "network": self.network,
            "container_id": self.container_id,
            "netns": self.netns,
            "hostname": self.hostname,
            "ports": [p.__dict__ for p in self.ports],
            "bandwidth": None if self.bandwidth is None else self.bandwidth.__dict__,
            "result": None if self.result is None else self.result.raw,
            "attached_at": self.attached_at,
        }

    @classmethod
    def from_json(cls, d: object) -> Attachment:
        if not isinstance(d, dict):
            raise ValueError("an attachment record must be an object")
        bw = d.get("bandwidth")
        raw = d.get("result")
        return cls(
            workload=str(d["workload"]),
            network=str(d["network"]),
            container_id=str(d["container_id"]),
            netns=str(d["netns"]),
            hostname=str(d["hostname"]),
            ports=tuple(
                PortMapping(
                    int(p["host_port"]),
                    int(p["container_port"]),
                    str(p["protocol"]),
                    str(p["host_ip"]),
                )
                for p in d.get("ports") or []
            ),
            bandwidth=None if bw is None else Bandwidth(int(bw["rate_bps"]), int(bw["burst_bits"])),
            result=None if raw is None else parse_result(str(raw)),
            attached_at=None if d.get("attached_at") is None else float(d["attached_at"]),
        )

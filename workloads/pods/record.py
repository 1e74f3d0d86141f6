"""The pod's durable record: <state>/pods/<name>/pod.json (written atomically)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from workloads.runtime.spec import Limits

INFRA_SUFFIX = "-infra"
NS_KINDS = ("net", "ipc", "uts")  # podman's default shared set


@dataclass(frozen=True)
class PodRecord:
    name: str
    hostname: str
    created_at: float
    limits: Limits = field(default_factory=Limits)
    network: str | None = None  # a CNI network the infra is on (-p); None: loopback only
    ports: tuple[str, ...] = ()  # -p as the user wrote them (the network service parses)

    @property
    def kinds(self) -> tuple[str, ...]:
        """The namespaces kept as the pod's files: on a CNI network the netns is the network
        service's (made and configured at each infra run), so not among them."""
        return tuple(k for k in NS_KINDS if k != "net" or self.network is None)

    @property
    def infra(self) -> str:
        """The infra workload's name (podman names its infra container alike)."""
        return self.name + INFRA_SUFFIX

    def to_json(self) -> dict[str, Any]:
        lim = self.limits
        return {
            "name": self.name,
            "hostname": self.hostname,
            "created_at": self.created_at,
            "limits": {"memory_bytes": lim.memory_bytes, "cpus": lim.cpus, "pids": lim.pids},
            "network": self.network,
            "ports": list(self.ports),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> PodRecord:
        lim = d.get("limits") or {}
        mem, cpus, pids = lim.get("memory_bytes"), lim.get("cpus"), lim.get("pids")
        return cls(
            name=str(d["name"]),
            hostname=str(d["hostname"]),
            created_at=float(d["created_at"]),
            limits=Limits(
                memory_bytes=None if mem is None else int(mem),
                cpus=None if cpus is None else float(cpus),
                pids=None if pids is None else int(pids),
            ),
            network=None if d.get("network") is None else str(d["network"]),
            ports=tuple(str(p) for p in d.get("ports") or ()),
        )

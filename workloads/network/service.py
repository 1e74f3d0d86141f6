"""The network service: the store of networks and attachments under the agent's state dir,
attach (netns + CNI ADD + /etc files) before a run, detach (CNI DEL + netns gone) after it,
and the reconcile at start.

    <state>/network/networks/<name>.json   a network (NetworkDef)
    <state>/network/attach/<workload>.json a workload's attachment (Attachment)
    <state>/network/netns/<workload>        its network namespace (a bind mount of nsfs)
    <state>/network/files/<workload>/       its hosts, resolv.conf, hostname (bound into it)
    <state>/network/ipam/                   host-local's allocations (the plugin's own)

Everything a workload holds on the host (veth, address, NAT and port rules, tc qdiscs) is the
plugins' and is released by DEL with the same configuration list as the ADD (both are built
from the attachment record), so a DEL after an agent crash removes exactly what was added.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import logging
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterable

from workloads.network import cni, config, files, netns, ports
from workloads.network.config import DEFAULT_NETWORK, NetworkDef
from workloads.network.errors import NetworkError, NetworkNotFound
from workloads.network.record import Attachment, NetRequest
from workloads.runtime.mounts import Bind, MountOpts
from workloads.runtime.spec import WorkloadSpec
from workloads.supervisor import state

log = logging.getLogger(__name__)
HOST_MODES = ("none", "host")
ETC_FILES = {"hosts": "/etc/hosts", "resolv.conf": "/etc/resolv.conf", "hostname": "/etc/hostname"}


def uses_cni(net: str) -> bool:
    """Whether a --net value is a CNI network (bridge or a user network)."""
    return net not in HOST_MODES and not net.startswith("container:")


def host_routes(exclude_ifaces: Iterable[str] = ()) -> list[str]:
    """IPv4 subnets the host routes already (a new network must not overlap them)."""
    skip = set(exclude_ifaces)
    out = []
    try:
        with open("/proc/net/route") as f:
            next(f, None)
            for line in f:
                w = line.split()
                if len(w) < 8 or w[0] in skip or int(w[1], 16) == 0:
                    continue
                dest = ipaddress.IPv4Address(int(w[1], 16).to_bytes(4, "little"))
                mask = bin(int(w[7], 16)).count("1")
                out.append(str(ipaddress.ip_network(f"{dest}/{mask}", strict=False)))
    except OSError:
        pass
    return out


class NetworkService:
    def __init__(
        self,
        state_dir: str,
        *,
        default_subnet: str = config.DEFAULT_SUBNET,
        plugin_dirs: tuple[str, ...] = cni.PLUGIN_DIRS,
    ) -> None:
        self.dir = os.path.join(state_dir, "network")
        self.default_subnet = default_subnet
        self.plugin_dirs = plugin_dirs
        self._lock = threading.RLock()  # attach/detach/hosts run in worker threads

    # ---- paths ------------------------------------------------------------------------------

    def _p(self, *parts: str) -> str:
        return os.path.join(self.dir, *parts)

    def netns_path(self, workload: str) -> str:
        return self._p("netns", workload)

    def files_dir(self, workload: str) -> str:
        return self._p("files", workload)

    # ---- networks ---------------------------------------------------------------------------

    def networks(self) -> list[NetworkDef]:
        out = []
        with contextlib.suppress(FileNotFoundError):
            for fn in sorted(os.listdir(self._p("networks"))):
                if fn.endswith(".json"):
                    with contextlib.suppress(NetworkError):
                        out.append(self.get(fn[: -len(".json")]))
        return out

    def get(self, name: str) -> NetworkDef:
        path = self._p("networks", f"{name}.json")
        try:
            return NetworkDef.from_json(state.read_json(path))
        except FileNotFoundError:
            if name == DEFAULT_NETWORK:
                return self._create(DEFAULT_NETWORK, self.default_subnet)
            raise NetworkNotFound(
                f"no such network: {name!r} (pystats network ls; pystats network create)"
            ) from None
        except (state.CorruptRecord, KeyError, TypeError, ValueError) as e:
            raise NetworkError(f"network {name!r}: unreadable record {path}: {e}") from None

    def create(self, name: str, subnet: str | None = None) -> NetworkDef:
        config.check_name(name)
        with self._lock:
            if os.path.exists(self._p("networks", f"{name}.json")):
                raise NetworkError(f"a network named {name!r} already exists")
            return self._create(name, subnet)

    def _create(self, name: str, subnet: str | None) -> NetworkDef:
        others = [n for n in self._listed() if n.name != name]
        taken = [n.subnet for n in others] + host_routes(n.bridge for n in others)
        if name == DEFAULT_NETWORK:  # its own bridge may be up already (a lost record)
            taken = [t for t in taken if t not in host_routes_of(config.DEFAULT_BRIDGE)]
        net = config.make_network(name, subnet, taken, time.time())
        os.makedirs(self._p("networks"), mode=0o700, exist_ok=True)
        state.write_json_atomic(self._p("networks", f"{name}.json"), net.to_json())
        return net

    def _listed(self) -> list[NetworkDef]:
        out = []
        with contextlib.suppress(FileNotFoundError):
            for fn in os.listdir(self._p("networks")):
                with contextlib.suppress(Exception):
                    out.append(NetworkDef.from_json(state.read_json(self._p("networks", fn))))
        return out

    def remove(self, name: str) -> None:
        """A network with no workloads on it; its bridge is deleted (the bridge plugin never
        deletes one)."""
        net = self.get(name)
        with self._lock:
            users = [a.workload for a in self.attachments() if a.network == name]
            if users:
                raise NetworkError(
                    f"network {name!r} is in use by {', '.join(sorted(users))} (pystats rm them)"
                )
            _delete_link(net.bridge)
            os.unlink(self._p("networks", f"{name}.json"))
            shutil.rmtree(self._p("ipam", f"pystats-{name}"), ignore_errors=True)

    # ---- attachments ------------------------------------------------------------------------

    def attachments(self) -> list[Attachment]:
        out = []
        with contextlib.suppress(FileNotFoundError):
            for fn in sorted(os.listdir(self._p("attach"))):
                a = self.attachment(fn.removesuffix(".json"))
                if a is not None:
                    out.append(a)
        return out

    def attachment(self, workload: str) -> Attachment | None:
        path = self._p("attach", f"{workload}.json")
        try:
            return Attachment.from_json(state.read_json(path))
        except FileNotFoundError:
            return None
        except (state.CorruptRecord, KeyError, TypeError, ValueError) as e:
            log.error("network attachment of %s unreadable (%s): set aside", workload, e)
            with contextlib.suppress(OSError):
                state.set_aside(path)
            return None

    def _save(self, a: Attachment) -> None:
        os.makedirs(self._p("attach"), mode=0o700, exist_ok=True)
        state.write_json_atomic(self._p("attach", f"{a.workload}.json"), a.to_json())

    def _mappings(self, req: NetRequest, workload: str) -> tuple[ports.PortMapping, ...]:
        wanted = [ports.parse_publish(p) for p in req.ports]
        if req.publish_all:
            wanted += ports.exposed(req.expose, wanted)
        taken = {
            (p.host_port, p.protocol)
            for a in self.attachments()
            if a.workload != workload
            for p in a.ports
        }
        out = []
        for m in wanted:
            if m.host_port == 0:
                m = dataclasses.replace(m, host_port=ports.pick_ephemeral(m.protocol, m.host_ip))
            if (m.host_port, m.protocol) in taken:
                raise NetworkError(
                    f"host port {m.host_port}/{m.protocol} is already published by another workload"
                )
            ports.check_free(m)
            taken.add((m.host_port, m.protocol))
            out.append(m)
        return tuple(out)

    def prepare(self, spec: WorkloadSpec, req: NetRequest | None) -> WorkloadSpec:
        """At create: check the network and the request, record the attachment (not yet
        attached), and return the spec with the netns to join and the /etc files bound.
        Nothing is recorded when a check fails."""
        req = req or NetRequest()
        if not uses_cni(spec.net):
            if not req.empty():
                raise NetworkError(
                    f"-p, -P and --network-rate need a network (--net bridge), not --net {spec.net}"
                )
            return spec
        with self._lock:
            net = self.get(spec.net)
            mappings = self._mappings(req, spec.name)
            bw = None if req.network_rate is None else ports.parse_rate(req.network_rate)
            hostname = spec.hostname or spec.name
            a = Attachment(
                workload=spec.name,
                network=net.name,
                container_id=f"pystats-{spec.name}",
                netns=self.netns_path(spec.name),
                hostname=hostname,
                ports=mappings,
                bandwidth=bw,
            )
            files.prepare(self.files_dir(spec.name), hostname)
            self._save(a)
        user_targets = {b.target for b in spec.mounts.binds}
        binds = tuple(
            Bind(os.path.join(self.files_dir(spec.name), fn), target, readonly=False)
            for fn, target in ETC_FILES.items()
            if target not in user_targets
        )
        mounts = MountOpts(
            binds=(*spec.mounts.binds, *binds),
            tmpfs=spec.mounts.tmpfs,
            read_only=spec.mounts.read_only,
            devices=spec.mounts.devices,
        )
        return dataclasses.replace(spec, netns=a.netns, mounts=mounts)

    def _invocation(self, a: Attachment, netns_path: str) -> cni.Invocation:
        return cni.Invocation(a.container_id, netns_path, "eth0", "", self.plugin_dirs)

    def _conf(self, a: Attachment, net: NetworkDef) -> cni.NetConfList:
        return config.conflist(net, self._p("ipam"), a.ports, a.bandwidth)

    def attach(self, spec: WorkloadSpec) -> Attachment | None:
        """Before a run: a fresh netns, loopback up, the network's plugins ADDed, /etc/hosts
        written (and the peers' rewritten). All or nothing: a failure DELs what was added."""
        if spec.netns is None or not uses_cni(spec.net):  # container:NAME, a pod: joined only
            return None
        with self._lock:
            a = self.attachment(spec.name)
            if a is None:
                raise NetworkError(f"workload {spec.name!r} has no network record")
            self._detach(a)  # what an earlier run left (a crash between runs)
            net = self.get(a.network)
            netns.create(a.netns)
            try:
                lo_inv = cni.Invocation(a.container_id, a.netns, "lo", "", self.plugin_dirs)
                cni.add(config.loopback_conflist(), lo_inv)
                result = cni.add(self._conf(a, net), self._invocation(a, a.netns))
            except BaseException:
                netns.remove(a.netns)
                raise
            a = dataclasses.replace(a, result=result, attached_at=time.time())
            self._save(a)
            self._write_hosts(a.network)
            return a

    def _detach(self, a: Attachment) -> list[str]:
        """CNI DEL (with the ADD's result) and the netns removed; the record kept without a
        result. Returns the plugins' errors (logged: a DEL must never block a removal)."""
        errors: list[str] = []
        if a.result is None and not os.path.exists(a.netns):
            return errors
        try:
            net = self.get(a.network)
        except NetworkError as e:
            errors.append(str(e))
        else:
            ns = a.netns if os.path.exists(a.netns) else ""
            errors += [
                str(err)
                for err in cni.delete(self._conf(a, net), self._invocation(a, ns), a.result)
            ]
        netns.remove(a.netns)
        if a.result is not None:
            self._save(dataclasses.replace(a, result=None, attached_at=None))
        for msg in errors:
            log.warning("network of workload %s: %s", a.workload, msg)
        return errors

    def detach(self, workload: str) -> None:
        """After a run (stop, exit, failed start): the network released, the record kept."""
        with self._lock:
            a = self.attachment(workload)
            if a is not None:
                self._detach(a)
                self._write_hosts(a.network)

    def release(self, workload: str) -> None:
        """At rm (or a failed create): detached, and its record and files removed."""
        with self._lock:
            a = self.attachment(workload)
            if a is not None:
                self._detach(a)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._p("attach", f"{workload}.json"))
                self._write_hosts(a.network)
            shutil.rmtree(self.files_dir(workload), ignore_errors=True)

    def _write_hosts(self, network: str) -> None:
        """Every workload on ``network`` gets the current name -> address table."""
        on_net = [a for a in self.attachments() if a.network == network]
        peers = [(a.ip, a.hostname) for a in on_net if a.ip is not None]
        peers += [
            (a.ip, a.workload) for a in on_net if a.ip is not None and a.workload != a.hostname
        ]
        for a in on_net:
            path = os.path.join(self.files_dir(a.workload), "hosts")
            own = None if a.ip is None else (a.ip, a.hostname)
            with contextlib.suppress(OSError):
                files.write_in_place(path, files.hosts(own, peers))

    def describe(self, workload: str) -> dict[str, object] | None:
        """For inspect and `pystats port`: network, address, gateway, MAC, published ports."""
        a = self.attachment(workload)
        if a is None:
            return None
        ips = a.result.workload_ips() if a.result is not None else []
        return {
            "network": a.network,
            "ip_address": ips[0].address if ips else None,
            "gateway": ips[0].gateway if ips else None,
            "mac_address": a.result.sandbox_mac() if a.result is not None else None,
            "netns": a.netns if a.result is not None else None,
            "ports": [p.__dict__ for p in a.ports],
            "rate_bps": None if a.bandwidth is None else a.bandwidth.rate_bps,
        }

    def reconcile(self, known: set[str], running: set[str]) -> list[str]:
        """At agent start: attachments of workloads that no longer exist are released, those
        of workloads not running are detached; running ones are kept as they are (their
        netns, veth, address and port rules survived the agent). Returns what was done."""
        notes = []
        with self._lock:
            for a in self.attachments():
                if a.workload not in known:
                    self.release(a.workload)
                    notes.append(f"released the network of removed workload {a.workload}")
                elif a.workload not in running and (
                    a.result is not None or os.path.exists(a.netns)
                ):
                    self.detach(a.workload)
                    notes.append(f"released the network of stopped workload {a.workload}")
            with contextlib.suppress(FileNotFoundError):
                for name in os.listdir(self._p("netns")):
                    if self.attachment(name) is None:
                        netns.remove(self.netns_path(name))
                        notes.append(f"removed the orphan network namespace of {name}")
        return notes


def host_routes_of(iface: str) -> list[str]:
    every = set(host_routes())
    return sorted(every - set(host_routes([iface])))


def _delete_link(name: str) -> None:
    """The bridge of a removed network (iproute2; the bridge plugin never deletes one)."""
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        subprocess.run(["ip", "link", "delete", name], capture_output=True, timeout=30, check=False)

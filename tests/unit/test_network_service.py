"""The network store without plugins running: prepare's checks (nothing recorded on a
refusal), the spec it returns, the /etc files, and the reconcile of records at start."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from cgroupfs.paths import CgroupRoot
from workloads.images import run as image_run
from workloads.images.manifest import parse_config
from workloads.lifecycle.manager import WorkloadError, WorkloadManager
from workloads.network import files
from workloads.network.errors import NetworkError, NetworkNotFound
from workloads.network.record import Attachment, NetRequest
from workloads.network.service import NetworkService
from workloads.runtime.mounts import Bind, MountOpts
from workloads.runtime.spec import WorkloadSpec

FAKE = """#!/bin/sh
cat > /dev/null
echo "$CNI_COMMAND $CNI_CONTAINERID" >> {log}
"""


@pytest.fixture
def svc(tmp_path: Path) -> NetworkService:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    for kind in ("bridge", "firewall", "portmap", "bandwidth", "loopback"):
        p = plugins / kind
        p.write_text(FAKE.format(log=tmp_path / "calls"))
        p.chmod(p.stat().st_mode | stat.S_IXUSR)
    return NetworkService(str(tmp_path / "state"), plugin_dirs=(str(plugins),))


def _spec(name: str, net: str = "bridge", **kw: object) -> WorkloadSpec:
    return WorkloadSpec(name=name, argv=["true"], net=net, **kw)  # type: ignore[arg-type]


def test_prepare_records_and_binds_the_etc_files(svc: NetworkService) -> None:
    spec = svc.prepare(_spec("web"), NetRequest(ports=("8080:80",), network_rate="1mbit"))
    assert spec.netns == os.path.join(svc.dir, "netns", "web")
    targets = {b.target: b.source for b in spec.mounts.binds}
    assert set(targets) == {"/etc/hosts", "/etc/resolv.conf", "/etc/hostname"}
    assert Path(targets["/etc/hostname"]).read_text() == "web\n"
    a = svc.attachment("web")
    assert a is not None and a.network == "bridge" and a.container_id == "pystats-web"
    assert a.ports[0].host_port == 8080 and a.bandwidth is not None
    assert a.bandwidth.rate_bps == 1_000_000 and a.result is None
    assert [n.name for n in svc.networks()] == ["bridge"]  # the default, made on first use


def test_a_users_own_bind_wins(svc: NetworkService) -> None:
    mine = MountOpts(binds=(Bind("/srv/hosts", "/etc/hosts", True),))
    spec = svc.prepare(_spec("w", mounts=mine), None)
    hosts = [b for b in spec.mounts.binds if b.target == "/etc/hosts"]
    assert hosts == [Bind("/srv/hosts", "/etc/hosts", True)]


@pytest.mark.parametrize(
    ("spec", "req", "needle"),
    [
        (_spec("a", "nosuch"), None, "no such network: 'nosuch'"),
        (_spec("a"), NetRequest(ports=("99999:80",)), "not in 1-65535"),
        (_spec("a"), NetRequest(network_rate="fast"), "--network-rate"),
        (_spec("a", "none"), NetRequest(ports=("8080:80",)), "need a network"),
        (_spec("a", "host"), NetRequest(network_rate="1mbit"), "need a network"),
    ],
)
def test_refusals_record_nothing(
    svc: NetworkService, spec: WorkloadSpec, req: NetRequest | None, needle: str
) -> None:
    with pytest.raises(NetworkError, match=needle):
        svc.prepare(spec, req)
    assert svc.attachment("a") is None
    assert not os.path.exists(svc.files_dir("a"))


def test_a_port_published_by_another_workload_is_refused(svc: NetworkService) -> None:
    svc.prepare(_spec("one"), NetRequest(ports=("18080:80",)))
    with pytest.raises(NetworkError, match="already published by another workload"):
        svc.prepare(_spec("two"), NetRequest(ports=("18080:80",)))
    svc.prepare(_spec("three"), NetRequest(ports=("18080:80/udp",)))  # another protocol


def test_ephemeral_ports_for_publish_all(svc: NetworkService) -> None:
    svc.prepare(_spec("w"), NetRequest(publish_all=True, expose=("80", "53/udp")))
    a = svc.attachment("w")
    assert a is not None and [p.container_port for p in a.ports] == [80, 53]
    assert all(p.host_port > 0 for p in a.ports)


def test_networks_create_overlap_remove(svc: NetworkService) -> None:
    net = svc.create("tnet")
    assert net.subnet == "10.100.0.0/24"
    with pytest.raises(NetworkError, match="already exists"):
        svc.create("tnet")
    with pytest.raises(NetworkError, match=r"overlaps 10\.100\.0\.0/24"):
        svc.create("other", "10.100.0.0/16")
    svc.prepare(_spec("w", "tnet"), None)
    with pytest.raises(NetworkError, match="in use by w"):
        svc.remove("tnet")
    svc.release("w")
    svc.remove("tnet")
    with pytest.raises(NetworkNotFound):
        svc.get("tnet")


def _attached(svc: NetworkService, name: str, ip: str) -> None:
    svc.prepare(_spec(name), None)
    a = svc.attachment(name)
    assert a is not None
    result = {
        "cniVersion": "1.0.0",
        "interfaces": [{"name": "eth0", "sandbox": a.netns}],
        "ips": [{"address": f"{ip}/16", "gateway": "10.99.0.1", "interface": 0}],
    }
    from workloads.network.cni import parse_result

    rec = Attachment(**{**a.__dict__, "result": parse_result(json.dumps(result))})
    svc._save(rec)


def test_hosts_rewritten_in_place_and_reconcile(svc: NetworkService, tmp_path: Path) -> None:
    _attached(svc, "a", "10.99.0.2")
    hosts_a = os.path.join(svc.files_dir("a"), "hosts")
    inode = os.stat(hosts_a).st_ino
    _attached(svc, "b", "10.99.0.3")
    _attached(svc, "gone", "10.99.0.4")
    svc._write_hosts("bridge")
    text = Path(hosts_a).read_text()
    assert "10.99.0.2\ta\n" in text and "10.99.0.3\tb\n" in text
    assert os.stat(hosts_a).st_ino == inode  # a bind mount of it follows
    info = svc.describe("a")
    assert info is not None and info["ip_address"] == "10.99.0.2/16"
    # At start: "gone" no longer exists, "b" is not running, "a" runs.
    notes = svc.reconcile(known={"a", "b"}, running={"a"})
    assert any("removed workload gone" in n for n in notes)
    assert any("stopped workload b" in n for n in notes)
    assert svc.attachment("gone") is None and not os.path.exists(svc.files_dir("gone"))
    b = svc.attachment("b")
    assert b is not None and b.result is None  # kept for its next run, detached
    a = svc.attachment("a")
    assert a is not None and a.result is not None  # a running one is left alone
    calls = (tmp_path / "calls").read_text().split("\n")
    # DEL ran for both, with their container ids, in reverse plugin order (firewall first).
    assert "DEL pystats-gone" in calls and "DEL pystats-b" in calls
    assert "pystats-a" not in (tmp_path / "calls").read_text()
    assert "10.99.0.4" not in Path(hosts_a).read_text()


def test_resolv_conf_drops_loopback_resolvers() -> None:
    assert files.resolv_conf("nameserver 127.0.0.53\nsearch lan\n") == (
        "search lan\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n"
    )
    assert files.resolv_conf("nameserver 192.168.1.1\n") == "nameserver 192.168.1.1\n"


def test_publish_all_takes_the_images_ports_once_and_leaves_p_alone(svc: NetworkService) -> None:
    req = NetRequest(ports=("18090:80",), publish_all=True, expose=("8080",))
    req = req.with_image_ports(("80/tcp", "8080", "443/tcp", "53/udp"))
    assert req.expose == ("8080", "80/tcp", "443/tcp", "53/udp")
    svc.prepare(_spec("w"), req)
    a = svc.attachment("w")
    assert a is not None
    got = [(p.container_port, p.protocol) for p in a.ports]
    # 80 keeps only its -p mapping (docker's rule); 8080 once though exposed twice
    assert got == [(80, "tcp"), (8080, "tcp"), (443, "tcp"), (53, "udp")]
    assert a.ports[0].host_port == 18090 and all(p.host_port > 0 for p in a.ports)


def test_an_exposed_port_it_cannot_publish_is_a_clear_refusal(svc: NetworkService) -> None:
    req = NetRequest(publish_all=True).with_image_ports(("132/sctp",))
    with pytest.raises(NetworkError, match=r"-P: cannot publish the exposed port '132/sctp'"):
        svc.prepare(_spec("w"), req)
    assert svc.attachment("w") is None
    # without -P the image's ports are only metadata: nothing is published
    svc.prepare(_spec("v"), NetRequest(expose=("80",)))
    v = svc.attachment("v")
    assert v is not None and v.ports == ()


def test_image_config_exposed_ports_parsed() -> None:
    cfg = parse_config(
        b'{"config": {"ExposedPorts": {"80/tcp": {}, "53/udp": {}}}, "rootfs": {"diff_ids": []}}'
    )
    assert cfg.exposed_ports == ("80/tcp", "53/udp")
    assert parse_config(b'{"rootfs": {"diff_ids": []}}').exposed_ports == ()


async def test_run_from_an_image_with_p_all_asks_for_the_images_ports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "cg").mkdir()
    m = WorkloadManager(
        CgroupRoot(str(tmp_path / "cg")), str(tmp_path / "st"), use_fork_server=False
    )
    os.makedirs(m.wl_dir)  # made by the agent's start
    cfg = parse_config(b'{"config": {"ExposedPorts": {"80/tcp": {}}}, "rootfs": {"diff_ids": []}}')
    monkeypatch.setattr(m.images, "get", lambda ref: ref)
    monkeypatch.setattr(m.images, "config", lambda rec: cfg)
    monkeypatch.setattr(image_run, "prepare", lambda images, spec, req, st: spec)
    asked: list[NetRequest | None] = []

    def prepare(spec: WorkloadSpec, req: NetRequest | None) -> WorkloadSpec:
        asked.append(req)
        raise NetworkError("stop here")

    monkeypatch.setattr(m.net, "prepare", prepare)
    image = image_run.ImageRequest("busybox")
    for req in (NetRequest(publish_all=True, expose=("81",)), NetRequest(ports=("8080:80",))):
        with pytest.raises(WorkloadError, match="stop here"):
            await m.create(_spec("w"), image, req)
    assert asked == [
        NetRequest(publish_all=True, expose=("81", "80/tcp")),
        NetRequest(ports=("8080:80",)),  # no -P: the image's ports are not published
    ]

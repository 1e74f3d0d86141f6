"""Network records and the CNI configuration lists generated from them."""

from __future__ import annotations

import pytest

from workloads.network import config
from workloads.network.cni import plugin_config
from workloads.network.errors import NetworkError
from workloads.network.ports import parse_publish, parse_rate


def test_default_network_and_auto_subnets() -> None:
    net = config.make_network("bridge", config.DEFAULT_SUBNET, [], 1.0)
    assert (net.subnet, net.gateway, net.bridge) == ("10.99.0.0/16", "10.99.0.1", "pystats0")
    a = config.make_network("a", None, [net.subnet], 1.0)
    assert a.subnet == "10.100.0.0/24" and a.gateway == "10.100.0.1"
    b = config.make_network("b", None, [net.subnet, a.subnet, "10.100.1.0/24"], 1.0)
    assert b.subnet == "10.100.2.0/24"
    assert a.bridge.startswith("pst-") and len(a.bridge) <= 15 and a.bridge != b.bridge
    assert config.NetworkDef.from_json(a.to_json()) == a


@pytest.mark.parametrize(
    ("name", "subnet", "taken", "needle"),
    [
        ("x", "10.99.1.0/24", ["10.99.0.0/16"], "overlaps 10.99.0.0/16"),
        ("x", "10.0.0.1/24", [], "host bits set"),
        ("x", "fd00::/64", [], "only IPv4"),
        ("x", "10.1.0.0/30", [], "at most /29"),
        ("none", None, [], "invalid network name"),
        ("bad/name", None, [], "invalid network name"),
    ],
)
def test_network_errors(name: str, subnet: str | None, taken: list[str], needle: str) -> None:
    with pytest.raises(NetworkError, match=needle.replace("/", "/")):
        config.make_network(name, subnet, taken, 1.0)


def test_conflist_plain_has_bridge_and_firewall_only() -> None:
    net = config.make_network("bridge", config.DEFAULT_SUBNET, [], 1.0)
    conf = config.conflist(net, "/st/ipam")
    assert [p["type"] for p in conf.plugins] == ["bridge", "firewall"]
    bridge = conf.plugins[0]
    assert bridge["bridge"] == "pystats0" and bridge["ipMasq"] is True
    assert bridge["ipam"] == {
        "type": "host-local",
        "ranges": [[{"subnet": "10.99.0.0/16", "gateway": "10.99.0.1"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "/st/ipam",
    }
    assert conf.name == "pystats-bridge" and conf.runtime_config == {}


def test_ports_and_rate_add_portmap_and_bandwidth_with_runtime_config() -> None:
    net = config.make_network("n1", "10.101.0.0/24", [], 1.0)
    conf = config.conflist(net, "/ipam", (parse_publish("8080:80"),), parse_rate("1mbit"))
    assert [p["type"] for p in conf.plugins] == ["bridge", "firewall", "portmap", "bandwidth"]
    portmap = plugin_config(conf, conf.plugins[2], None)
    assert "capabilities" not in portmap
    assert portmap["runtimeConfig"] == {
        "portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp", "hostIP": ""}]
    }
    bw = plugin_config(conf, conf.plugins[3], None)
    assert bw["runtimeConfig"] == {"bandwidth": parse_rate("1mbit").cni()}
    # Plugins without the capability get no runtimeConfig.
    assert "runtimeConfig" not in plugin_config(conf, conf.plugins[0], None)
    assert plugin_config(conf, conf.plugins[0], None)["cniVersion"] == "1.0.0"

"""Parsing /proc/<pid>/net/dev into a workload's network counters."""

from __future__ import annotations

import os

from collectors.netdev import NetIO, parse_net_dev, read_pid, total

NET_DEV = """\
Inter-| Receive | Transmit
 face |bytes packets errs drop fifo frame compressed multicast|bytes packets errs drop fifo colls
    lo: 1000 10 0 0 0 0 0 0 1000 10 0 0 0 0 0 0
  eth0: 5242880 3600 1 2 0 0 0 0 131072 900 3 4 0 0 0 0
  eth1: 100 1 0 0 0 0 0 0 200 2 0 0 0 0 0 0
"""


def test_parse_and_total_without_lo() -> None:
    ifaces = parse_net_dev(NET_DEV)
    assert set(ifaces) == {"lo", "eth0", "eth1"}
    assert ifaces["eth0"] == NetIO(5242880, 3600, 1, 2, 131072, 900, 3, 4)
    assert total(ifaces) == NetIO(5242980, 3601, 1, 2, 131272, 902, 3, 4)


def test_garbage_lines_are_skipped() -> None:
    assert parse_net_dev("h1\nh2\nbroken line\n  x: 1 2 3\n") == {}


def test_read_pid_of_this_process_and_of_a_gone_one() -> None:
    mine = read_pid(os.getpid())
    assert mine is not None and mine.rx_bytes >= 0
    assert read_pid(2**22 + 7) is None  # above pid_max's default ceiling: never a process


def test_exported_as_pystats_network_series_per_workload() -> None:
    from agent.exporter.agentinfo import AgentInfo, self_metrics
    from collectors.store import Store

    io = NetIO(5, 4, 3, 2, 50, 40, 30, 20)
    info = AgentInfo(workload_network=lambda: {"web": io})
    got = {m.name: samples for m, samples in self_metrics(Store(), info, None)}
    assert got["pystats_network_receive_bytes"] == [({"workload": "web"}, 5)]
    assert got["pystats_network_transmit_bytes"] == [({"workload": "web"}, 50)]
    assert got["pystats_network_receive_packets_dropped"] == [({"workload": "web"}, 2)]
    assert got["pystats_network_transmit_errors"] == [({"workload": "web"}, 30)]
    none = {m.name: s for m, s in self_metrics(Store(), AgentInfo(), None)}
    assert none["pystats_network_receive_bytes"] == []


def test_cadvisor_names_only_in_its_mode() -> None:
    from agent.exporter.agentinfo import AgentInfo, self_metrics
    from collectors.store import Store

    io = NetIO(5, 4, 3, 2, 50, 40, 30, 20)
    plain = AgentInfo(workload_network=lambda: {"web": io})
    got = {m.name: s for m, s in self_metrics(Store(), plain, None)}
    assert got["container_network_receive_bytes"] == []  # pystats naming: no container_*
    compat = AgentInfo(workload_network=lambda: {"web": io}, cadvisor_names=True)
    got = {m.name: s for m, s in self_metrics(Store(), compat, None)}
    assert got["container_network_receive_bytes"] == [({"name": "web"}, 5)]
    assert got["container_network_transmit_packets_dropped"] == [({"name": "web"}, 20)]
    assert got["pystats_network_receive_bytes"] == [({"workload": "web"}, 5)]

"""The CNI driver against fake plugins: environment, stdin, chaining, errors, DEL order."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from workloads.network import cni
from workloads.network.errors import CniError

RESULT = {
    "cniVersion": "1.0.0",
    "interfaces": [
        {"name": "pystats0", "mac": "aa:aa:aa:aa:aa:aa"},
        {"name": "eth0", "mac": "0a:58:0a:63:00:05", "sandbox": "/st/netns/w"},
    ],
    "ips": [{"address": "10.99.0.5/16", "gateway": "10.99.0.1", "interface": 1}],
    "routes": [{"dst": "0.0.0.0/0"}],
    "dns": {},
}

# A fake plugin: logs its env and stdin to LOG, then answers as told by its own name.
PLUGIN = """#!/usr/bin/env python3
import json, os, sys
conf = json.load(sys.stdin)
with open({log!r}, "a") as f:
    f.write(json.dumps({{"type": conf["type"], "cmd": os.environ["CNI_COMMAND"],
        "env": {{k: v for k, v in os.environ.items() if k.startswith("CNI_")}},
        "conf": conf}}) + "\\n")
if conf.get("fail") == os.environ["CNI_COMMAND"]:
    print(json.dumps({{"cniVersion": "1.0.0", "code": 11, "msg": "no luck",
        "details": "the bridge is gone"}}))
    sys.exit(1)
if conf.get("crash"):
    sys.stderr.write("panic: runtime error\\n")
    sys.exit(2)
if os.environ["CNI_COMMAND"] == "ADD":
    print(json.dumps(conf.get("prevResult") or json.loads({result!r})))
"""


@pytest.fixture
def plugins(tmp_path: Path) -> tuple[Path, Path]:
    log = tmp_path / "log"
    for kind in ("first", "second", "third"):
        p = tmp_path / kind
        p.write_text(PLUGIN.format(log=str(log), result=json.dumps(RESULT)))
        p.chmod(p.stat().st_mode | stat.S_IXUSR)
    return tmp_path, log


def _calls(log: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def _inv(d: Path) -> cni.Invocation:
    return cni.Invocation("pystats-w", "/st/netns/w", "eth0", "", (str(d),))


def test_add_chains_prev_result_and_sets_the_spec_environment(plugins: tuple[Path, Path]) -> None:
    d, log = plugins
    conf = cni.NetConfList(
        "pystats-n",
        ({"type": "first"}, {"type": "second", "capabilities": {"portMappings": True}}),
        {"portMappings": [{"hostPort": 1}], "bandwidth": {"ingressRate": 1}},
    )
    result = cni.add(conf, _inv(d))
    assert result.workload_ips()[0].ip == "10.99.0.5"
    assert result.workload_ips()[0].gateway == "10.99.0.1"
    assert result.sandbox_mac() == "0a:58:0a:63:00:05"
    calls = _calls(log)
    assert [c["type"] for c in calls] == ["first", "second"]
    env = calls[0]["env"]
    assert env == {
        "CNI_COMMAND": "ADD",
        "CNI_CONTAINERID": "pystats-w",
        "CNI_NETNS": "/st/netns/w",
        "CNI_IFNAME": "eth0",
        "CNI_ARGS": "",
        "CNI_PATH": str(d),
    }
    first, second = calls[0]["conf"], calls[1]["conf"]
    assert isinstance(first, dict) and isinstance(second, dict)
    assert "prevResult" not in first and "runtimeConfig" not in first
    assert first["name"] == "pystats-n" and first["cniVersion"] == "1.0.0"
    assert second["prevResult"] == RESULT
    assert second["runtimeConfig"] == {"portMappings": [{"hostPort": 1}]}  # only its capability


def test_a_failed_add_deletes_what_ran_and_shows_the_plugins_message(
    plugins: tuple[Path, Path],
) -> None:
    d, log = plugins
    conf = cni.NetConfList(
        "n", ({"type": "first"}, {"type": "second", "fail": "ADD"}, {"type": "third"})
    )
    with pytest.raises(CniError) as e:
        cni.add(conf, _inv(d))
    assert str(e.value) == (
        "CNI ADD failed in plugin 'second' (code 11): no luck: the bridge is gone"
    )
    assert e.value.code == 11 and e.value.details == "the bridge is gone"
    order = [(c["type"], c["cmd"]) for c in _calls(log)]
    # ADD first, second (fails); then DEL of the whole list in reverse, third never ADDed.
    assert order == [
        ("first", "ADD"),
        ("second", "ADD"),
        ("third", "DEL"),
        ("second", "DEL"),
        ("first", "DEL"),
    ]


def test_del_runs_in_reverse_with_the_add_result_and_collects_errors(
    plugins: tuple[Path, Path],
) -> None:
    d, log = plugins
    conf = cni.NetConfList("n", ({"type": "first", "fail": "DEL"}, {"type": "second"}))
    prev = cni.parse_result(json.dumps(RESULT))
    errors = cni.delete(conf, _inv(d), prev)
    assert [(c["type"], c["cmd"]) for c in _calls(log)] == [("second", "DEL"), ("first", "DEL")]
    assert all(c["conf"]["prevResult"] == RESULT for c in _calls(log))  # type: ignore[index]
    assert len(errors) == 1 and errors[0].plugin == "first"


def test_a_plugin_without_an_error_object_shows_its_stderr(plugins: tuple[Path, Path]) -> None:
    d, _ = plugins
    conf = cni.NetConfList("n", ({"type": "first", "crash": True},))
    with pytest.raises(CniError, match=r"'first' \(code 999\): panic: runtime error"):
        cni.add(conf, _inv(d))


def test_a_missing_plugin_names_the_package(tmp_path: Path) -> None:
    conf = cni.NetConfList("n", ({"type": "nosuch"},))
    with pytest.raises(CniError, match="containernetworking-plugins"):
        cni.add(conf, _inv(tmp_path))
    with pytest.raises(CniError, match="invalid plugin type"):
        cni.find_plugin("../bin/sh", (str(tmp_path),))


def test_result_parsing() -> None:
    r = cni.parse_result(json.dumps(RESULT))
    assert [i.name for i in r.interfaces] == ["pystats0", "eth0"]
    assert r.ips[0].interface == 1 and r.raw == json.dumps(RESULT)
    bare = cni.parse_result('{"cniVersion": "1.0.0", "ips": [{"address": "10.1.0.2/24"}]}')
    assert bare.workload_ips()[0].ip == "10.1.0.2"  # no interface index: kept
    with pytest.raises(ValueError):
        cni.parse_result("[]")
    with pytest.raises(KeyError):
        cni.parse_result('{"ips": [{"gateway": "x"}]}')


def test_real_plugins_answer_version_when_installed() -> None:
    path = "/usr/lib/cni/bridge"
    if not os.access(path, os.X_OK):
        pytest.skip("containernetworking-plugins is not installed")
    inv = cni.Invocation("", "", "", "", ("/usr/lib/cni",))
    proc = cni.exec_plugin("VERSION", inv, {"type": "bridge", "cniVersion": "1.0.0"})
    assert proc.returncode == 0
    assert "1.0.0" in json.loads(proc.stdout)["supportedVersions"]

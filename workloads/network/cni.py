"""Running CNI plugins (containernetworking SPEC 1.0): one executable per step, its parameters
in the environment, the network configuration on stdin, a result or an error on stdout.

A configuration list runs each plugin in order for ADD, passing the previous plugin's result as
``prevResult``; DEL runs them in reverse with the ADD's final result, and must succeed when what
it would remove is already gone (so DEL is also the cleanup of a half-done ADD)."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field

from workloads.network.errors import CniError

CNI_VERSION = "1.0.0"
PLUGIN_DIRS = ("/usr/lib/cni", "/opt/cni/bin", "/usr/libexec/cni")
PLUGIN_TIMEOUT_S = 60.0  # iptables under the test VM's emulation can take seconds
# Plugins run iptables, tc and friends: a plain system PATH, not the agent's.
PLUGIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Interface:
    name: str
    mac: str = ""
    sandbox: str = ""  # the netns path for interfaces inside the workload


@dataclass(frozen=True)
class IpConfig:
    address: str  # CIDR, e.g. 10.99.0.5/16
    gateway: str = ""
    interface: int | None = None  # index into Result.interfaces

    @property
    def ip(self) -> str:
        return self.address.split("/", 1)[0]


@dataclass(frozen=True)
class Result:
    """A plugin's success result; ``raw`` is passed on verbatim as the next prevResult."""

    cni_version: str
    interfaces: tuple[Interface, ...] = ()
    ips: tuple[IpConfig, ...] = ()
    raw: str = "{}"

    def workload_ips(self) -> list[IpConfig]:
        """The addresses on interfaces inside the sandbox (the bridge's own are left out)."""
        out = []
        for ip in self.ips:
            idx = ip.interface
            if idx is None or not 0 <= idx < len(self.interfaces) or self.interfaces[idx].sandbox:
                out.append(ip)
        return out

    def sandbox_mac(self) -> str:
        return next((i.mac for i in self.interfaces if i.sandbox), "")


@dataclass(frozen=True)
class Invocation:
    """The CNI_* parameters of one attachment (same for ADD, CHECK and DEL)."""

    container_id: str
    netns: str
    ifname: str = "eth0"
    args: str = ""
    plugin_dirs: tuple[str, ...] = PLUGIN_DIRS


@dataclass(frozen=True)
class NetConfList:
    """A network configuration list: its name and each plugin's configuration object.
    ``runtime_config`` holds the values of capabilities (portMappings, bandwidth) that are
    passed to the plugins declaring them."""

    name: str
    plugins: tuple[dict[str, object], ...]
    runtime_config: dict[str, object] = field(default_factory=dict)
    cni_version: str = CNI_VERSION


def parse_result(text: str) -> Result:
    """A success result (spec: interfaces, ips, routes, dns); KeyError/TypeError/ValueError
    on something that is not one."""
    d = json.loads(text)
    if not isinstance(d, dict):
        raise ValueError("the result is not a JSON object")
    ifaces = tuple(
        Interface(str(i["name"]), str(i.get("mac", "")), str(i.get("sandbox", "")))
        for i in d.get("interfaces") or []
    )
    ips = tuple(
        IpConfig(
            str(ip["address"]),
            str(ip.get("gateway", "")),
            None if ip.get("interface") is None else int(ip["interface"]),
        )
        for ip in d.get("ips") or []
    )
    return Result(str(d.get("cniVersion", CNI_VERSION)), ifaces, ips, text)


def parse_error(plugin: str, command: str, stdout: str, stderr: str, rc: int) -> CniError:
    """The spec's error object, or the plugin's stderr when it wrote none."""
    try:
        d = json.loads(stdout)
        if isinstance(d, dict) and "code" in d:
            return CniError(
                plugin, command, int(d["code"]), str(d.get("msg", "")), str(d.get("details", ""))
            )
    except (ValueError, TypeError):
        pass
    text = (stderr.strip() or stdout.strip() or f"exit status {rc}").splitlines()[-1]
    return CniError(plugin, command, 999, text)


def find_plugin(kind: str, dirs: tuple[str, ...]) -> str:
    if not kind or "/" in kind:
        raise CniError(kind, "find", 999, "invalid plugin type")
    for d in dirs:
        path = os.path.join(d, kind)
        if os.access(path, os.X_OK):
            return path
    raise CniError(
        kind,
        "find",
        999,
        f"plugin not found in {':'.join(dirs)} (apt-get install containernetworking-plugins)",
    )


def plugin_config(
    conf: NetConfList, plugin: dict[str, object], prev: Result | None
) -> dict[str, object]:
    """One plugin's stdin: its object plus the list's name and version, the previous result,
    and the runtime values of the capabilities it declares (spec: "Deriving execution
    configuration from plugin configuration")."""
    out: dict[str, object] = {**plugin, "name": conf.name, "cniVersion": conf.cni_version}
    out.pop("capabilities", None)
    caps = plugin.get("capabilities")
    if isinstance(caps, dict):
        rc = {k: v for k, v in conf.runtime_config.items() if caps.get(k)}
        if rc:
            out["runtimeConfig"] = rc
    if prev is not None:
        out["prevResult"] = json.loads(prev.raw)
    return out


def exec_plugin(
    command: str, inv: Invocation, config: dict[str, object]
) -> subprocess.CompletedProcess[str]:
    kind = str(config.get("type", ""))
    path = find_plugin(kind, inv.plugin_dirs)
    env = {
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": inv.container_id,
        "CNI_NETNS": inv.netns,
        "CNI_IFNAME": inv.ifname,
        "CNI_ARGS": inv.args,
        "CNI_PATH": ":".join(inv.plugin_dirs),
        "PATH": PLUGIN_PATH,
    }
    try:
        return subprocess.run(
            [path],
            input=json.dumps(config),
            env=env,
            capture_output=True,
            text=True,
            timeout=PLUGIN_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise CniError(kind, command, 999, f"no answer in {PLUGIN_TIMEOUT_S:.0f} s") from None
    except OSError as e:
        raise CniError(kind, command, 999, f"cannot run {path}: {e.strerror}") from None


def add(conf: NetConfList, inv: Invocation) -> Result:
    """ADD each plugin in order. On a failure the plugins run so far are DELeted (the spec
    leaves that to the runtime) and the first error is raised."""
    prev: Result | None = None
    for plugin in conf.plugins:
        cfg = plugin_config(conf, plugin, prev)
        proc = exec_plugin("ADD", inv, cfg)
        kind = str(plugin.get("type"))
        if proc.returncode != 0:
            err = parse_error(kind, "ADD", proc.stdout, proc.stderr, proc.returncode)
            delete(conf, inv, prev)
            raise err
        try:
            prev = parse_result(proc.stdout)
        except (KeyError, TypeError, ValueError) as e:
            delete(conf, inv, prev)
            raise CniError(kind, "ADD", 999, f"unreadable result: {e}") from None
    if prev is None:
        raise CniError(conf.name, "ADD", 999, "the configuration list has no plugins")
    return prev


def delete(conf: NetConfList, inv: Invocation, prev: Result | None) -> list[CniError]:
    """DEL every plugin in reverse order; each one runs even when another failed. Returns the
    errors (a DEL of what is gone already succeeds, so an error here is a real leftover)."""
    errors = []
    for plugin in reversed(conf.plugins):
        cfg = plugin_config(conf, plugin, prev)
        proc = exec_plugin("DEL", inv, cfg)
        if proc.returncode != 0:
            kind = str(plugin.get("type"))
            errors.append(parse_error(kind, "DEL", proc.stdout, proc.stderr, proc.returncode))
    return errors


def check(conf: NetConfList, inv: Invocation, prev: Result) -> None:
    """CHECK each plugin in order against the ADD's result; raises the first error."""
    for plugin in conf.plugins:
        proc = exec_plugin("CHECK", inv, plugin_config(conf, plugin, prev))
        if proc.returncode != 0:
            kind = str(plugin.get("type"))
            raise parse_error(kind, "CHECK", proc.stdout, proc.stderr, proc.returncode)

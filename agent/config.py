"""The agent's configuration: /etc/pystats/agent.yaml, validated with FILE:LINE:COL errors.

Every error in the file is reported at once (not just the first); command-line flags override
file values afterwards. Unknown keys get a did-you-mean.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import Any

from cgroupfs.units import parse_bytes
from policies.yamlpos import ValidationError, YMap, YNode, YScalar, YSeq, load_with_positions

DEFAULT_PATH = "/etc/pystats/agent.yaml"
LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True)
class AgentConfig:
    root: str = (
        "auto"  # the agent's writable cgroup ("auto": delegated cgroup, else <mount>/pystats)
    )
    collect_root: str = "auto"  # what to monitor ("auto": the whole cgroup2 mount)
    state_dir: str = "/var/lib/pystats"
    socket: str = "/run/pystats/agent.sock"
    socket_mode: int = 0o600
    socket_group: str | None = None
    api_group: str | None = None  # may use the API besides root (None: socket_group)
    metrics_listen: str = "127.0.0.1:9753"
    cadvisor_compat: bool = False
    interval_s: float = 1.0
    slow_every: int = 10
    history_s: float = 600.0
    history_retention_s: float = 86400.0  # durable history on disk (<state_dir>/history)
    history_max_bytes: int = 2 << 30
    max_depth: int | None = None
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    policy: str | None = None
    reconcile_interval_s: float = 30.0
    memory_budget: int = 256 * 1024 * 1024
    log_level: str = "info"
    source: str = field(default="(defaults)", compare=False)

    @property
    def history_points(self) -> int:
        return max(1, int(self.history_s / self.interval_s))

    @property
    def metrics_host_port(self) -> tuple[str, int]:
        host, _, port = self.metrics_listen.rpartition(":")
        return host.strip("[]") or "127.0.0.1", int(port)


class ConfigError(Exception):
    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_SCALE = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: object) -> float:
    """'500ms', '1s', '10m', '1h', or a number of seconds; must be positive."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 1s or 500ms, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        m = _DURATION.match(str(value))
        if not m:
            raise ValueError(f"expected a duration such as 1s, 500ms or 10m, got {value!r}")
        seconds = float(m.group(1)) * _SCALE[m.group(2)]
    if seconds <= 0:
        raise ValueError(f"a duration must be positive, got {value!r}")
    return seconds


def _str(v: object) -> str:
    if not isinstance(v, str) or not v:
        raise ValueError(f"expected a non-empty string, got {v!r}")
    return v


def _abs_path(v: object) -> str:
    # The agent resolves a relative path against whatever directory it was started in (/ under
    # systemd, a shell's cwd by hand): the same file would then name two places.
    s = _str(v)
    if not s.startswith("/"):
        raise ValueError(f"expected an absolute path, got {v!r}")
    return s


def _auto_or_path(v: object) -> str:
    s = _str(v)
    return s if s == "auto" else _abs_path(s)


def _opt_str(v: object) -> str | None:
    return None if v is None else _str(v)


def _bool(v: object) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"expected true or false, got {v!r}")
    return v


def _pos_int(v: object) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"expected a whole number of at least 1, got {v!r}")
    return v


def _opt_pos_int(v: object) -> int | None:
    return None if v is None else _pos_int(v)


def _mode(v: object) -> int:
    # YAML reads 0600 as the octal int 384 (YAML 1.1); "0600" as a string is octal too.
    if isinstance(v, int) and not isinstance(v, bool):
        mode = v
    elif isinstance(v, str) and re.fullmatch(r"0?o?[0-7]{3,4}", v):
        mode = int(v.replace("o", ""), 8)
    else:
        raise ValueError(f"expected a file mode such as 0600, got {v!r}")
    if not 0 <= mode <= 0o777:
        raise ValueError(f"expected a file mode such as 0600, got {v!r}")
    return mode


def _socket_mode(v: object) -> int:
    mode = _mode(v)
    if mode & 0o007:
        raise ValueError(
            f"{mode:04o} lets every user of the host connect: the API launches workloads as "
            "root; use 0600, or 0660 with socket_group"
        )
    return mode


def _globs(v: object) -> tuple[str, ...]:
    if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
        raise ValueError(f"expected a list of glob patterns, got {v!r}")
    return tuple(v)


def _listen(v: object) -> str:
    s = _str(v)
    _host, sep, port = s.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT such as 127.0.0.1:9753, got {v!r}")
    return s


def _level(v: object) -> str:
    if not isinstance(v, str) or v.lower() not in LEVELS:
        raise ValueError(f"expected one of {', '.join(LEVELS)}, got {v!r}")
    return v.lower()


def _budget(v: object) -> int:
    n = parse_bytes(v if isinstance(v, int | str) and not isinstance(v, bool) else repr(v))
    if n == float("inf") or n < 16 * 1024 * 1024:
        raise ValueError(f"must be a size of at least 16M, got {v!r}")
    return int(n)


def _history_bytes(v: object) -> int:
    n = parse_bytes(v if isinstance(v, int | str) and not isinstance(v, bool) else repr(v))
    if n == float("inf") or n < 64 * 1024 * 1024:
        raise ValueError(f"must be a size of at least 64M, got {v!r}")
    return int(n)


# YAML key -> (dataclass field, converter)
KEYS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "root": ("root", _auto_or_path),
    "collect_root": ("collect_root", _auto_or_path),
    "state_dir": ("state_dir", _abs_path),
    "socket": ("socket", _abs_path),
    "socket_mode": ("socket_mode", _socket_mode),
    "socket_group": ("socket_group", _opt_str),
    "api_group": ("api_group", _opt_str),
    "metrics_listen": ("metrics_listen", _listen),
    "cadvisor_compat": ("cadvisor_compat", _bool),
    "interval": ("interval_s", parse_duration),
    "slow_every": ("slow_every", _pos_int),
    "history": ("history_s", parse_duration),
    "history_retention": ("history_retention_s", parse_duration),
    "history_max_bytes": ("history_max_bytes", _history_bytes),
    "max_depth": ("max_depth", _opt_pos_int),
    "include": ("include", _globs),
    "exclude": ("exclude", _globs),
    "policy": ("policy", _opt_str),
    "reconcile_interval": ("reconcile_interval_s", parse_duration),
    "memory_budget": ("memory_budget", _budget),
    "log_level": ("log_level", _level),
}
assert {f for f, _ in KEYS.values()} <= {f.name for f in fields(AgentConfig)}


def parse_config(data: bytes | str, filename: str) -> AgentConfig:
    """Validate a whole document; raise ConfigError with every FILE:LINE:COL message."""
    try:
        doc = load_with_positions(data, filename)
    except ValidationError as e:
        raise ConfigError([str(e)]) from None
    if doc is None:
        return AgentConfig(source=filename)
    if not isinstance(doc, YMap):
        raise ConfigError([f"{filename}:{doc.line}:{doc.col}: expected a mapping of settings"])
    errors: list[str] = []
    values: dict[str, Any] = {}
    for key, node in doc.items:
        where = f"{filename}:{key.line}:{key.col}"
        if key.text not in KEYS:
            close = difflib.get_close_matches(key.text, KEYS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            errors.append(f"{where}: unknown setting {key.text!r}{hint}")
            continue
        name, convert = KEYS[key.text]
        try:
            values[name] = convert(_plain(node))
        except (ValueError, TypeError) as e:
            errors.append(f"{filename}:{node.line}:{node.col}: {key.text}: {e}")
    if errors:
        raise ConfigError(errors)
    return replace(AgentConfig(source=filename), **values)


def _plain(node: YNode) -> object:
    if isinstance(node, YScalar):
        return node.value
    if isinstance(node, YSeq):
        return [_plain(n) for n in node.items]
    return {k.text: _plain(v) for k, v in node.items}


def load_config(path: str | None) -> AgentConfig:
    """The file at ``path`` (defaults when it is the default path and does not exist)."""
    target = path or DEFAULT_PATH
    try:
        with open(target, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        if path is None:
            return AgentConfig()
        raise ConfigError([f"{target}: no such file"]) from None
    except OSError as e:
        raise ConfigError([f"{target}: cannot read: {e}"]) from None
    return parse_config(data, target)

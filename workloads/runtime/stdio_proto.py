"""The stdio channel between a shim and the agent: one Unix socket per workload.

The shim listens on ``<wdir>/stdio.sock`` (mode 0600, root, in the workload's 0700 state
directory). Only the agent connects to it: a user's CLI reaches it through the agent's API (a
WebSocket at /v1/workloads/{name}/stdio) after the API's peer-credential check, and the agent
relays frames both ways. So who may attach or exec is decided where every other request is
decided, by one rule.

A frame on the socket is ``type (1 byte) | length (4 bytes, big endian) | payload``; over the
WebSocket each binary message is ``type | payload``. The first frame from the client is a
``SessionRequest`` (JSON); the shim answers with ``HELLO`` (JSON: tty, interactive), then data.

    client -> shim:  S request · i stdin bytes · I stdin EOF · w window size (rows, cols: >HH)
    shim -> client:  h hello · o stdout · e stderr · x the end (JSON ExitReport)
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field
from typing import Any, Final

SOCKET_NAME: Final = "stdio.sock"
REQUEST: Final = b"S"
STDIN: Final = b"i"
STDIN_EOF: Final = b"I"
WINSIZE: Final = b"w"
HELLO: Final = b"h"
STDOUT: Final = b"o"
STDERR: Final = b"e"
EXIT: Final = b"x"
HEADER: Final = struct.Struct(">cI")
MAX_FRAME: Final = 1 << 20
KINDS: Final = ("attach", "exec")


class FrameError(ValueError):
    pass


def encode(kind: bytes, payload: bytes = b"") -> bytes:
    return HEADER.pack(kind, len(payload)) + payload


def socket_path(wdir: str) -> str:
    return os.path.join(wdir, SOCKET_NAME)


def short_path(path: str, dir_fd: int) -> str:
    """``path`` (in the directory open as ``dir_fd``) in a form short enough for sun_path (108
    bytes): a deep test or state directory reaches it through /proc/self/fd."""
    if len(os.fsencode(path)) < 100:
        return path
    return f"/proc/self/fd/{dir_fd}/{os.path.basename(path)}"


class FrameReader:
    """Splits a byte stream into (type, payload) frames."""

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> list[tuple[bytes, bytes]]:
        self._buf += data
        out = []
        while len(self._buf) >= HEADER.size:
            kind, size = HEADER.unpack_from(self._buf)
            if size > MAX_FRAME:
                raise FrameError(f"frame of {size} bytes (at most {MAX_FRAME})")
            end = HEADER.size + size
            if len(self._buf) < end:
                break
            out.append((kind, self._buf[HEADER.size : end]))
            self._buf = self._buf[end:]
        return out


def pack_winsize(rows: int, cols: int) -> bytes:
    return struct.pack(">HH", max(0, min(rows, 0xFFFF)), max(0, min(cols, 0xFFFF)))


def unpack_winsize(payload: bytes) -> tuple[int, int]:
    if len(payload) != 4:
        raise FrameError("window size: expected 4 bytes")
    rows, cols = struct.unpack(">HH", payload)
    return int(rows), int(cols)


def _json(payload: bytes, what: str) -> dict[str, Any]:
    try:
        d = json.loads(payload)
    except ValueError as e:
        raise FrameError(f"{what}: not JSON: {e}") from None
    if not isinstance(d, dict):
        raise FrameError(f"{what}: not a JSON object")
    return d


def _strs(v: object, what: str) -> list[str]:
    if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
        raise FrameError(f"{what}: expected a list of strings")
    return list(v)


def _opt_str(d: dict[str, Any], key: str) -> str | None:
    v = d.get(key)
    if v is not None and not isinstance(v, str):
        raise FrameError(f"{key}: expected a string")
    return v


def _is_id(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**32 - 1


def _opt_id(d: dict[str, Any], key: str) -> int | None:
    v = d.get(key)
    if v is not None and not _is_id(v):
        raise FrameError(f"{key}: expected an id")
    return v


@dataclass(frozen=True)
class SessionRequest:
    """attach: the workload's own stdio; exec: a new process in the workload (docker exec)."""

    kind: str
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    user: str | None = None  # USER[:GROUP] as given; the agent resolves it into the ids:
    uid: int | None = None
    gid: int | None = None
    groups: tuple[int, ...] = ()
    workdir: str | None = None
    tty: bool = False
    interactive: bool = False
    detach: bool = False  # exec -d: started, not waited for
    rows: int = 0
    cols: int = 0

    def encode(self) -> bytes:
        body = {
            "kind": self.kind,
            "argv": self.argv,
            "env": self.env,
            "user": self.user,
            "uid": self.uid,
            "gid": self.gid,
            "groups": list(self.groups),
            "workdir": self.workdir,
            "tty": self.tty,
            "interactive": self.interactive,
            "detach": self.detach,
            "rows": self.rows,
            "cols": self.cols,
        }
        return json.dumps(body).encode()

    @classmethod
    def decode(cls, payload: bytes) -> SessionRequest:
        d = _json(payload, "session request")
        kind = d.get("kind")
        if kind not in KINDS:
            raise FrameError(f"kind: expected one of {', '.join(KINDS)}, got {kind!r}")
        argv = _strs(d.get("argv", []), "argv")
        if kind == "exec" and not argv:
            raise FrameError("exec: no command given")
        env = d.get("env") or {}
        if not isinstance(env, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in env.items()
        ):
            raise FrameError("env: expected an object of strings")
        flags = {}
        for key in ("tty", "interactive", "detach"):
            if not isinstance(d.get(key, False), bool):
                raise FrameError(f"{key}: expected true or false")
            flags[key] = bool(d.get(key, False))
        ids = [_opt_id(d, "uid"), _opt_id(d, "gid")]
        groups = d.get("groups") or []
        if not isinstance(groups, list) or not all(_is_id(g) for g in groups):
            raise FrameError("groups: expected a list of ids")
        size = []
        for key in ("rows", "cols"):
            v = d.get(key, 0)
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 0xFFFF:
                raise FrameError(f"{key}: expected 0..65535")
            size.append(v)
        return cls(
            kind=str(kind),
            argv=argv,
            env=dict(env),
            user=_opt_str(d, "user"),
            uid=ids[0],
            gid=ids[1],
            groups=tuple(groups),
            workdir=_opt_str(d, "workdir"),
            rows=size[0],
            cols=size[1],
            **flags,
        )


@dataclass(frozen=True)
class Hello:
    tty: bool
    interactive: bool

    def encode(self) -> bytes:
        return json.dumps({"tty": self.tty, "interactive": self.interactive}).encode()

    @classmethod
    def decode(cls, payload: bytes) -> Hello:
        d = _json(payload, "hello")
        return cls(tty=d.get("tty") is True, interactive=d.get("interactive") is True)


@dataclass(frozen=True)
class ExitReport:
    """How a session ended: the exit code of the process (as a shell reports it), or why
    there is none (``error``)."""

    exit_code: int | None = None
    error: str | None = None

    def encode(self) -> bytes:
        return json.dumps({"exit_code": self.exit_code, "error": self.error}).encode()

    @classmethod
    def decode(cls, payload: bytes) -> ExitReport:
        d = _json(payload, "exit report")
        code, error = d.get("exit_code"), d.get("error")
        if code is not None and (not isinstance(code, int) or isinstance(code, bool)):
            raise FrameError("exit_code: expected an int")
        if error is not None and not isinstance(error, str):
            raise FrameError("error: expected a string")
        return cls(exit_code=code, error=error)

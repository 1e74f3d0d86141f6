"""HTTP/1.1 over the agent's Unix socket, for the CLI: one request out, status, headers, body in.

Not http.client: importing it loads email.parser and ssl, 20 ms natively and 0.45 s of every
command under the test VM's emulation, for a peer that is always our own agent (aiohttp). The
answer's body is framed by Content-Length, chunked transfer coding, or the connection's close.
"""

from __future__ import annotations

import socket
from io import BufferedReader

MAX_LINE = 65536  # a status, header or chunk-size line longer than this is malformed
MAX_HEADERS = 100


class BadAnswer(ConnectionError):
    """The agent's answer broke off or is not HTTP/1.x; an OSError, as a dropped connection is."""


class Response:
    """The answer to one request; the connection closes with it (``Connection: close``)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._fp: BufferedReader = sock.makefile("rb")
        self._pending = b""  # read by readline() past the line it returned
        try:
            self.status, self.reason = _status_line(self._line())
            self.headers = self._headers()
            self._chunked = self.headers.get("transfer-encoding", "").lower() == "chunked"
            self._left = self._body_length()  # of the body, or of the chunk when chunked
        except BaseException:
            self._fp.close()
            raise
        self._done = self.status in (204, 304) or (self._left == 0 and not self._chunked)

    def _body_length(self) -> int | None:
        """The body's length from the headers: 0 before a chunked body's first chunk, None when
        the close ends it."""
        if self._chunked:
            return 0
        if "content-length" not in self.headers:
            return None
        text = self.headers["content-length"]
        try:
            length = int(text)
        except ValueError:
            raise BadAnswer(f"bad Content-Length {text!r}") from None
        if length < 0:
            raise BadAnswer(f"bad Content-Length {length}")
        return length

    def _line(self) -> bytes:
        line = self._fp.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise BadAnswer("a line of the agent's answer is too long")
        if not line:
            raise BadAnswer("the agent closed the connection mid-answer")
        return line

    def _headers(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for _ in range(MAX_HEADERS + 1):
            line = self._line()
            if line in (b"\r\n", b"\n"):
                return out
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep:
                raise BadAnswer(f"malformed header line {line[:80]!r}")
            out[name.strip().lower()] = value.strip()
        raise BadAnswer(f"more than {MAX_HEADERS} headers")

    def _next_chunk(self) -> None:
        """At a chunk's end: the next chunk's size, or the end of the body (and its trailers)."""
        size = self._line().split(b";", 1)[0].strip()
        try:
            self._left = int(size, 16)
        except ValueError:
            raise BadAnswer(f"bad chunk size {size[:20]!r}") from None
        if self._left == 0:
            while self._line() not in (b"\r\n", b"\n"):
                pass
            self._done = True

    def _raw1(self, n: int) -> bytes:
        """Up to ``n`` bytes of the body, of what has arrived (one at least, but at the end)."""
        if self._done:
            return b""
        if self._chunked and self._left == 0:
            self._next_chunk()
            if self._done:
                return b""
        want = n if self._left is None else min(n, self._left)
        data = self._fp.read1(want)
        if not data:
            if self._left is None:  # framed by the close: this is the end
                self._done = True
                return b""
            raise BadAnswer("the agent closed the connection mid-answer")
        if self._left is not None:
            self._left -= len(data)
            if self._left == 0:
                if self._chunked:
                    if self._fp.read(2) not in (b"\r\n", b"\n"):
                        raise BadAnswer("a chunk does not end with CRLF")
                else:
                    self._done = True
        return data

    def read1(self, n: int = 65536) -> bytes:
        """Up to ``n`` bytes of the body as they come; b"" at its end."""
        if self._pending:
            out, self._pending = self._pending[:n], self._pending[n:]
            return out
        return self._raw1(n)

    def read(self) -> bytes:
        """The rest of the body."""
        parts = [self._pending]
        self._pending = b""
        while data := self._raw1(65536):
            parts.append(data)
        return b"".join(parts)

    def readline(self) -> bytes:
        """The body's next line with its b"\\n" (the rest without one at the end; b"" after)."""
        buf = self._pending
        while (i := buf.find(b"\n")) < 0:
            data = self._raw1(65536)
            if not data:
                self._pending = b""
                return buf
            buf += data
        self._pending = buf[i + 1 :]
        return buf[: i + 1]

    def close(self) -> None:
        self._fp.close()
        self._sock.close()


def _status_line(line: bytes) -> tuple[int, str]:
    version, _, rest = line.decode("latin-1").rstrip("\r\n").partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/1.") or not (code.isdigit() and len(code) == 3):
        raise BadAnswer(f"not an HTTP answer: {line[:80]!r}")
    return int(code), reason


def request(
    socket_path: str,
    method: str,
    target: str,
    body: bytes | None = None,
    content_type: str = "application/json",
    timeout: float | None = None,
) -> Response:
    """Send one request on a new connection to ``socket_path``; the answer's status and headers
    read. OSError when the socket does not answer (BadAnswer: when what it says is not HTTP)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(socket_path)
        head = f"{method} {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
        if body is not None:
            head += f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        sock.sendall(head.encode("latin-1") + b"\r\n" + (body or b""))
        return Response(sock)
    except BaseException:
        sock.close()
        raise

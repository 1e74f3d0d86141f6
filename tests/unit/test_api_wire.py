"""agent.api.wire against canned answers (each framing, broken ones) and against aiohttp."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
from collections.abc import Iterator

import pytest
from aiohttp import web

from agent.api import wire


def _serve_once(path: str, answer: bytes) -> threading.Thread:
    """A one-shot server on ``path``: reads the request's head, sends ``answer``, closes."""
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)

    def run() -> None:
        conn, _ = srv.accept()
        with conn, srv:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(4096)
            head, _, rest = data.partition(b"\r\n\r\n")
            lengths = [
                int(h.split(b":")[1])
                for h in head.split(b"\r\n")
                if h.lower().startswith(b"content-length:")
            ]
            while lengths and len(rest) < lengths[0]:
                rest += conn.recv(4096)
            conn.sendall(answer)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


@pytest.fixture
def sock_path(tmp_path: object) -> Iterator[str]:
    path = os.path.join(str(tmp_path), "a.sock")
    yield path


def _get(path: str, answer: bytes) -> wire.Response:
    _serve_once(path, answer)
    return wire.request(path, "GET", "/x", timeout=5)


def test_content_length_body_and_headers(sock_path: str) -> None:
    r = _get(sock_path, b"HTTP/1.1 201 Created\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhelloEXTRA")
    assert (r.status, r.reason, r.headers["x-a"]) == (201, "Created", "b")
    assert r.read() == b"hello"  # not the bytes past Content-Length
    assert r.read1() == b""
    r.close()


def test_chunked_lines_spanning_chunks(sock_path: str) -> None:
    body = b'4\r\n{"a"\r\n6\r\n:1}\n{"\r\n5\r\nb":2}\r\n1\r\n\n\r\n0\r\nTrailer: x\r\n\r\n'
    r = _get(sock_path, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
    assert r.readline() == b'{"a":1}\n'
    assert r.readline() == b'{"b":2}\n'
    assert r.readline() == b""
    r.close()


def test_body_until_close(sock_path: str) -> None:
    r = _get(sock_path, b"HTTP/1.0 200 OK\r\n\r\n" + b"x" * 200_000)
    assert r.read() == b"x" * 200_000
    r.close()


@pytest.mark.parametrize(
    "answer",
    [
        b"SSH-2.0-OpenSSH\r\n\r\n",  # not HTTP
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",  # closed mid-body
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",  # bad chunk size
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",  # closed mid-chunk
        b"HTTP/1.1 200 OK\r\nBroken header\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"",  # closed before answering
    ],
)
def test_broken_answers_raise_bad_answer(sock_path: str, answer: bytes) -> None:
    _serve_once(sock_path, answer)
    with pytest.raises(wire.BadAnswer):
        r = wire.request(sock_path, "GET", "/x", timeout=5)
        r.read()


def test_no_socket_is_an_oserror(sock_path: str) -> None:
    with pytest.raises(FileNotFoundError):
        wire.request(sock_path, "GET", "/x", timeout=5)


def test_against_aiohttp_json_and_stream(sock_path: str) -> None:
    """The agent's own server: a JSON body (POST echoed), and a chunked stream of lines."""

    async def echo(request: web.Request) -> web.Response:
        return web.json_response({"got": await request.json(), "q": request.query.get("q")})

    async def stream(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        for i in range(50):
            await resp.write(b'{"n": %d}\n' % i)
        await resp.write(b"tail without newline")
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_post("/echo", echo)
    app.router.add_get("/stream", stream)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.UnixSite(runner, sock_path).start())
    t = threading.Thread(target=loop.run_forever, daemon=True)
    t.start()
    try:
        r = wire.request(sock_path, "POST", "/echo?q=%C3%A9", b'{"k": [1, 2]}', timeout=5)
        assert r.status == 200
        assert json.loads(r.read()) == {"got": {"k": [1, 2]}, "q": "\u00e9"}
        r.close()
        r = wire.request(sock_path, "GET", "/stream", timeout=5)
        lines = [r.readline() for _ in range(51)]
        assert lines[:50] == [b'{"n": %d}\n' % i for i in range(50)]
        assert lines[50] == b"tail without newline"
        assert r.readline() == b""
        r.close()
        r = wire.request(sock_path, "GET", "/nothing", timeout=5)
        assert r.status == 404 and b"Not Found" in r.read()
        r.close()
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        t.join(10)
        loop.close()

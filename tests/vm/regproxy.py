"""A registry proxy for the image tests: counts blob downloads, and can slow them down or
corrupt them (flip one byte of every blob body), to test what a pull does with each."""

from __future__ import annotations

import http.client
import http.server
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

BLOB = re.compile(r"/v2/.+/blobs/(sha256:[0-9a-f]{64})$")


@dataclass
class Mode:
    corrupt: bool = False
    delay_per_chunk: float = 0.0  # seconds per 16 KiB of a blob body
    blob_gets: Counter[str] = field(default_factory=Counter)  # whole blobs served (200)
    blob_ranges: list[tuple[str, str]] = field(default_factory=list)  # (digest, Range) of 206s
    lock: threading.Lock = field(default_factory=threading.Lock)


class Proxy:
    def __init__(self, upstream: str) -> None:
        self.mode = Mode()
        mode, up = self.mode, upstream

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                conn = http.client.HTTPConnection(up, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                conn.request("GET", self.path, headers=headers)
                resp = conn.getresponse()
                m = BLOB.match(self.path)
                if m and resp.status == 200:
                    with mode.lock:
                        mode.blob_gets[m.group(1)] += 1
                if m and resp.status == 206:
                    with mode.lock:
                        mode.blob_ranges.append((m.group(1), self.headers.get("Range", "")))
                body_is_blob = bool(m) and resp.status in (200, 206)
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection"):
                        self.send_header(k, v)
                self.send_header("Connection", "close")
                self.end_headers()
                first = True
                try:
                    while chunk := resp.read(16384):
                        if body_is_blob and mode.corrupt and first:
                            chunk = bytes([chunk[0] ^ 0xFF]) + chunk[1:]
                        first = False
                        if body_is_blob and mode.delay_per_chunk:
                            time.sleep(mode.delay_per_chunk)
                        self.wfile.write(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    conn.close()
                    self.close_connection = True

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.addr = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

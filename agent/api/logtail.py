"""``logs --tail N``: the last N lines of a workload's rotated log files, read from the end."""

from __future__ import annotations

import os

BLOCK = 65536


def last_lines(files: list[str], n: int) -> tuple[bytes, int]:
    """(the last ``n`` lines across ``files`` (oldest first, the live one last), the size of
    the live file when read: following goes on from there). A last line without its newline
    yet counts as a line, as docker's does."""
    if not files:
        return b"", 0
    live_size = os.path.getsize(files[-1])
    if n <= 0:
        return b"", live_size
    parts: list[bytes] = []
    newlines = 0
    for i, path in enumerate(reversed(files)):
        end = live_size if i == 0 else os.path.getsize(path)
        with open(path, "rb") as f:
            pos = end
            while pos > 0:
                start = max(0, pos - BLOCK)
                f.seek(start)
                block = f.read(pos - start)
                pos = start
                parts.append(block)
                joined_tail = b"".join(reversed(parts))
                # a final newline ends the last line; it does not start another
                body = joined_tail[:-1] if joined_tail.endswith(b"\n") else joined_tail
                newlines = body.count(b"\n")
                if newlines >= n:
                    cut = len(body)
                    for _ in range(n):
                        cut = body.rindex(b"\n", 0, cut)
                    return joined_tail[cut + 1 :], live_size
    return b"".join(reversed(parts)), live_size

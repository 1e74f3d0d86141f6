"""Issue 17.5: logs --tail N reads the last lines across rotated files, from the end."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.api import logtail
from agent.api.logtail import last_lines


def _files(tmp_path: Path, *contents: bytes) -> list[str]:
    paths = []
    for i, data in enumerate(contents):
        p = tmp_path / f"f{i}"
        p.write_bytes(data)
        paths.append(str(p))
    return paths


def test_last_lines_across_rotated_files(tmp_path: Path) -> None:
    files = _files(tmp_path, b"1\n2\n3\n", b"4\n5\n")
    assert last_lines(files, 2) == (b"4\n5\n", 4)
    assert last_lines(files, 3) == (b"3\n4\n5\n", 4)
    assert last_lines(files, 99) == (b"1\n2\n3\n4\n5\n", 4)
    assert last_lines(files, 0) == (b"", 4)
    assert last_lines([], 3) == (b"", 0)


def test_an_unfinished_last_line_counts(tmp_path: Path) -> None:
    assert last_lines(_files(tmp_path, b"a\nb\nc"), 2) == (b"b\nc", 5)


def test_blocks_smaller_than_the_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logtail, "BLOCK", 3)
    data = b"".join(f"line {i}\n".encode() for i in range(100))
    assert last_lines(_files(tmp_path, data), 3)[0] == b"line 97\nline 98\nline 99\n"

"""write_json_atomic from several threads of one process at once (two concurrent pulls write
the same image record): every write lands whole, none fails, no temporary is left."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from workloads.supervisor.state import write_json_atomic


def test_concurrent_writers_of_one_record(tmp_path: Path) -> None:
    path = str(tmp_path / "image.json")
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(200):
                write_json_atomic(path, {"writer": n, "i": i})
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert json.loads(Path(path).read_text())["i"] == 199
    assert os.listdir(tmp_path) == ["image.json"]

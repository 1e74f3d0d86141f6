"""inotify wrapper: modifications of watched files are reported by cgroup, removal drops them."""

from __future__ import annotations

import os

from collectors.watch import Watcher


def test_watcher_reports_modified_files_by_cgroup(tmp_path: object) -> None:
    d = str(tmp_path)
    for rel in ("a", "b"):
        os.mkdir(os.path.join(d, rel))
        for name in ("memory.events", "cgroup.events"):
            with open(os.path.join(d, rel, name), "w") as f:
                f.write("x")
    w = Watcher()
    try:
        assert w.ok, w.reason
        w.add("a", os.path.join(d, "a"))
        w.add("b", os.path.join(d, "b"))
        w.add("missing", os.path.join(d, "nope"))  # gone already: ignored, still ok
        assert w.ok and w.read() == []
        with open(os.path.join(d, "a", "memory.events"), "a") as f:
            f.write("1")
        with open(os.path.join(d, "b", "cgroup.events"), "a") as f:
            f.write("1")
        assert sorted(set(w.read())) == [("a", "memory.events"), ("b", "cgroup.events")]
        w.remove("a")
        with open(os.path.join(d, "a", "memory.events"), "a") as f:
            f.write("2")
        assert w.read() == []
        assert sorted(w.watched()) == ["b", "missing"]
    finally:
        w.close()
    assert w.fd == -1 and not w.ok

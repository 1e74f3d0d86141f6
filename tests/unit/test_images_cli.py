"""`pystats run IMAGE [CMD...]` parsing, the image CLI's parsers, and the create body's image
fields."""

from __future__ import annotations

import pytest

from agent import cli
from agent.api.image_routes import image_request_from_body
from agent.cli.images import images_table
from agent.cli.workloads import run_body
from workloads.images.run import ImageRequest
from workloads.runtime.errors import SpecError


def body(*argv: str) -> dict[str, object]:
    return run_body(cli.build_parser().parse_args(["run", *argv]))


def test_image_then_command_with_its_own_flags() -> None:
    b = body("-d", "--name", "web", "busybox", "httpd", "-f", "-p", "80")
    assert b["image"] == "busybox" and b["argv"] == ["httpd", "-f", "-p", "80"]
    assert b["name"] == "web"


def test_image_alone_uses_its_config() -> None:
    assert body("nginx:1")["argv"] == [] and body("nginx:1")["image"] == "nginx:1"


def test_double_dash_means_no_image() -> None:
    b = body("--", "sh", "-c", "true")
    assert "image" not in b and b["argv"] == ["sh", "-c", "true"]


def test_image_option_and_overrides() -> None:
    b = body("--image", "busybox", "--entrypoint", "/bin/echo", "-u", "web", "--", "hi")
    assert (b["image"], b["argv"], b["entrypoint"], b["user"]) == (
        "busybox", ["hi"], ["/bin/echo"], "web"
    )  # fmt: skip
    assert body("--entrypoint", "", "busybox")["entrypoint"] == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--rootfs", "/srv", "busybox"], "exclude each other"),
        (["--entrypoint", "/e", "--", "id"], "--entrypoint needs an image"),
        ([], "no command given"),
    ],
)
def test_refused(argv: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        body(*argv)


def test_user_without_an_image_is_the_rootfs_user() -> None:
    b = body("--user", "web:staff", "--group-add", "video", "--group-add", "44", "--", "id")
    assert (b["user"], b["group_add"], "image" in b) == ("web:staff", ["video", "44"], False)
    assert image_request_from_body({"argv": ["id"], "user": "web"}) is None


def test_image_request_from_body() -> None:
    assert image_request_from_body({"argv": ["x"]}) is None
    r = image_request_from_body({"image": "busybox", "entrypoint": ["/e"], "user": "1:2"})
    assert r == ImageRequest("busybox", ["/e"], "1:2")
    for bad, msg in (
        ({"image": 3}, "non-empty string"),
        ({"image": "b", "entrypoint": "sh"}, "list of strings"),
        ({"entrypoint": ["x"]}, "without an image"),
    ):
        with pytest.raises(SpecError, match=msg):
            image_request_from_body(bad)


def test_images_table() -> None:
    doc = {
        "images": [
            {"id": "sha256:" + "ab" * 32, "names": ["localhost:5000/app:1", "busybox:latest"],
             "created_at": 0.0, "size": 2_500_000, "used_by": ["web"]},
            {"id": "sha256:" + "cd" * 32, "names": [], "created_at": 0.0, "size": 10,
             "used_by": []},
        ],
        "disk": {"layers": 2_500_010, "blobs": 1_000_000},
    }  # fmt: skip
    lines = images_table(doc).splitlines()
    assert lines[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE", "USED", "BY"]
    assert lines[1].split()[:3] == ["localhost:5000/app", "1", "abababababab"]
    assert "2.5MB" in lines[1] and lines[1].rstrip().endswith("web")
    assert lines[2].split()[:2] == ["busybox", "latest"]
    assert lines[3].split()[:2] == ["<none>", "<none>"]
    assert lines[-1] == "total: 2.5MB in layers, 1.0MB in blobs"


def test_ps_size_is_dockers_size_column(monkeypatch: pytest.MonkeyPatch) -> None:
    from agent.api.image_client import ImageClient
    from agent.cli.images import add_sizes
    from agent.cli.observe import ps_row, table
    from agent.cli.template import render_rows

    usage = {
        "images": {"sha256:aa": 4_300_000},
        "workloads": {"web": 12, "ro": None},
        "disk": {},
    }
    monkeypatch.setattr(ImageClient, "usage", lambda self: usage)
    rows: list[dict[str, object]] = [
        {"name": "web", "state": "running", "argv": ["httpd"], "image": {"id": "sha256:aa"}},
        {"name": "ro", "state": "running", "argv": ["sh"], "image": {"id": "sha256:aa"}},
        {"name": "host", "state": "running", "argv": ["sleep"], "image": None},
    ]
    add_sizes("/nonexistent.sock", rows)
    assert [(r["size_rw"], r["size_root_fs"]) for r in rows] == [
        (12, 4_300_012), (0, 4_300_000), (None, None)
    ]  # fmt: skip
    lines = table(rows, 0.0).splitlines()
    assert lines[0].split()[-1] == "SIZE"
    assert lines[1].endswith("12B (virtual 4.3MB)") and lines[3].endswith("   -")
    assert render_rows("{{.Names}} {{.Size}}", [ps_row(r, 0.0) for r in rows])[0] == (
        "web 12B (virtual 4.3MB)"
    )
    assert "SIZE" not in table([{"name": "x", "state": "running"}], 0.0)


def test_a_pull_whose_agent_dies_mid_way_is_an_error(tmp_path: str) -> None:
    """The agent's stream ends (it was killed) before the result line: an ApiError with one
    clear line, never "pulled" and exit 0, nor a traceback."""
    import os
    import socket
    import threading

    from agent.api.client import ApiError
    from agent.api.image_client import ImageClient

    path = os.path.join(str(tmp_path), "api.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)

    def answer() -> None:
        conn, _ = srv.accept()
        got = b""
        while not got.endswith(b'{"ref": "x"}'):  # the request, body included
            got += conn.recv(65536)
        line = b'{"id": "abc", "status": "Downloading", "current": 1, "total": 9}\n'
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n"
        conn.sendall(
            head + b"Transfer-Encoding: chunked\r\n\r\n%x\r\n" % len(line) + line + b"\r\n"
        )
        conn.close()  # killed: no result line, no last chunk

    t = threading.Thread(target=answer)
    t.start()
    got: list[dict[str, object]] = []
    with pytest.raises(ApiError, match="stopped answering before the work was done"):
        for item in ImageClient(path, timeout=5).pull({"ref": "x"}):
            got.append(item)
    t.join()
    srv.close()
    assert got == [{"id": "abc", "status": "Downloading", "current": 1, "total": 9}]

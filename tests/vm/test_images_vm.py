"""Images in the VM, against real tools: umoci-built images from busybox-static, pushed by
skopeo to Debian's docker-registry (HTTP, and TLS with a test CA), pulled, loaded and run by
the agent (dev server) on overlayfs snapshots."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests import envcheck
from tests.vm import images_build as build
from tests.vm.regproxy import Proxy
from tests.vm.wlagent import REPO, Agent

# Building and pushing the images with Go tools under emulation takes minutes on a busy host.
pytestmark = [pytest.mark.vm, pytest.mark.timeout(1500)]


def step(what: str, t0: float = time.monotonic()) -> None:
    """Progress of the slow setup, to images-setup.log in the run's results folder (pytest
    captures fds 1 and 2; PYSTATS_VM_KEEP=1 keeps the folder)."""
    out = os.environ.get("PYSTATS_VM_OUT") or tempfile.gettempdir()
    with open(os.path.join(out, "images-setup.log"), "a") as f:
        f.write(f"{time.monotonic() - t0:6.1f} s {what}\n")


@dataclass
class World:
    work: str
    layout: str
    http: build.RegistryProc
    tls: build.RegistryProc
    ca: str
    agent: Agent

    @property
    def h(self) -> str:
        return self.http.addr

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.agent.cli(*args)

    def pull(self, ref: str, *extra: str) -> subprocess.CompletedProcess[str]:
        host = ref.split("/", 1)[0]
        return self.cli("pull", "--insecure-registry", host, *extra, ref)

    def images_dir(self) -> str:
        return os.path.join(self.agent.state, "images")

    def rm_all(self) -> None:
        for w in self.agent.client.listing(all_=True):
            self.agent.client.rm(w["name"], force=True)


def _tool_missing() -> str | None:
    for tool in ("umoci", "skopeo", "docker-registry", "openssl"):
        if shutil.which(tool) is None:
            return tool
    return None


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    root = envcheck.require_vm()
    missing = _tool_missing()
    if missing:
        envcheck.unavailable(f"{missing} is not installed (apt-get install {missing})")
    work = tempfile.mkdtemp(prefix="pystats-img-")
    os.chmod(work, 0o711)  # a --userns root must reach its snapshot below it
    step("building the images with umoci")
    layout = build.build_layout(work)
    step("starting docker-registry (HTTP and TLS)")
    storage = os.path.join(work, "registry")
    http = build.start_registry(work, storage)
    ca, crt, key = build.make_tls(work)
    tls = build.start_registry(work, storage, (crt, key))
    with open(os.path.join(root, "cgroup.subtree_control"), "w") as f:
        f.write("+cpu +memory +pids")
    state = os.path.join(work, "state")
    os.mkdir(state)
    # The agent's state on a tmpfs: overlayfs wants an upper layer with trusted xattrs.
    # mode 0711: the API refuses a socket in a group- or other-writable directory.
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1g,mode=711", "tmpfs", state], check=True)
    try:
        step("pushing with skopeo")
        build.push(layout, "app", f"{http.addr}/test/app:1")
        build.push(layout, "base", f"{http.addr}/test/busybox:1")
        build.push(layout, "multi", f"{http.addr}/test/multi:1", all_=True)
        with envcheck.scratch_cgroup(root, {"cpu", "memory", "pids"}) as cg:
            agent = Agent(cg, state, os.path.join(state, "api.sock"))
            try:
                agent.start()
            except AssertionError:
                with open(os.path.join(state, "devserver.log")) as f:
                    pytest.fail(f"the dev server did not start: {f.read()[-3000:]}")
            step("agent up")
            w = World(work, layout, http, tls, ca, agent)
            try:
                yield w
            finally:
                with contextlib.suppress(Exception):
                    w.rm_all()
                agent.stop()
    finally:
        http.stop()
        tls.stop()
        with contextlib.suppress(OSError):  # the agent's log, kept with the run's results
            out = os.environ.get("PYSTATS_VM_OUT") or tempfile.gettempdir()
            log = os.path.join(state, "devserver.log")
            shutil.copy(log, os.path.join(out, "images-devserver.log"))
        subprocess.run(["umount", "-l", state], check=False)
        shutil.rmtree(work, ignore_errors=True)


def test_pull_manifest_list_and_run(world: World) -> None:
    r = world.pull(f"{world.h}/test/multi:1")
    assert r.returncode == 0, r.stderr
    assert "Pull complete" in r.stderr and "Digest: sha256:" in r.stderr
    # The index's linux/amd64 entry is app: entrypoint sh, cmd -c "echo app; cat ..."
    r = world.cli("run", "--name", "app1", f"{world.h}/test/multi:1")
    assert (r.returncode, r.stdout) == (0, "app\nhello from an image\n"), r.stderr
    script = "test -e /etc/gone && echo present || echo absent; ls /data/cache; echo $GREETING; pwd"
    r = world.cli("run", "--name", "chk", f"{world.h}/test/multi:1", "-c", script)
    assert r.stdout.split("\n") == ["absent", "fresh", "hi", "/www", ""], r.stderr
    info = world.agent.client.inspect("chk")
    assert info["image"]["ref"] == f"{world.h}/test/multi:1"
    assert info["image"]["digest"].startswith("sha256:")
    assert info["image"]["rootfs_owner"] == "image"
    assert info["argv"] == ["/bin/sh", "-c", script]
    # writes land in the workload's upper layer, not in the image's layers
    r = world.cli("run", "--name", "writer", f"{world.h}/test/multi:1", "-c", "echo x > /www/w")
    assert r.returncode == 0, r.stderr
    snap = world.agent.client.inspect("writer")["image"]["snapshot"]
    assert os.path.isfile(os.path.join(snap, "upper", "www", "w"))
    r = world.cli("ps", "-a", "--size", "--filter", "name=writer")
    head, row = r.stdout.splitlines()
    assert head.split()[-1] == "SIZE", r.stdout
    assert re.search(r"   2B \(virtual [12]\.\dMB\)$", row), row  # "x\n"; busybox, ~2 MB
    world.agent.client.rm("writer")
    assert not os.path.exists(snap)
    assert not os.path.ismount(os.path.join(snap, "rootfs"))


def test_run_pulls_missing_image_and_serves_httpd(world: World) -> None:
    port = build.free_port()
    ref = f"{world.h}/test/busybox:1"
    r = world.cli(
        "run", "-d", "--name", "web", "--net", "host", "--insecure-registry", world.h,
        ref, "httpd", "-f", "-p", f"127.0.0.1:{port}", "-h", "/www",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "Unable to find image" in r.stderr
    body = ""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=5) as f:
                body = f.read().decode()
            break
        except OSError:
            time.sleep(0.2)
    assert body == "hello from an image\n"
    r = world.cli("run", "--name", "asweb", "--user", "web", ref, "id")
    assert r.stdout.startswith("uid=1000(web) gid=1000(web)"), (r.stdout, r.stderr)
    r = world.cli("run", "--name", "ro", "--read-only", ref, "touch", "/www/x")
    assert r.returncode != 0 and "Read-only file system" in r.stdout, r.stdout
    r = world.cli("rmi", ref)
    assert r.returncode == 1 and "used by workload" in r.stderr and "web" in r.stderr


def test_tls_registry_with_a_test_ca(world: World) -> None:
    ref = f"{world.tls.addr}/test/app:1"
    r = world.cli("pull", ref)
    assert r.returncode == 1 and "certificate verify failed" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    certs = os.path.join(world.images_dir(), "certs.d", world.tls.addr)
    os.makedirs(certs)
    shutil.copy(world.ca, os.path.join(certs, "ca.crt"))
    r = world.cli("pull", ref)
    assert r.returncode == 0, r.stderr


def _du(path: str) -> int:
    total = 0
    for d, _, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(d, f)).st_size
    return total


def _prune_all(world: World) -> None:
    world.rm_all()
    r = world.cli("image", "prune", "-a", "-f")
    assert r.returncode == 0 and "Total reclaimed space" in r.stdout, r.stderr
    blobs = os.path.join(world.images_dir(), "blobs")
    layers = os.path.join(world.images_dir(), "layers")
    assert _du(blobs) == 0
    assert [n for n in os.listdir(layers) if not n.startswith(".")] == []


def test_prune_frees_the_bytes(world: World) -> None:
    world.pull(f"{world.h}/test/app:1")
    before = _du(world.images_dir())
    assert before > 1_000_000  # busybox, unpacked and as a blob
    r = world.cli("images")
    assert "test/app" in r.stdout and "MB" in r.stdout, r.stdout
    _prune_all(world)
    assert _du(world.images_dir()) < before / 50
    assert world.agent.client._json("GET", "/v1/images")["images"] == []


@contextlib.contextmanager
def proxied(world: World) -> Iterator[Proxy]:
    """An empty image store and a proxy in front of the HTTP registry, for the block."""
    _prune_all(world)
    proxy = Proxy(world.h)
    try:
        yield proxy
    finally:
        proxy.close()


def pull_in_background(world: World, proxy: Proxy, ref: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "pull", "--insecure-registry", proxy.addr, ref],
        cwd=REPO, env=dict(os.environ, PYSTATS_SOCKET=world.agent.sock),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_two_concurrent_pulls_download_once(world: World) -> None:
    with proxied(world) as proxy:
        ref = f"{proxy.addr}/test/app:1"
        procs = [pull_in_background(world, proxy, ref) for _ in range(2)]
        outs = [p.communicate(timeout=300) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outs
        gets = proxy.mode.blob_gets
        assert gets and set(gets.values()) == {1}, gets  # each blob fetched once
    r = world.cli("run", "--name", "after2", ref)
    assert r.stdout == "app\nhello from an image\n", r.stderr


def _partial_blob(ingest: str, timeout: float) -> str | None:
    """The first blob a pull has written more than 64 KiB of (its hex digest), or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for n in os.listdir(ingest):
            if n.endswith(".partial") and os.path.getsize(os.path.join(ingest, n)) > 65536:
                return n.removesuffix(".partial")
        time.sleep(0.05)
    return None


def test_pull_killed_midway_then_repeated(world: World) -> None:
    """The agent SIGKILLed mid-blob, then the same pull: it continues the partial blob with a
    Range request; nothing half-written was ever visible. The test kills the module's dev
    server itself, so it starts it again whatever happens (the tests after it need it)."""
    ingest = os.path.join(world.images_dir(), "ingest")
    with proxied(world) as proxy:
        proxy.mode.delay_per_chunk = 0.05  # ~320 KiB/s: the busybox layer takes seconds
        ref = f"{proxy.addr}/test/app:1"
        p = pull_in_background(world, proxy, ref)
        try:
            hx = _partial_blob(ingest, 120)
            assert hx, "the pull never got going"
            world.agent.sigkill()
            _, err = p.communicate(timeout=60)
            assert p.returncode == 1 and "stopped answering" in err, err
            assert "Traceback" not in err
            assert os.path.exists(os.path.join(ingest, hx + ".partial"))  # killed mid-blob
            assert not os.path.exists(os.path.join(world.images_dir(), "blobs", "sha256", hx))
        finally:
            if p.poll() is None:
                p.kill()
                p.communicate()
            assert world.agent.proc is not None
            if world.agent.proc.poll() is not None:
                world.agent.start()
        proxy.mode.delay_per_chunk = 0.0
        r = world.pull(ref)
        assert r.returncode == 0, r.stderr
        assert not [n for n in os.listdir(ingest) if n.endswith(".partial")]
        ranges = [rng for d, rng in proxy.mode.blob_ranges if d == "sha256:" + hx]
        assert len(ranges) == 1 and int(ranges[0].removeprefix("bytes=").rstrip("-")) > 65536
        assert proxy.mode.blob_gets["sha256:" + hx] == 1  # the killed pull's; then resumed
    r = world.cli("run", "--name", "afterkill", ref)
    assert r.stdout == "app\nhello from an image\n", r.stderr


def test_corrupt_blob_refused(world: World) -> None:
    with proxied(world) as proxy:
        proxy.mode.corrupt = True
        r = world.pull(f"{proxy.addr}/test/app:1")
    assert r.returncode == 1 and "digest" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert world.agent.client._json("GET", "/v1/images")["images"] == []
    blobs = os.path.join(world.images_dir(), "blobs", "sha256")
    for name in os.listdir(blobs):  # only verified content (the manifest) was kept
        with open(os.path.join(blobs, name), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == name


def _evil_archive(path: str) -> None:
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tf:
        ti = tarfile.TarInfo("../evil")
        ti.size = 4
        tf.addfile(ti, io.BytesIO(b"evil"))
    raw = layer.getvalue()
    diff = "sha256:" + hashlib.sha256(raw).hexdigest()
    cfg = json.dumps({"os": "linux", "architecture": "amd64", "config": {"Cmd": ["sh"]},
                      "rootfs": {"type": "layers", "diff_ids": [diff]}}).encode()  # fmt: skip
    manifest = json.dumps([{"Config": "c.json", "RepoTags": ["evil:1"],
                            "Layers": ["l/layer.tar"]}]).encode()  # fmt: skip
    with tarfile.open(path, "w") as tf:
        for name, data in (("c.json", cfg), ("l/layer.tar", raw), ("manifest.json", manifest)):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))


def test_load_archives_and_a_layer_escaping_refused(world: World) -> None:
    arc = os.path.join(world.work, "app-save.tar")
    build.docker_archive(world.layout, "app", arc, "test/saved:1")
    r = world.cli("load", "-i", arc)
    assert r.returncode == 0 and "Loaded image: test/saved:1" in r.stdout, r.stderr
    r = world.cli("run", "--name", "saved", "test/saved:1", "-c", "test -e /etc/gone || echo ok")
    assert r.stdout == "ok\n", r.stderr
    oci = os.path.join(world.work, "app-oci.tar")
    build.run("skopeo", "copy", "--quiet", f"oci:{world.layout}:app", f"oci-archive:{oci}:x")
    r = world.cli("load", "-i", oci, "--tag", "test/ociarc:1")
    assert r.returncode == 0 and "Loaded image: test/ociarc:1" in r.stdout, r.stderr
    evil = os.path.join(world.work, "evil.tar")
    _evil_archive(evil)
    r = world.cli("load", "-i", evil)
    assert r.returncode == 1 and "'../evil'" in r.stderr and "Traceback" not in r.stderr
    assert not os.path.exists(os.path.join(world.images_dir(), "layers", "evil"))
    assert not os.path.exists(os.path.join(world.images_dir(), "evil"))


def test_userns_gets_a_chowned_rootfs(world: World) -> None:
    ref = f"{world.h}/test/busybox:1"
    assert world.pull(ref).returncode == 0
    script = "id -u; stat -c %u:%g /bin/busybox /www; touch /www/new && echo wrote"
    r = world.cli("run", "--name", "uns", "--userns=auto", ref, "sh", "-c", script)
    assert r.stdout == "0\n0:0\n1000:1000\nwrote\n", (r.stdout, r.stderr)
    info = world.agent.client.inspect("uns")
    assert info["image"]["rootfs_owner"] == "chown"
    base = int(info["userns"]["uid_map"].split()[1])
    upper = os.path.join(info["image"]["snapshot"], "upper")
    st = os.lstat(os.path.join(upper, "bin", "busybox"))  # copied up, owned by the range
    assert (st.st_uid, st.st_gid) == (base, base)
    world.agent.client.rm("uns")

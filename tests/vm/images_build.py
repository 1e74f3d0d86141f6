"""Test images built at test time by real tools, and a real registry to serve them.

umoci builds an OCI layout from busybox-static: ``base`` (busybox, /etc/passwd, files to be
deleted later), ``app`` (base + a layer deleting /etc/gone: a whiteout + a layer added with
``umoci raw add-layer`` holding an opaque /data/cache), a ``multi`` index (linux/amd64 ->
app, linux/arm64 -> base). skopeo pushes them to Debian's docker-registry (HTTP, or TLS with
a CA made by openssl here) and writes docker-save archives. Shared by the VM tests and the
benchmark.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import time
from dataclasses import dataclass

BUSYBOX = "/bin/busybox"
APPLETS = ("sh", "ls", "cat", "id", "sleep", "httpd", "echo", "test", "wget", "touch", "stat")
PASSWD = "root:x:0:0:root:/root:/bin/sh\nweb:x:1000:1000:web:/www:/bin/sh\n"
GROUP = "root:x:0:\nweb:x:1000:\n"


def run(*argv: str, timeout: float = 600) -> str:
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {r.returncode}: {r.stderr.strip()}")
    return r.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def opaque_layer(path: str) -> None:
    """An uncompressed layer: /data/cache opaque (hides the base's files) with one new file."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in (("data/cache/.wh..wh..opq", b""), ("data/cache/fresh", b"fresh\n")):
            if name == "data/cache/.wh..wh..opq":
                d = tarfile.TarInfo("data/cache")
                d.type, d.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(d)
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode = len(data), 0o644
            tf.addfile(ti, io.BytesIO(data))


def build_layout(work: str, extra_mb: int = 0, extra_layers: int = 0) -> str:
    """The OCI layout (tags base, app, multi[index]); ``extra_mb`` of random data spread over
    ``extra_layers`` more layers of app (the benchmark's image)."""
    layout = os.path.join(work, "layout")
    bundle = os.path.join(work, "bundle")
    run("umoci", "init", "--layout", layout)
    run("umoci", "new", "--image", f"{layout}:base")
    run("umoci", "unpack", "--image", f"{layout}:base", bundle)
    root = os.path.join(bundle, "rootfs")
    for d in ("bin", "etc", "www", "data/cache", "tmp"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    shutil.copy(BUSYBOX, os.path.join(root, "bin", "busybox"))
    for a in APPLETS:
        os.symlink("busybox", os.path.join(root, "bin", a))
    files = {
        "etc/passwd": PASSWD,
        "etc/group": GROUP,
        "etc/gone": "to be deleted\n",
        "www/index.html": "hello from an image\n",
        "data/cache/old": "hidden by the opaque dir\n",
    }
    for rel, text in files.items():
        with open(os.path.join(root, rel), "w") as f:
            f.write(text)
    os.chown(os.path.join(root, "www"), 1000, 1000)
    run("umoci", "repack", "--image", f"{layout}:base", bundle)
    shutil.rmtree(bundle)
    # app: base + a whiteout (umoci repack after a delete) + an opaque directory (raw layer)
    run("umoci", "unpack", "--image", f"{layout}:base", bundle)
    os.unlink(os.path.join(root, "etc/gone"))
    run("umoci", "repack", "--image", f"{layout}:app", bundle)
    run("umoci", "config", "--image", f"{layout}:base", "--config.cmd", "/bin/sh")
    opq = os.path.join(work, "opaque.tar")
    opaque_layer(opq)
    run("umoci", "raw", "add-layer", "--image", f"{layout}:app", opq)
    for i in range(extra_layers):
        with open(os.path.join(root, f"data{i}.bin"), "wb") as f:
            f.write(os.urandom(extra_mb * 1024 * 1024 // extra_layers))
        run("umoci", "repack", "--image", f"{layout}:app", bundle)
    run(
        "umoci", "config", "--image", f"{layout}:app",
        "--config.entrypoint", "/bin/sh", "--config.cmd", "-c",
        "--config.cmd", "echo app; cat /www/index.html",
        "--config.env", "GREETING=hi", "--config.workingdir", "/www",
        "--config.stopsignal", "SIGUSR1",
    )  # fmt: skip
    _add_index(layout, "multi", {"amd64": "app", "arm64": "base"})
    shutil.rmtree(bundle)
    return layout


def _add_index(layout: str, tag: str, arch_to_tag: dict[str, str]) -> None:
    with open(os.path.join(layout, "index.json")) as f:
        index = json.load(f)
    by_tag = {m["annotations"]["org.opencontainers.image.ref.name"]: m for m in index["manifests"]}
    entries = []
    for arch, t in arch_to_tag.items():
        m = {k: v for k, v in by_tag[t].items() if k != "annotations"}
        m["platform"] = {"architecture": arch, "os": "linux"}
        entries.append(m)
    blob = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": entries,
        }
    ).encode()
    with open(os.path.join(layout, "blobs", "sha256", _sha(blob)[7:]), "wb") as f:
        f.write(blob)
    index["manifests"].append(
        {
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": _sha(blob),
            "size": len(blob),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }
    )
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump(index, f)


def make_tls(work: str) -> tuple[str, str, str]:
    """(ca.crt, server.crt, server.key): a test CA and a certificate for 127.0.0.1."""
    d = os.path.join(work, "tls")
    os.makedirs(d, exist_ok=True)
    ca_key, ca, key, csr, crt = (os.path.join(d, n) for n in
                                 ("ca.key", "ca.crt", "srv.key", "srv.csr", "srv.crt"))  # fmt: skip
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key,
        "-out", ca, "-days", "2", "-subj", "/CN=pystats test CA")  # fmt: skip
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
        "-subj", "/CN=127.0.0.1")  # fmt: skip
    ext = os.path.join(d, "ext.cnf")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
        "-out", crt, "-days", "2", "-extfile", ext)  # fmt: skip
    return ca, crt, key


@dataclass
class RegistryProc:
    proc: subprocess.Popen[bytes]
    addr: str

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_registry(work: str, storage: str, tls: tuple[str, str] | None = None) -> RegistryProc:
    port = free_port()
    name = "tls" if tls else "http"
    cfg = os.path.join(work, f"registry-{name}.yml")
    lines = [
        "version: 0.1",
        "log:",
        "  level: warn",
        "storage:",
        "  filesystem:",
        f"    rootdirectory: {storage}",
        "http:",
        f"  addr: 127.0.0.1:{port}",
    ]
    if tls:
        lines += ["  tls:", f"    certificate: {tls[0]}", f"    key: {tls[1]}"]
    with open(cfg, "w") as f:
        f.write("\n".join(lines) + "\n")
    log = open(os.path.join(work, f"registry-{name}.log"), "wb")  # noqa: SIM115
    proc = subprocess.Popen(["docker-registry", "serve", cfg], stdout=log, stderr=log)
    addr = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return RegistryProc(proc, addr)
        if proc.poll() is not None:
            raise RuntimeError(f"docker-registry exited {proc.returncode}: see {cfg}")
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("docker-registry did not listen in 60 s")


def push(layout: str, tag: str, dest: str, *, all_: bool = False) -> None:
    """skopeo copy oci:LAYOUT:TAG docker://DEST over plain HTTP."""
    argv = ["skopeo", "copy", "--quiet", "--dest-tls-verify=false"]
    if all_:
        argv.append("--all")
    run(*argv, f"oci:{layout}:{tag}", f"docker://{dest}")


def docker_archive(layout: str, tag: str, path: str, name: str) -> None:
    run("skopeo", "copy", "--quiet", f"oci:{layout}:{tag}", f"docker-archive:{path}:{name}")

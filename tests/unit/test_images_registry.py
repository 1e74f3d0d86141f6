"""The registry client against a fake v2 registry (stdlib http.server on 127.0.0.1): Bearer
tokens got with Basic credentials, Basic auth, an index, redirected blobs, corrupt blobs."""

from __future__ import annotations

import base64
import http.server
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from tests.unit.images_fixtures import http_server, image_blobs, sha
from tests.unit.test_images_unpack import Entry
from workloads.images.auth import Credentials, load_credentials
from workloads.images.errors import DigestMismatch, ImageNotFound, RegistryError
from workloads.images.registry import parse_challenge
from workloads.images.service import ImageService, Progress

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="unpacking whiteouts needs root")

LAYER: list[Entry] = [("etc", "dir", None), ("etc/hello", "file", b"hi\n")]
BASIC = "Basic " + base64.b64encode(b"alice:secret").decode()


@dataclass
class Fake:
    auth: str = "bearer"  # "bearer", "basic" or "none"
    corrupt: bool = False
    blobs: dict[str, bytes] = field(default_factory=dict)
    manifests: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    port: int = 0


def _handler(fake: Fake) -> type[http.server.BaseHTTPRequestHandler]:
    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a: object) -> None:
            pass

        def _send(self, code: int, body: bytes = b"", ctype: str = "", **hdr: str) -> None:
            self.send_response(code)
            if ctype:
                self.send_header("Content-Type", ctype)
            for k, v in hdr.items():
                self.send_header(k.replace("_", "-"), v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            fake.log.append(self.path)
            got = self.headers.get("Authorization", "")
            if self.path.startswith("/token"):
                if got != BASIC:
                    return self._send(401)
                return self._send(200, json.dumps({"token": "T0K"}).encode())
            if self.path.startswith("/storage/"):
                data = fake.blobs[self.path.removeprefix("/storage/")]
                if fake.corrupt:
                    data = b"X" + data[1:]
                return self._send(200, data)
            want = {"bearer": "Bearer T0K", "basic": BASIC, "none": ""}[fake.auth]
            if want and got != want:
                realm = f'Bearer realm="http://127.0.0.1:{fake.port}/token",service="fake"'
                challenge = realm if fake.auth == "bearer" else 'Basic realm="fake"'
                err = {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]}
                return self._send(401, json.dumps(err).encode(), WWW_Authenticate=challenge)
            _repo, kind, ref = self.path.removeprefix("/v2/").rsplit("/", 2)
            if kind == "manifests" and ref in fake.manifests:
                body, ctype = fake.manifests[ref]
                return self._send(200, body, ctype)
            if kind == "blobs" and ref in fake.blobs:
                return self._send(307, Location=f"/storage/{ref}")
            err = {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]}
            self._send(404, json.dumps(err).encode())

    return H


@pytest.fixture
def fake() -> Iterator[Fake]:
    f = Fake()
    manifest, cfg, blobs = image_blobs([LAYER], {"Entrypoint": ["/bin/hello"]})
    for b in (cfg, *blobs):
        f.blobs[sha(b)] = b
    oci = "application/vnd.oci.image.manifest.v1+json"
    f.manifests[sha(manifest)] = (manifest, oci)
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {"mediaType": oci, "digest": "sha256:" + "0" * 64, "size": 9,
                 "platform": {"os": "linux", "architecture": "s390x"}},
                {"mediaType": oci, "digest": sha(manifest), "size": len(manifest),
                 "platform": {"os": "linux", "architecture": "amd64"}},
            ],
        }
    ).encode()  # fmt: skip
    f.manifests["1"] = (index, "application/vnd.oci.image.index.v1+json")
    with http_server(_handler(f)) as f.port:
        yield f


def test_bearer_token_index_and_redirects(tmp_path: str, fake: Fake) -> None:
    svc = ImageService(str(tmp_path))
    events: list[Progress] = []
    ref = f"127.0.0.1:{fake.port}/test/app:1"
    rec = svc.pull(ref, insecure=True, creds=Credentials("alice", "secret"), progress=events.append)
    assert svc.config(rec).entrypoint == ("/bin/hello",)
    assert svc.get(ref).id == rec.id and rec.manifest_digest in fake.manifests
    assert any(p.startswith("/token?") and "scope=repository%3Atest%2Fapp%3Apull" in p
               for p in fake.log)  # fmt: skip
    assert any(p.startswith("/storage/") for p in fake.log)  # the redirect was followed
    statuses = [e.status for e in events]
    assert "Downloading" in statuses and statuses.count("Pull complete") == 1
    # a second pull: every layer already there
    events.clear()
    svc.pull(ref, insecure=True, creds=Credentials("alice", "secret"), progress=events.append)
    assert "Already exists" in [e.status for e in events]


def test_basic_auth(tmp_path: str, fake: Fake) -> None:
    fake.auth = "basic"
    svc = ImageService(str(tmp_path))
    ref = f"127.0.0.1:{fake.port}/test/app:1"
    with pytest.raises(RegistryError, match="wants a user name and password"):
        svc.pull(ref, insecure=True)
    svc.pull(ref, insecure=True, creds=Credentials("alice", "secret"))
    assert svc.get(ref)


def test_wrong_credentials_and_missing(tmp_path: str, fake: Fake) -> None:
    svc = ImageService(str(tmp_path))
    with pytest.raises(RegistryError, match="HTTP 401"):
        svc.pull(f"127.0.0.1:{fake.port}/test/app:1", insecure=True,
                 creds=Credentials("alice", "wrong"))  # fmt: skip
    fake.auth = "none"
    with pytest.raises(ImageNotFound, match="manifest unknown"):
        svc.pull(f"127.0.0.1:{fake.port}/test/app:2", insecure=True)


def test_corrupt_blob_never_stored(tmp_path: str, fake: Fake) -> None:
    fake.auth, fake.corrupt = "none", True
    svc = ImageService(str(tmp_path))
    with pytest.raises(DigestMismatch, match="not stored"):
        svc.pull(f"127.0.0.1:{fake.port}/test/app:1", insecure=True)
    assert svc.summaries() == []
    for digest in svc.store.digests():
        assert digest not in fake.blobs  # only the manifests, which were verified


def test_https_refuses_a_plain_http_registry(tmp_path: str, fake: Fake) -> None:
    with pytest.raises(RegistryError, match="insecure-registry"):
        ImageService(str(tmp_path)).pull(f"127.0.0.1:{fake.port}/test/app:1")


def test_challenge_and_credentials_file(tmp_path: str) -> None:
    c = parse_challenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io"')
    assert c.scheme == "bearer" and c.params["service"] == "registry.docker.io"
    path = os.path.join(str(tmp_path), "config.json")
    with open(path, "w") as f:
        json.dump({"auths": {"https://index.docker.io/v1/": {"auth": "dTpw"}}}, f)
    assert load_credentials(path, "registry-1.docker.io") == Credentials("u", "p")
    assert load_credentials(path, "other.example") is None
    assert load_credentials(os.path.join(str(tmp_path), "none.json"), "x") is None

"""An OCI distribution (v2) client on the standard library: manifests, indexes, blobs.

HTTPS by default (the system's CAs, plus ``<certs_dir>/<host>/ca.crt`` as docker's
certs.d); plain HTTP only for hosts the caller calls insecure. A 401 is answered as docker
does: ``Bearer realm=...,service=...,scope=...`` -> a token from the realm (with the user's
credentials if any) and the request again; ``Basic`` -> the credentials. Redirects (blob
storage elsewhere) are followed, without the Authorization header when the host changes.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import ssl
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass

from workloads.images.auth import Credentials
from workloads.images.errors import DownloadBroken, ImageNotFound, RegistryError
from workloads.images.manifest import ACCEPT
from workloads.images.reference import Reference
from workloads.images.store import CHUNK, Opener

TIMEOUT_S = 60.0
MAX_REDIRECTS = 5
MAX_MANIFEST = 4 << 20
_PARAM = re.compile(r'(\w+)=(?:"([^"]*)"|([^,\s]*))')


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "bearer" or "basic"
    params: dict[str, str]


def parse_challenge(header: str) -> Challenge:
    scheme, _, rest = header.strip().partition(" ")
    params = {m.group(1).lower(): m.group(2) or m.group(3) for m in _PARAM.finditer(rest)}
    return Challenge(scheme.lower(), params)


def _registry_error(status: int, body: bytes, what: str) -> str:
    try:
        errs = json.loads(body).get("errors") or []
        msgs = [f"{e.get('code', '')}: {e.get('message', '')}".strip(": ") for e in errs]
    except (ValueError, AttributeError):
        msgs = []
    detail = "; ".join(m for m in msgs if m) or body[:200].decode(errors="replace").strip()
    return f"{what}: HTTP {status}" + (f" ({detail})" if detail else "")


class Registry:
    """One repository on one registry; not thread-safe (one per pull thread is cheap)."""

    def __init__(
        self,
        ref: Reference,
        *,
        insecure: bool = False,
        creds: Credentials | None = None,
        certs_dir: str | None = None,
    ) -> None:
        self.ref = ref
        self.host = ref.registry_host
        self.scheme = "http" if insecure else "https"
        self.creds = creds
        self.auth: str | None = None
        self._certs_dir = certs_dir
        self._ssl: ssl.SSLContext | None = None  # made on first use: loading CAs takes a while

    def _tls(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
            ca = os.path.join(self._certs_dir or "", self.host, "ca.crt")
            if self._certs_dir and os.path.isfile(ca):
                self._ssl.load_verify_locations(ca)
        return self._ssl

    def _conn(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        if scheme == "https":
            return http.client.HTTPSConnection(netloc, timeout=TIMEOUT_S, context=self._tls())
        return http.client.HTTPConnection(netloc, timeout=TIMEOUT_S)

    def _once(
        self, url: str, headers: dict[str, str]
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        u = urllib.parse.urlsplit(url)
        conn = self._conn(u.scheme, u.netloc)
        path = u.path + (f"?{u.query}" if u.query else "")
        try:
            conn.request("GET", path, headers=headers)
            return conn, conn.getresponse()
        except ssl.SSLError as e:
            conn.close()
            why = getattr(e, "verify_message", None)
            detail = f"certificate verify failed ({why})" if why else str(e.reason or e)
            raise RegistryError(
                f"TLS with {u.netloc} failed: {detail} (a private CA goes in "
                f"certs.d/{u.netloc}/ca.crt; plain HTTP needs --insecure-registry {u.netloc})"
            ) from None
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise RegistryError(f"cannot reach {u.netloc}: {e}") from None

    def get(
        self, path: str, accept: str | None = None, range_from: int = 0
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """GET ``/v2/<path>``, authenticating and following redirects; a 2xx response (the
        caller reads and closes it) or RegistryError / ImageNotFound. ``range_from``: ask for
        the bytes from there on (a 206 answer, or a 200 with all of them)."""
        url = f"{self.scheme}://{self.host}/v2/{path}"
        origin = urllib.parse.urlsplit(url).netloc
        tried_auth = False
        for _ in range(MAX_REDIRECTS + 2):
            headers = {"User-Agent": "pystats"}
            if accept:
                headers["Accept"] = accept
            if range_from:
                headers["Range"] = f"bytes={range_from}-"
            if self.auth and urllib.parse.urlsplit(url).netloc == origin:
                headers["Authorization"] = self.auth
            conn, resp = self._once(url, headers)
            if resp.status in (301, 302, 303, 307, 308):
                loc = resp.getheader("Location") or ""
                conn.close()
                url = urllib.parse.urljoin(url, loc)
                continue
            if resp.status == 401 and not tried_auth:
                challenge = resp.getheader("WWW-Authenticate") or ""
                resp.read()
                conn.close()
                self._authenticate(parse_challenge(challenge))
                tried_auth = True
                continue
            if 200 <= resp.status < 300:
                return conn, resp
            if resp.status == 416 and range_from:  # not satisfiable: ask for all of it
                resp.read(65536)
                conn.close()
                return self.get(path, accept)
            body = resp.read(65536)
            conn.close()
            what = f"{self.ref.repo}: GET {path}"
            if resp.status == 404:
                raise ImageNotFound(_registry_error(resp.status, body, what))
            if resp.status in (401, 403):
                hint = "" if self.creds else " (no credentials given: pystats pull --authfile)"
                raise RegistryError(_registry_error(resp.status, body, what) + hint)
            raise RegistryError(_registry_error(resp.status, body, what))
        raise RegistryError(f"{self.ref.repo}: too many redirects for {path}")

    def _authenticate(self, ch: Challenge) -> None:
        if ch.scheme == "basic":
            if self.creds is None:
                raise RegistryError(f"{self.host} wants a user name and password (--authfile)")
            self.auth = self.creds.basic()
            return
        if ch.scheme != "bearer" or "realm" not in ch.params:
            raise RegistryError(f"{self.host}: unsupported authentication {ch.scheme!r}")
        query = {"service": ch.params.get("service", "")}
        query["scope"] = ch.params.get("scope") or f"repository:{self.ref.path}:pull"
        realm = urllib.parse.urlsplit(ch.params["realm"])
        url = realm._replace(query=urllib.parse.urlencode(query)).geturl()
        headers = {"User-Agent": "pystats"}
        if self.creds is not None:
            headers["Authorization"] = self.creds.basic()
        conn, resp = self._once(url, headers)
        try:
            body = resp.read(1 << 20)
        finally:
            conn.close()
        if resp.status != 200:
            raise RegistryError(_registry_error(resp.status, body, f"token from {realm.netloc}"))
        try:
            doc = json.loads(body)
            token = doc.get("token") or doc.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise RegistryError(f"the token service {realm.netloc} sent no token")
        self.auth = f"Bearer {token}"

    def manifest(self, lookup: str) -> tuple[bytes, str]:
        """The manifest (or index) bytes and their media type."""
        conn, resp = self.get(f"{self.ref.path}/manifests/{lookup}", ACCEPT)
        try:
            data = resp.read(MAX_MANIFEST + 1)
        finally:
            conn.close()
        if len(data) > MAX_MANIFEST:
            raise RegistryError(f"{self.ref.repo}: manifest {lookup} is too large")
        ctype = (resp.getheader("Content-Type") or "").split(";")[0].strip()
        return data, ctype

    def blob_from(self, digest: str) -> Opener:
        """The content store's opener of a blob: from a byte offset with a Range request where
        the registry (or the storage it redirects to) honours it, else from the start."""

        def open_at(offset: int) -> tuple[int, Iterator[bytes]]:
            conn, resp = self.get(f"{self.ref.path}/blobs/{digest}", range_from=offset)
            start = 0
            if resp.status == 206:
                crange = resp.getheader("Content-Range") or ""
                if not crange.startswith(f"bytes {offset}-"):
                    conn.close()
                    raise RegistryError(f"blob {digest}: asked for bytes {offset}-, got {crange!r}")
                start = offset
            return start, _body(conn, resp, digest)

        return open_at


def _body(
    conn: http.client.HTTPConnection, resp: http.client.HTTPResponse, digest: str
) -> Iterator[bytes]:
    try:
        while True:
            try:
                block = resp.read1(CHUNK)  # what has arrived: progress, and partial files, grow
            except (OSError, http.client.HTTPException) as e:
                raise DownloadBroken(f"blob {digest}: download broken: {e}") from None
            if not block:
                if resp.length:  # http.client's read(n) ends quietly short of Content-Length
                    raise DownloadBroken(
                        f"blob {digest}: download broken: {resp.length} bytes short"
                    )
                break
            yield block
    finally:
        conn.close()

"""Docker reference parsing (docker's own rules: distribution/reference)."""

from __future__ import annotations

import pytest

from workloads.images.reference import BadReference, parse

D = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "domain", "path", "tag", "digest"),
    [
        ("busybox", "docker.io", "library/busybox", "latest", None),
        ("busybox:1.36", "docker.io", "library/busybox", "1.36", None),
        ("team/app", "docker.io", "team/app", "latest", None),
        ("docker.io/library/nginx:1", "docker.io", "library/nginx", "1", None),
        ("localhost/app", "localhost", "app", "latest", None),
        ("localhost:5000/app:v2", "localhost:5000", "app", "v2", None),
        ("127.0.0.1:5000/a/b/c", "127.0.0.1:5000", "a/b/c", "latest", None),
        ("quay.io/x/y@" + D, "quay.io", "x/y", None, D),
        ("host.example/x:t@" + D, "host.example", "x", "t", D),
        ("my_app.v-2__x", "docker.io", "library/my_app.v-2__x", "latest", None),
    ],
)
def test_parse(text: str, domain: str, path: str, tag: str | None, digest: str | None) -> None:
    r = parse(text)
    assert (r.domain, r.path, r.tag, r.digest) == (domain, path, tag, digest)


def test_strings() -> None:
    r = parse("busybox")
    assert str(r) == "docker.io/library/busybox:latest"
    assert r.familiar == "busybox:latest"
    assert r.registry_host == "registry-1.docker.io"
    assert parse("localhost:5000/app").registry_host == "localhost:5000"
    assert parse("x@" + D).lookup == D
    assert parse("x:t").lookup == "t"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "invalid"),
        ("Busybox", "lowercase"),
        ("a//b", "bad name part"),
        ("a:b:c", "bad name part"),
        ("x:" + "t" * 129, "bad tag"),
        ("x@sha256:abc", "bad digest"),
        ("x@md5:" + "0" * 32, "bad digest"),
        (" busybox", "invalid"),
        ("-x", "bad name part"),
    ],
)
def test_refused(text: str, why: str) -> None:
    with pytest.raises(BadReference, match=why):
        parse(text)

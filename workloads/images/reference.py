"""Docker image references: ``busybox``, ``host:5000/team/app:1.2``, ``name@sha256:...``.

The rules are docker's (distribution/reference): the first path component is a registry only
if it has a ``.`` or ``:`` or is ``localhost``; else the registry is docker.io, where a one-part
name lives under ``library/``. No tag and no digest means ``:latest``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_DOMAIN = "docker.io"
DOCKER_HUB_HOST = "registry-1.docker.io"  # where docker.io's API is served
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_DOMAIN = re.compile(r"^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$")


class BadReference(ValueError):
    """Not an image reference; the message names it and says why."""


@dataclass(frozen=True)
class Reference:
    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def repo(self) -> str:
        """``domain/path``, the name a tag belongs to."""
        return f"{self.domain}/{self.path}"

    def __str__(self) -> str:
        out = self.repo
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    @property
    def familiar(self) -> str:
        """As docker shows it: ``busybox:latest``, ``localhost:5000/app:1``."""
        name = self.repo.removeprefix(f"{DEFAULT_DOMAIN}/").removeprefix("library/")
        if self.tag:
            name += f":{self.tag}"
        if self.digest:
            name += f"@{self.digest}"
        return name

    @property
    def registry_host(self) -> str:
        return DOCKER_HUB_HOST if self.domain == DEFAULT_DOMAIN else self.domain

    @property
    def lookup(self) -> str:
        """What the registry is asked for: the digest if given, else the tag."""
        return self.digest or self.tag or "latest"


def is_digest(text: str) -> bool:
    return bool(_DIGEST.match(text))


def parse(text: str) -> Reference:
    """A reference from user text; BadReference if it is not one."""
    orig = text
    if not text or len(text) > 255 or text != text.strip():
        raise BadReference(f"invalid image reference {orig!r}")
    digest = None
    if "@" in text:
        text, _, digest = text.partition("@")
        if not is_digest(digest):
            raise BadReference(f"invalid image reference {orig!r}: bad digest {digest!r}")
    tag = None
    slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > slash:
        text, tag = text[:colon], text[colon + 1 :]
        if not _TAG.match(tag):
            raise BadReference(f"invalid image reference {orig!r}: bad tag {tag!r}")
    first, sep, rest = text.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        domain, path = first, rest
        if not _DOMAIN.match(domain):
            raise BadReference(f"invalid image reference {orig!r}: bad registry {domain!r}")
    else:
        domain, path = DEFAULT_DOMAIN, text
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = f"library/{path}"
    for comp in path.split("/"):
        if not _COMPONENT.match(comp):
            why = "names are lowercase" if comp.lower() != comp else f"bad name part {comp!r}"
            raise BadReference(f"invalid image reference {orig!r}: {why}")
    if tag is None and digest is None:
        tag = "latest"
    return Reference(domain=domain, path=path, tag=tag, digest=digest)

"""Registry credentials from a docker/podman auth file: kept apart from the registry client so
that the CLI reads them without importing the client, the content store or TLS."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from workloads.images.errors import ImageError
from workloads.images.reference import DOCKER_HUB_HOST


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def basic(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()


def load_credentials(auth_file: str | None, host: str) -> Credentials | None:
    """The user and password for ``host`` in a docker/podman auth file (``auths.<host>.auth``
    = base64 of user:password)."""
    if not auth_file:
        return None
    try:
        with open(auth_file, "rb") as f:
            doc = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise ImageError(f"cannot read the credentials file {auth_file}: {e}") from None
    auths = doc.get("auths") if isinstance(doc, dict) else None
    if not isinstance(auths, dict):
        return None
    keys = [host, f"https://{host}", f"http://{host}"]
    if host == DOCKER_HUB_HOST:
        keys.append("https://index.docker.io/v1/")  # docker login's key for Docker Hub
    for key in keys:
        entry = auths.get(key)
        if isinstance(entry, dict) and isinstance(entry.get("auth"), str):
            try:
                user, _, pw = base64.b64decode(entry["auth"]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                raise ImageError(f"{auth_file}: the entry for {host} is not base64") from None
            return Credentials(user, pw)
    return None

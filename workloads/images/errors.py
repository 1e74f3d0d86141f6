"""Image errors: one line each, for the user; ``status`` is the HTTP status the API answers."""

from __future__ import annotations


class ImageError(Exception):
    status = 400


class ImageNotFound(ImageError):
    status = 404


class ImageInUse(ImageError):
    status = 409


class DigestMismatch(ImageError):
    """Content whose digest or size is not the one asked for: never stored."""

    status = 502


class UnsafeLayer(ImageError):
    """A layer entry that would land outside its directory (or is otherwise refused)."""


class RegistryError(ImageError):
    status = 502


class DownloadBroken(RegistryError):
    """A blob's download stopped mid-way (the connection broke): what arrived is kept, and
    the download continues from there (an HTTP Range request) if the registry allows it."""

"""The runtime's user-error type, in a module of its own so that every part of the spec (spec.py,
security.py, ...) can raise it without importing the others."""

from __future__ import annotations


class SpecError(ValueError):
    """A user error in a workload spec; the message is shown as is."""

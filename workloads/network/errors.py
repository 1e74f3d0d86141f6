"""Network errors: one line each, shown to the user as they are."""

from __future__ import annotations


class NetworkError(Exception):
    """A user's mistake or a refused request (unknown network, busy port, bad spec)."""


class NetworkNotFound(NetworkError):
    pass


class CniError(NetworkError):
    """A plugin's error result (CNI spec: code, msg, details), or a plugin that failed to run."""

    def __init__(self, plugin: str, command: str, code: int, msg: str, details: str = "") -> None:
        self.plugin, self.command, self.code, self.msg, self.details = (
            plugin,
            command,
            code,
            msg,
            details,
        )
        text = f"CNI {command} failed in plugin {plugin!r} (code {code}): {msg}"
        if details and details != msg:
            text += f": {details}"
        super().__init__(text)

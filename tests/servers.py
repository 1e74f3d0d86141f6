"""Helpers for tests that serve with aiohttp."""

from __future__ import annotations

import asyncio

from aiohttp import web


async def until_no_connections(runner: web.AppRunner, what: str = "a peer that left") -> None:
    """Wait (up to 30 s) until the server holds no connection: it noticed its peers left."""
    server = runner.server
    assert server is not None
    for _ in range(600):
        if not server.connections:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the server still holds the connection of {what}")

"""Query-string parsing shared by the API's routes: one spelling of a boolean flag."""

from __future__ import annotations

from aiohttp import web

_TRUE = frozenset(("1", "true", "yes"))


def flag(request: web.Request, key: str) -> bool:
    """?key=1|true|yes is set; absent, empty or anything else is not."""
    return request.query.get(key, "").lower() in _TRUE

"""GET /metrics on aiohttp: the daemon mounts it on its own app, or serves it alone on TCP.

Default listen address: 127.0.0.1:9753 (loopback only; a scrape exposes cgroup names).
Content negotiation: OpenMetrics 1.0 when the client's Accept asks for it (Prometheus does),
else the Prometheus text format 0.0.4.
"""

from __future__ import annotations

from aiohttp import web

from agent.exporter.exporter import Exporter
from agent.exporter.render import OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9753
EXPORTER_KEY = web.AppKey("pystats_exporter", Exporter)


def wants_openmetrics(accept: str) -> bool:
    """True when the Accept header lists application/openmetrics-text with a q above 0."""
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        if media != "application/openmetrics-text":
            continue
        q = next((p[2:] for p in params if p.startswith("q=")), "1")
        try:
            if float(q) > 0:
                return True
        except ValueError:
            continue
    return False


async def _metrics(request: web.Request) -> web.StreamResponse:
    exporter = request.app[EXPORTER_KEY]
    om = wants_openmetrics(request.headers.get("Accept", ""))
    body, own = await exporter.render_parts_async(openmetrics=om)
    # Two writes instead of one concatenation: the cached body can be tens of MB.
    resp = web.StreamResponse()
    # Set the header verbatim: aiohttp's content_type setter would drop the version parameter.
    resp.headers["Content-Type"] = OPENMETRICS_CONTENT_TYPE if om else TEXT_CONTENT_TYPE
    resp.content_length = len(body) + len(own)
    try:
        await resp.prepare(request)
        await resp.write(body)
        await resp.write(own)
        await resp.write_eof()
    except ConnectionError:
        # The scraper gave up (its scrape timeout) or went away: nothing to answer, no traceback.
        # (ConnectionResetError, or plain ConnectionError when it left while a write drained.)
        pass
    return resp


def add_metrics_routes(app: web.Application, exporter: Exporter, path: str = "/metrics") -> None:
    """Mount GET ``path`` (default /metrics) serving ``exporter`` on an existing app."""
    app[EXPORTER_KEY] = exporter
    app.router.add_get(path, _metrics)


async def serve_metrics(
    exporter: Exporter, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT
) -> web.AppRunner:
    """Serve /metrics alone on ``host:port``; ``await runner.cleanup()`` stops it."""
    app = web.Application()
    add_metrics_routes(app, exporter)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner


def bound_port(runner: web.AppRunner) -> int:
    """The TCP port actually bound (useful with port=0)."""
    for addr in runner.addresses:
        if isinstance(addr, tuple):
            return int(addr[1])
    raise RuntimeError("metrics server is not listening on TCP")

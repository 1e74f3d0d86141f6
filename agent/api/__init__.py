"""The agent's HTTP/JSON API on its Unix socket: route modules and their small clients.

Server modules (aiohttp) are imported by the daemon only; the client modules use agent.api.wire
(not http.client, which loads email and ssl) so that CLI commands start fast.
"""

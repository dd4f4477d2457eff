"""Counting Discord REST calls for /metrics through discord.py's public `http_trace` option (an aiohttp
`TraceConfig` its HTTP client installs on its session): every answer, each retry and each 429 included, labelled
by route template (`POST /channels/{id}/messages`) so labels stay few and never carry an id or a token."""

from __future__ import annotations

import re
from collections.abc import Callable
from types import SimpleNamespace

import aiohttp
import yarl

Observe = Callable[[str, int], None]  # (route template, HTTP status), e.g. `Metrics.api_call` bound

_WORD = re.compile(r"^[a-z@][a-z0-9_@-]{0,31}$")  # a fixed path word (channels, messages, @me, callback …)


def route_of(method: str, url: yarl.URL, base_path: str) -> str | None:
    """`POST /channels/{id}/messages` for a call under the API's base path; None for anything else (the gateway's
    WebSocket, a CDN). Ids, tokens and emoji become placeholders."""
    path = url.path
    if not path.startswith(base_path):
        return None
    parts = []
    for segment in path[len(base_path) :].strip("/").split("/"):
        if segment.isdigit():
            parts.append("{id}")
        elif _WORD.match(segment):
            parts.append(segment)
        else:
            parts.append("{param}")  # an interaction or webhook token, an emoji
    return f"{method.upper()} /" + "/".join(parts)


def api_trace(api_url: str, observe: Observe) -> aiohttp.TraceConfig:
    """A trace that tells `observe` of every REST answer under `api_url` (DISCORD_API_URL)."""
    base_path = yarl.URL(api_url).path.rstrip("/")
    trace = aiohttp.TraceConfig()

    async def on_request_end(
        session: aiohttp.ClientSession, context: SimpleNamespace, params: aiohttp.TraceRequestEndParams
    ) -> None:
        route = route_of(params.method, params.url, base_path)
        if route is not None:
            observe(route, params.response.status)

    trace.on_request_end.append(on_request_end)
    return trace

"""Per-request bookkeeping kept deliberately small: request id, request metrics, the access
log, and absolute ``Location``/``Link`` headers when ``api.publicUrl`` is configured.

The access log (logger ``netweave.access``, on at INFO, the default) replaces uvicorn's: one
line per request with the route's path, status, duration and request id, formatted directly
and written by :func:`netweave.logging.log_access` without a ``LogRecord``, so it costs a few
microseconds, not a pass through the structured-logging chain.

An ASGI middleware (runs after routing, so the route *template* labels the metrics and the
label set stays bounded). The request id is a client's well-formed ``X-Request-ID`` or a new
one; it is bound for every log line of the request and returned in the response.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from netweave.api.auth import scope_header
from netweave.logging import ACCESS_LOGGER, bind_request_id, log_access
from netweave.operations.metrics import Metrics


def _absolute_links(scope: Scope, headers: list[Any]) -> list[Any]:
    """Behind a proxy (``api.publicUrl``), ``Location`` and ``Link`` name the public URL."""
    settings = scope["app"].state.get("settings")
    public_url = settings.api.public_url if settings is not None else None
    if not public_url:
        return headers
    base = public_url.rstrip("/").encode()
    fixed = []
    for name, value in headers:
        if name == b"location" and value.startswith(b"/"):
            value = base + value
        elif name == b"link" and value.startswith(b"</"):
            value = b"<" + base + value[1:]
        fixed.append((name, value))
    return fixed


def observability_middleware_factory(metrics: Metrics) -> Any:
    access = logging.getLogger(ACCESS_LOGGER)
    requests = metrics.requests
    durations = metrics.request_duration

    def middleware(app: ASGIApp) -> ASGIApp:
        async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
            if str(scope["type"]) != "http":
                await app(scope, receive, send)
                return
            incoming = scope_header(scope, b"x-request-id")
            request_id = bind_request_id(incoming).encode()
            status = 500
            started = time.perf_counter()

            async def send_wrapper(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    headers = list(message.get("headers", ()))
                    if status in (201, 202):
                        headers = _absolute_links(scope, headers)
                    headers.append((b"x-request-id", request_id))
                    message["headers"] = headers
                await send(message)

            try:
                await app(scope, receive, send_wrapper)
            finally:
                route = scope.get("path_template") or "unmatched"
                method = str(scope.get("method", ""))
                elapsed = time.perf_counter() - started
                metrics.child(requests, method, route, str(status)).inc()
                metrics.child(durations, method, route).observe(elapsed)
                if access.isEnabledFor(logging.INFO):
                    log_access(
                        method,
                        scope.get("path", ""),
                        status,
                        round(elapsed * 1000, 2),
                        request_id.decode(),
                    )

        return wrapped

    return middleware

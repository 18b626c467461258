"""Per-request bookkeeping kept deliberately small: request id and request metrics.

An ASGI middleware (runs after routing, so the route *template* labels the metrics and the
label set stays bounded). The request id is a client's well-formed ``X-Request-ID`` or a new
one; it is bound for every log line of the request and returned in the response.
"""

from __future__ import annotations

import time
from typing import Any

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from netweave.logging import bind_request_id
from netweave.operations.metrics import Metrics


def observability_middleware_factory(metrics: Metrics) -> Any:
    requests = metrics.requests
    durations = metrics.request_duration
    # ``labels()`` hashes and locks on every call; routes x methods x codes is a small set.
    children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def middleware(app: ASGIApp) -> ASGIApp:
        async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
            if str(scope["type"]) != "http":
                await app(scope, receive, send)
                return
            incoming = None
            for name, value in scope["headers"]:
                if name == b"x-request-id":
                    incoming = value.decode("latin-1")
                    break
            request_id = bind_request_id(incoming).encode()
            status = 500
            started = time.perf_counter()

            async def send_wrapper(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    headers = list(message.get("headers", ()))
                    headers.append((b"x-request-id", request_id))
                    message["headers"] = headers
                await send(message)

            try:
                await app(scope, receive, send_wrapper)
            finally:
                route = scope.get("path_template") or "unmatched"
                method = str(scope.get("method", ""))
                key = (method, route, status)
                pair = children.get(key)
                if pair is None:
                    pair = (
                        requests.labels(method=method, route=route, code=str(status)),
                        durations.labels(method=method, route=route),
                    )
                    children[key] = pair
                pair[0].inc()
                pair[1].observe(time.perf_counter() - started)

        return wrapped

    return middleware

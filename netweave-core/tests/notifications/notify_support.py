"""A subscriber on 127.0.0.1 for notification tests: callbacks and an OAuth2 token endpoint.

``/cb`` answers the test GET with ``get_status`` and each POSTed event with 500 for its first
``fail_first`` attempts, then 204. Every request is recorded (body, Authorization header and
the status given). ``/token`` issues client-credentials tokens for one client.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

from litestar import Litestar, Request, Response, get, post
from netweave.logging import configure_logging
from support.serving import served_in_thread


@dataclass
class Receipt:
    body: dict[str, Any]
    authorization: str | None
    status: int


@dataclass
class Subscriber:
    fail_first: int = 0
    get_status: int = 204
    #: When set, callbacks need exactly this Authorization header (else 401).
    expect_authorization: str | None = None
    #: Callbacks need a Bearer token the token endpoint issued and did not revoke.
    require_token: bool = False
    client_id: str = "smo-client"
    client_secret: str = "smo-secret-value-123"
    token_lifetime: int = 3600
    receipts: list[Receipt] = field(default_factory=list)
    gets: list[str | None] = field(default_factory=list)
    token_requests: int = 0
    valid_tokens: set[str] = field(default_factory=set)
    attempts: dict[str, int] = field(default_factory=dict)
    _counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def accepted(self) -> list[dict[str, Any]]:
        """Bodies answered 204, in arrival order."""
        return [r.body for r in self.receipts if r.status == 204]

    def unique_accepted(self) -> list[dict[str, Any]]:
        """What a subscriber de-duplicating by ``id`` keeps, in arrival order."""
        seen: set[str] = set()
        out = []
        for body in self.accepted():
            if body["id"] not in seen:
                seen.add(body["id"])
                out.append(body)
        return out

    def revoke_tokens(self) -> None:
        self.valid_tokens.clear()

    def _authorized(self, header: str | None) -> bool:
        if self.expect_authorization is not None and header != self.expect_authorization:
            return False
        if self.require_token:
            if not header or not header.startswith("Bearer "):
                return False
            return header.removeprefix("Bearer ") in self.valid_tokens
        return True

    def app(self) -> Litestar:
        subscriber = self

        @get("/cb", status_code=204)
        async def test_get(request: Request[Any, Any, Any]) -> Response[None]:
            header = request.headers.get("authorization")
            subscriber.gets.append(header)
            if not subscriber._authorized(header):
                return Response(None, status_code=401)
            return Response(None, status_code=subscriber.get_status)

        @post("/cb", status_code=204)
        async def notify(request: Request[Any, Any, Any]) -> Response[None]:
            header = request.headers.get("authorization")
            body = json.loads(await request.body())
            if not subscriber._authorized(header):
                subscriber.receipts.append(Receipt(body, header, 401))
                return Response(None, status_code=401)
            seen = subscriber.attempts.get(body["id"], 0) + 1
            subscriber.attempts[body["id"]] = seen
            status = 500 if seen <= subscriber.fail_first else 204
            subscriber.receipts.append(Receipt(body, header, status))
            return Response(None, status_code=status)

        @post("/token", status_code=200)
        async def token(request: Request[Any, Any, Any]) -> Response[Any]:
            subscriber.token_requests += 1
            expected = (
                "Basic "
                + base64.b64encode(
                    f"{subscriber.client_id}:{subscriber.client_secret}".encode()
                ).decode()
            )
            form = await request.form()
            if (
                request.headers.get("authorization") != expected
                or form.get("grant_type") != "client_credentials"
            ):
                return Response({"error": "invalid_client"}, status_code=401)
            issued = f"tok-{next(subscriber._counter)}"
            subscriber.valid_tokens.add(issued)
            return Response(
                {
                    "access_token": issued,
                    "token_type": "Bearer",
                    "expires_in": subscriber.token_lifetime,
                },
                status_code=200,
            )

        # No logging_config: Litestar would otherwise reconfigure the root logger (and drop
        # pytest's capture handler) when this app is built inside a test.
        return Litestar([test_get, notify, token], logging_config=None)


@contextmanager
def gateway_log_output() -> Iterator[io.StringIO]:
    """What the gateway's log pipeline (netweave.logging, JSON, DEBUG) writes while the block
    runs."""
    buffer = io.StringIO()
    root = logging.getLogger()
    level = root.level
    # SQLAlchemy logs each statement with its parameters at INFO on this logger (its own
    # default is WARNING): the output then holds what is written to the database, too.
    statements = logging.getLogger("sqlalchemy.engine.Engine")
    statements_level = statements.level
    statements.setLevel(logging.INFO)
    configure_logging("json", "DEBUG", stream=buffer)
    try:
        yield buffer
    finally:
        for handler in list(root.handlers):
            if handler.get_name() == "netweave":
                root.removeHandler(handler)
        root.setLevel(level)
        statements.setLevel(statements_level)


@asynccontextmanager
async def subscriber_server(subscriber: Subscriber) -> AsyncIterator[str]:
    """Serve ``subscriber`` on 127.0.0.1; yields its base URL."""
    async with served_in_thread(subscriber.app()) as base_url:
        yield base_url

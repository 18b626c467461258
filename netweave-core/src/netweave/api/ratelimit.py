"""Rate limiting of mutating ``/o2dms`` requests per client (``api.rateLimit``).

A token bucket per client: ``requests`` tokens, refilled at ``requests / windowSeconds`` per
second, so a client may burst ``requests`` changes and then keeps that average. An empty bucket
is a 429 problem with ``Retry-After`` (whole seconds until the next token). Reads (GET, HEAD,
OPTIONS) are never limited.

The client is the authenticated subject (this middleware runs after the auth middleware, so a
JWT's ``sub``, a stored token's id, or the static token), falling back to the peer address.
Litestar's ``RateLimitConfig`` middleware was not used: it is app-level and runs before
authentication, so it can only key by address or by an unverified header; it sends no
``Retry-After``; and it keeps one timestamp per request in its store. State is per process:
with N replicas behind a load balancer, a client gets up to N times ``requests`` per window
unless the balancer keeps it on one replica.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict

from litestar.exceptions import TooManyRequestsException
from litestar.types import ASGIApp, Receive, Scope, Send

from netweave.config import RateLimitSettings

_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Buckets kept at most; the least recently used go first (a full bucket loses nothing).
MAX_CLIENTS = 100_000


class TokenBucketLimiter:
    def __init__(
        self, requests: int, window_seconds: float, *, max_clients: int = MAX_CLIENTS
    ) -> None:
        if requests < 1 or window_seconds <= 0:
            raise ValueError("requests must be ≥ 1 and window_seconds > 0")
        self.capacity = float(requests)
        self.rate = requests / window_seconds
        self._max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    @classmethod
    def from_settings(cls, settings: RateLimitSettings) -> TokenBucketLimiter | None:
        if not settings.enabled:
            return None
        return cls(settings.requests, settings.window_seconds)

    def take(self, client: str, now: float | None = None) -> float | None:
        """Spend one token: ``None`` when allowed, else seconds until one is available."""
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.pop(client, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            self._buckets[client] = (tokens - 1.0, now)
            wait = None
        else:
            self._buckets[client] = (tokens, now)
            wait = (1.0 - tokens) / self.rate
        while len(self._buckets) > self._max_clients:
            self._buckets.popitem(last=False)
        return wait


def client_key(scope: Scope) -> str:
    """The authenticated subject (set by the auth middleware), else the peer address."""
    principal = scope.get("state", {}).get("principal")
    subject = getattr(principal, "subject", None)
    if isinstance(subject, str) and subject:
        return f"subject:{subject}"
    client = scope.get("client")
    return f"address:{client[0] if client else 'unknown'}"


def rate_limit_middleware(app: ASGIApp) -> ASGIApp:
    """Router middleware after ``auth_middleware``; a no-op unless ``api.rateLimit.enabled``."""

    async def limit(scope: Scope, receive: Receive, send: Send) -> None:
        limiter: TokenBucketLimiter | None = scope["app"].state.get("rate_limiter")
        if limiter is not None and str(scope.get("method", "GET")) not in _READ_METHODS:
            wait = limiter.take(client_key(scope))
            if wait is not None:
                retry_after = max(1, math.ceil(wait))
                raise TooManyRequestsException(
                    detail=f"too many changes from this client; retry in {retry_after} s",
                    headers={"Retry-After": str(retry_after)},
                )
        await app(scope, receive, send)

    return limit


__all__ = ["TokenBucketLimiter", "client_key", "rate_limit_middleware"]

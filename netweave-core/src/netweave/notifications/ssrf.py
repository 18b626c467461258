"""SSRF guard for URLs the gateway calls on a client's behalf (callbacks, token endpoints).

A URL is refused when its host resolves to an address that is not globally routable —
loopback, private, link-local, unspecified, multicast, reserved, shared (CGNAT) — or to a
cloud metadata endpoint, unless configuration allows it (``notifications.allowPrivateCallbacks``
or ``notifications.allowedCidrs``; metadata endpoints only through ``allowedCidrs``). A host that
does not resolve is refused too: letting DNS failures through (as the Go original did) invites
DNS rebinding.

Checking a name once and connecting later would still leave the rebinding window open, so the
HTTP client for callbacks (:func:`guarded_client`) resolves and checks again *at connect time*
and connects to the checked address itself; TLS still verifies the certificate against the
URL's host name.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from netweave.errors import Unprocessable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Instance metadata services (AWS/GCP/Azure/OpenStack, AWS ECS, AWS IPv6, Alibaba).
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)
METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata.goog", "metadata"})
#: Bound on one name resolution, so a slow resolver cannot hold a request.
RESOLVE_TIMEOUT = 5.0


class CallbackRefused(Unprocessable):
    """The URL's host is not allowed (or does not resolve). A 422 naming the field: the URL
    may be well-formed (the API document's pattern), what its host resolves to is refused."""


def classify(address: IPAddress) -> str | None:
    """Why ``address`` is not a public unicast address (``None`` when it is one)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address.is_private:
        return "private"
    if address.is_reserved or not address.is_global:
        return "reserved or not globally routable"
    return None


class CallbackPolicy:
    """Which addresses the gateway may call back (see the module docstring)."""

    def __init__(
        self,
        *,
        allow_private: bool = False,
        allowed_cidrs: Iterable[str] = (),
        resolve_timeout: float = RESOLVE_TIMEOUT,
        allow_hint: str = "notifications.allowPrivateCallbacks or notifications.allowedCidrs",
    ) -> None:
        self.allow_private = allow_private
        #: The settings a refusal names as the way to allow an address.
        self.allow_hint = allow_hint
        self.allowed: tuple[IPNetwork, ...] = tuple(
            ipaddress.ip_network(c, strict=False) for c in allowed_cidrs
        )
        self._resolve_timeout = resolve_timeout

    def refusal(self, address: IPAddress) -> str | None:
        """Why the gateway may not connect to ``address``, or ``None`` when it may."""
        plain = address
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            plain = address.ipv4_mapped
        if any(plain in network for network in self.allowed):
            return None
        reason = classify(plain)
        if reason is None:
            return None
        if self.allow_private and plain not in METADATA_ADDRESSES:
            return None
        return reason

    async def resolve(self, host: str, port: int, *, field: str = "callbackUri") -> list[str]:
        """The host's addresses, each checked; raises :class:`CallbackRefused`."""
        name = host.strip("[]").rstrip(".").lower()
        if name in METADATA_HOSTS:
            raise CallbackRefused(
                f"{field}: host {name} is a cloud metadata service", details={"field": field}
            )
        try:
            async with asyncio.timeout(self._resolve_timeout):
                infos = await self._lookup(name, port)
        except (OSError, TimeoutError, UnicodeError):
            raise CallbackRefused(
                f"{field}: host {name} does not resolve", details={"field": field}
            ) from None
        addresses: list[str] = []
        for info in infos:
            raw = str(info[4][0]).split("%", 1)[0]  # drop an IPv6 zone id
            address = ipaddress.ip_address(raw)
            reason = self.refusal(address)
            if reason is not None:
                # One bad address refuses the name: a client cannot pick which one we use.
                if address.is_link_local and "link-local" not in reason:
                    reason = f"{reason} (link-local)"
                raise CallbackRefused(
                    f"{field}: host {name} resolves to {address}, which is {reason}; "
                    f"allow it with {self.allow_hint}",
                    details={"field": field, "address": str(address), "reason": reason},
                )
            if raw not in addresses:
                addresses.append(raw)
        if not addresses:
            raise CallbackRefused(
                f"{field}: host {name} does not resolve", details={"field": field}
            )
        return addresses

    @staticmethod
    async def _lookup(name: str, port: int) -> list[Any]:
        # The one name resolution of the guard (tests replace it to play a rebinding DNS).
        loop = asyncio.get_running_loop()
        return await loop.getaddrinfo(name, port, type=socket.SOCK_STREAM)

    async def check_url(self, url: str, *, field: str = "callbackUri") -> None:
        """Refuse ``url`` unless it is an absolute http(s) URL whose host may be called."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise CallbackRefused(f"{field} is not a valid URL", details={"field": field}) from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CallbackRefused(
                f"{field} must be an absolute http(s) URL with a host", details={"field": field}
            )
        await self.resolve(
            parts.hostname, port or (443 if parts.scheme == "https" else 80), field=field
        )


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves and checks at connect time, then connects to the checked address."""

    def __init__(self, policy: CallbackPolicy, field: str) -> None:
        self._policy = policy
        self._field = field
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._policy.resolve(host, port, field=self._field)
        error: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not allowed for callbacks")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx transport whose every connection passes the policy (no environment proxies)."""

    def __init__(
        self,
        policy: CallbackPolicy,
        *,
        limits: httpx.Limits | None = None,
        field: str = "url",
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
        super().__init__(trust_env=False, limits=limits)
        # httpx offers no public way to pass httpcore a network backend: rebuild the pool with
        # the same settings httpx would use plus the guarded backend.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context or httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_GuardedBackend(policy, field),
        )


def guarded_client(
    policy: CallbackPolicy,
    *,
    timeout: float,
    field: str = "url",
    ssl_context: ssl.SSLContext | None = None,
) -> httpx.AsyncClient:
    """The HTTP client for callbacks and token endpoints: guarded, no redirects, no env proxy.
    ``field``: what a refusal at connect time names (the request field the URL came from);
    ``ssl_context``: the TLS settings (trusted CAs, a client certificate), else the defaults."""
    return httpx.AsyncClient(
        transport=GuardedTransport(policy, field=field, ssl_context=ssl_context),
        timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
        follow_redirects=False,
        trust_env=False,
    )


__all__ = [
    "METADATA_ADDRESSES",
    "CallbackPolicy",
    "CallbackRefused",
    "GuardedTransport",
    "classify",
    "guarded_client",
]

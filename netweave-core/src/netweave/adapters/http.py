"""One HTTP client for REST backends (Argo CD, OSM NBI, ONAP SO, ChartMuseum …).

What every such adapter needs and should not write again: TLS settings, timeouts, bounded
retries with back-off on idempotent calls (and on 429 honouring ``Retry-After``), and mapping of
transport failures and HTTP statuses onto :mod:`netweave.errors`. Authentication is an
``httpx.Auth`` the adapter supplies (a login flow that refreshes on 401 fits httpx's auth flow).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import random
import ssl
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

from netweave.errors import (
    BackendTimeout,
    BackendUnavailable,
    NetweaveError,
    status_error_class,
)

_log = logging.getLogger("netweave.adapters.http")

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_RETRY_STATUSES = frozenset({429, 502, 503, 504})
#: Never sleep longer than this for one Retry-After, whatever the backend asks.
_MAX_RETRY_AFTER = 30.0


class TlsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    verify: bool = True
    ca_file: Path | None = Field(default=None, alias="caFile")
    client_cert: Path | None = Field(default=None, alias="clientCert")
    client_key: Path | None = Field(default=None, alias="clientKey")


class HttpSettings(BaseModel):
    """``http:`` block of an adapter's config."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    tls: TlsSettings = Field(default_factory=TlsSettings)
    connect_timeout: float = Field(default=5.0, gt=0, alias="connectTimeout")
    request_timeout: float = Field(default=30.0, gt=0, alias="requestTimeout")
    retries: int = Field(default=3, ge=0, le=10)
    backoff: float = Field(default=0.2, ge=0, le=10)


#: Maps a backend error response to a NetweaveError (or None for the default mapping).
ErrorMapper = Callable[[httpx.Response], NetweaveError | None]


def default_error(response: httpx.Response, backend: str) -> NetweaveError:
    """The generic status mapping; adapters refine it with their backend's error vocabulary."""
    status = response.status_code
    text = _short_text(response)
    kind = status_error_class(status)  # the class; the message says it in this backend's words
    if status == 404:
        return kind(f"{backend}: not found ({text})")
    if status == 409:
        return kind(f"{backend}: conflict ({text})")
    if status in (400, 422):
        return kind(f"{backend} refused the request: {text}")
    if status in (401, 403):
        # The gateway's own credentials were refused: not the API client's fault.
        return kind(f"{backend} refused the gateway's credentials (HTTP {status})")
    if kind is BackendUnavailable:
        return kind(f"{backend} is unavailable (HTTP {status})")
    return kind(f"{backend} failed (HTTP {status}): {text}")


def _short_text(response: httpx.Response, limit: int = 300) -> str:
    try:
        text = response.text
    except (UnicodeDecodeError, httpx.ResponseNotRead):
        return f"HTTP {response.status_code}"
    text = " ".join(text.split())
    return text[:limit] if text else f"HTTP {response.status_code}"


def _verify(tls: TlsSettings) -> ssl.SSLContext | bool:
    """httpx's ``verify``: an SSL context when a CA file or client certificate is set (httpx
    0.28 deprecates ``verify=<path>`` and ``cert=``), else the plain flag."""
    if tls.ca_file is None and tls.client_cert is None:
        return tls.verify
    context = ssl.create_default_context(cafile=str(tls.ca_file) if tls.ca_file else None)
    if tls.client_cert is not None:
        context.load_cert_chain(
            str(tls.client_cert), str(tls.client_key) if tls.client_key else None
        )
    if not tls.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class StaticBearerAuth(httpx.Auth):
    """A fixed API token as ``Authorization: Bearer``."""

    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request


@dataclass(frozen=True, slots=True)
class BearerToken:
    """A token a login issued; ``expires_at`` in epoch seconds, ``None`` when not known."""

    value: str
    expires_at: float | None = None


class RefreshingBearerAuth(httpx.Auth, abc.ABC):
    """A bearer token obtained by a login request, as an ``httpx.Auth`` flow.

    The login runs before the first request, again ``margin`` seconds before the token expires,
    and once more when a request comes back 401 (expired or revoked server-side); that request
    is then replayed once, so a second 401 reaches the error mapping. Concurrent requests that
    find the token stale share one login. An adapter supplies only its backend's login request
    and how to read the token from the answer (raising a core error when refused).
    """

    def __init__(self, *, margin: float = 30.0, clock: Callable[[], float] = time.time) -> None:
        self._margin = margin
        self._clock = clock
        self._token: BearerToken | None = None
        self._lock = asyncio.Lock()
        #: Successful logins so far (diagnostics and tests).
        self.logins = 0

    @property
    def token(self) -> BearerToken | None:
        return self._token

    @abc.abstractmethod
    def _login_request(self, request: httpx.Request) -> httpx.Request:
        """The backend's login call; ``request`` is the call it precedes (for its URL)."""

    @abc.abstractmethod
    def _read_token(self, response: httpx.Response) -> BearerToken:
        """The token in a login answer, or a core error saying why there is none."""

    def _fresh(self, token: BearerToken | None) -> bool:
        if token is None:
            return False
        return token.expires_at is None or self._clock() < token.expires_at - self._margin

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        async with self._lock:
            if not self._fresh(self._token):
                login = yield self._login_request(request)
                await login.aread()
                self._token = self._read_token(login)
                self.logins += 1
            used = self._token
        assert used is not None
        request.headers["Authorization"] = f"Bearer {used.value}"
        response = yield request
        if response.status_code != 401:
            return
        async with self._lock:
            if self._token is None or self._token.value == used.value:  # nobody renewed it
                login = yield self._login_request(request)
                await login.aread()
                self._token = self._read_token(login)
                self.logins += 1
            used = self._token
        request.headers["Authorization"] = f"Bearer {used.value}"
        yield request

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        raise RuntimeError(f"{type(self).__name__} works with httpx.AsyncClient only")
        yield request  # pragma: no cover - makes this a generator


class BackendClient:
    """An ``httpx.AsyncClient`` with netweave's retry and error rules."""

    def __init__(
        self,
        base_url: str,
        *,
        backend: str,
        settings: HttpSettings | None = None,
        auth: httpx.Auth | None = None,
        headers: Mapping[str, str] | None = None,
        error_mapper: ErrorMapper | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.backend = backend
        self.settings = settings or HttpSettings()
        self._error_mapper = error_mapper
        self._client = httpx.AsyncClient(
            base_url=base_url,
            auth=auth,
            headers=dict(headers or {}),
            verify=_verify(self.settings.tls),
            timeout=httpx.Timeout(
                self.settings.request_timeout, connect=self.settings.connect_timeout
            ),
            transport=transport,
        )

    @property
    def client(self) -> httpx.AsyncClient:
        return self._client

    async def aclose(self) -> None:
        await self._client.aclose()

    async def request(
        self,
        method: str,
        url: str,
        *,
        expected: tuple[int, ...] = (200, 201, 202, 204),
        retry: bool | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send, retrying idempotent calls; return the response or raise a NetweaveError."""
        method = method.upper()
        may_retry = (method in IDEMPOTENT_METHODS) if retry is None else retry
        attempts = 1 + (self.settings.retries if may_retry else 0)
        for attempt in range(1, attempts + 1):
            try:
                response = await self._client.request(method, url, **kwargs)
            except httpx.TimeoutException as exc:
                if attempt < attempts:
                    await self._sleep(attempt, None)
                    continue
                raise BackendTimeout(f"{self.backend}: {method} {url} timed out") from exc
            except httpx.TransportError as exc:
                if attempt < attempts:
                    await self._sleep(attempt, None)
                    continue
                raise BackendUnavailable(
                    f"{self.backend} is unreachable ({type(exc).__name__})"
                ) from exc
            if response.status_code in expected:
                return response
            if response.status_code in _RETRY_STATUSES and attempt < attempts:
                await self._sleep(attempt, response.headers.get("Retry-After"))
                continue
            raise self._map(response)
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    @contextlib.asynccontextmanager
    async def stream(
        self,
        method: str,
        url: str,
        *,
        expected: tuple[int, ...] = (200,),
        **kwargs: Any,
    ) -> AsyncIterator[httpx.Response]:
        """Open a streaming response (logs, watches); errors before the body map as usual.

        Not retried: a stream may already have been consumed in part. Failures while reading
        the body are the caller's to handle.
        """
        method = method.upper()
        request = self._client.build_request(method, url, **kwargs)
        try:
            response = await self._client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise BackendTimeout(f"{self.backend}: {method} {url} timed out") from exc
        except httpx.TransportError as exc:
            raise BackendUnavailable(
                f"{self.backend} is unreachable ({type(exc).__name__})"
            ) from exc
        try:
            if response.status_code not in expected:
                await response.aread()
                raise self._map(response)
            yield response
        finally:
            await response.aclose()

    def _map(self, response: httpx.Response) -> NetweaveError:
        if self._error_mapper is not None:
            mapped = self._error_mapper(response)
            if mapped is not None:
                return mapped
        return default_error(response, self.backend)

    async def _sleep(self, attempt: int, retry_after: str | None) -> None:
        delay = self.settings.backoff * (2 ** (attempt - 1)) * (1 + random.random() / 4)  # noqa: S311
        if retry_after:
            with contextlib.suppress(ValueError):
                delay = max(delay, min(float(retry_after), _MAX_RETRY_AFTER))
        _log.debug("%s: retry %d in %.2fs", self.backend, attempt, delay)
        await asyncio.sleep(delay)


__all__ = [
    "IDEMPOTENT_METHODS",
    "BackendClient",
    "BearerToken",
    "ErrorMapper",
    "HttpSettings",
    "RefreshingBearerAuth",
    "StaticBearerAuth",
    "TlsSettings",
    "default_error",
]

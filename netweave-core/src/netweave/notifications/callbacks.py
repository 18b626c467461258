"""Calling subscribers back: authentication per subscription, the create-time test, posting.

Authentication (ETSI SOL003 ``SubscriptionAuthentication``): ``BASIC`` sends the configured user
and password; ``OAUTH2_CLIENT_CREDENTIALS`` gets a token from the subscription's token endpoint
(client id and secret by HTTP Basic, RFC 6749 §2.3.1), caches it until shortly before it expires
and fetches a new one when the callback answers 401; ``TLS_CERT`` sends nothing in the request:
the connection presents the gateway's client certificate (``notifications.clientCertFile``),
which the client presents to any callback endpoint asking for one. Token endpoints pass the same
SSRF guard as callbacks. Secrets are registered with the log redaction and never logged or
returned.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import ssl
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from netweave.errors import NetweaveError, Unprocessable
from netweave.logging import register_secret
from netweave.models import SubscriptionAuthentication
from netweave.notifications.ssrf import CallbackPolicy, CallbackRefused, guarded_client

_log = logging.getLogger("netweave.notifications")

#: A cached token is renewed this long before the expiry its endpoint announced.
TOKEN_EXPIRY_MARGIN = 30.0
#: Tokens whose endpoint gives no ``expires_in`` are kept this long.
DEFAULT_TOKEN_LIFETIME = 300.0
_MAX_CACHED_TOKENS = 4096


class CallbackTestFailed(NetweaveError):
    """The callback did not answer the test GET with 204 (ETSI: the subscription is refused)."""

    status = 422
    code = "CallbackTestFailed"
    title = "Callback test failed"


class CallbackAuthError(Exception):
    """No token could be obtained from the subscription's token endpoint."""


@dataclass(frozen=True, slots=True)
class Credentials:
    kind: str  # "BASIC" | "OAUTH2_CLIENT_CREDENTIALS"
    user: str
    secret: str
    token_endpoint: str | None = None

    @property
    def cache_key(self) -> str:
        digest = hashlib.sha256(self.secret.encode()).hexdigest()
        return f"{self.token_endpoint}\x00{self.user}\x00{digest}"


def authentication_record(auth: SubscriptionAuthentication | None) -> dict[str, Any] | None:
    """The authentication record with its secrets in clear (the subscription service encrypts
    them before storing, see :mod:`netweave.notifications.sealing`). The secrets are registered
    for log redaction from here on."""
    if auth is None:
        return None
    record: dict[str, Any] = {"authType": list(auth.auth_type)}
    if auth.params_basic is not None:
        register_secret(auth.params_basic.password)
        record["paramsBasic"] = {
            "userName": auth.params_basic.user_name,
            "password": auth.params_basic.password.get_secret_value(),
        }
    oauth = auth.params_oauth2_client_credentials
    if oauth is not None:
        register_secret(oauth.client_password)
        record["paramsOauth2ClientCredentials"] = {
            "clientId": oauth.client_id,
            "clientPassword": oauth.client_password.get_secret_value(),
            "tokenEndpoint": oauth.token_endpoint,
        }
    return record


def credentials(record: Mapping[str, Any] | None) -> Credentials | None:
    """The credentials to use: the first ``authType`` listed, as ETSI orders preference."""
    if not record:
        return None
    for kind in record.get("authType") or ():
        if kind == "BASIC" and isinstance(record.get("paramsBasic"), Mapping):
            params = record["paramsBasic"]
            register_secret(str(params["password"]))
            return Credentials("BASIC", str(params["userName"]), str(params["password"]))
        if kind == "OAUTH2_CLIENT_CREDENTIALS" and isinstance(
            record.get("paramsOauth2ClientCredentials"), Mapping
        ):
            params = record["paramsOauth2ClientCredentials"]
            register_secret(str(params["clientPassword"]))
            return Credentials(
                "OAUTH2_CLIENT_CREDENTIALS",
                str(params["clientId"]),
                str(params["clientPassword"]),
                str(params["tokenEndpoint"]),
            )
    return None


class TokenCache:
    """OAuth2 client-credentials tokens per (endpoint, client), fetched once at a time."""

    def __init__(self, http: Callable[[], httpx.AsyncClient]) -> None:
        self._http = http
        self._tokens: dict[str, tuple[str, float]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def invalidate(self, creds: Credentials) -> None:
        self._tokens.pop(creds.cache_key, None)

    async def token(self, creds: Credentials) -> str:
        key = creds.cache_key
        cached = self._tokens.get(key)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        if len(self._locks) > _MAX_CACHED_TOKENS:
            self._locks = {k: v for k, v in self._locks.items() if v.locked()}
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            cached = self._tokens.get(key)
            if cached is not None and cached[1] > time.monotonic():
                return cached[0]
            token, lifetime = await self._fetch(creds)
            if len(self._tokens) >= _MAX_CACHED_TOKENS:
                self._tokens.clear()  # bounded; tokens are cheap to fetch again
            margin = min(TOKEN_EXPIRY_MARGIN, lifetime / 2)
            self._tokens[key] = (token, time.monotonic() + lifetime - margin)
            return token

    async def _fetch(self, creds: Credentials) -> tuple[str, float]:
        assert creds.token_endpoint is not None
        try:
            response = await self._http().post(
                creds.token_endpoint,
                data={"grant_type": "client_credentials"},
                auth=httpx.BasicAuth(creds.user, creds.secret),
                headers={"Accept": "application/json"},
            )
        except CallbackRefused as exc:
            raise CallbackAuthError(f"token endpoint refused: {exc.message}") from None
        except httpx.HTTPError as exc:
            raise CallbackAuthError(f"token endpoint unreachable: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise CallbackAuthError(f"token endpoint answered {response.status_code}")
        try:
            body = response.json()
            token = body["access_token"]
        except (ValueError, KeyError, TypeError):
            raise CallbackAuthError("token endpoint answered without an access_token") from None
        if not isinstance(token, str) or not token:
            raise CallbackAuthError("token endpoint answered without an access_token")
        expires_in = body.get("expires_in")
        lifetime = (
            float(expires_in)
            if isinstance(expires_in, int | float) and not isinstance(expires_in, bool)
            else DEFAULT_TOKEN_LIFETIME
        )
        return token, max(1.0, min(lifetime, 86_400.0))


class _OAuth2Auth(httpx.Auth):
    """Bearer token from the cache; on 401 one fresh token and one more try."""

    def __init__(self, creds: Credentials, tokens: TokenCache) -> None:
        self._creds = creds
        self._tokens = tokens

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        request.headers["Authorization"] = f"Bearer {await self._tokens.token(self._creds)}"
        response = yield request
        if response.status_code == 401:
            self._tokens.invalidate(self._creds)
            request.headers["Authorization"] = f"Bearer {await self._tokens.token(self._creds)}"
            yield request


class _NoAuth(httpx.Auth):
    pass  # httpx.Auth's default flow sends the request unchanged


_NO_AUTH = _NoAuth()


class CallbackTlsError(NetweaveError):
    """The configured client certificate, key or CA bundle cannot be used."""

    status = 500
    code = "CallbackTlsConfiguration"
    title = "Callback TLS settings unusable"


@dataclass(frozen=True, slots=True)
class CallbackTls:
    """``notifications.clientCertFile``/``clientKeyFile``/``caFile``."""

    client_cert: Path | None = None
    client_key: Path | None = None
    ca_file: Path | None = None

    @property
    def mutual(self) -> bool:
        return self.client_cert is not None and self.client_key is not None

    def check(self) -> None:
        """Load the certificate and key once at start (a wrong path or a key that does not
        match the certificate is a start-up error naming the settings, not a failure at the
        first delivery); the CA bundle is only read when the client is built."""
        if self.ca_file is not None and not self.ca_file.is_file():
            raise CallbackTlsError(f"notifications.caFile: {self.ca_file} is not a readable file")
        if not self.mutual:
            return
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(
                str(self.client_cert), str(self.client_key)
            )
        except (OSError, ssl.SSLError) as exc:
            raise CallbackTlsError(
                "notifications.clientCertFile/clientKeyFile cannot be loaded: "
                f"{getattr(exc, 'strerror', None) or exc}"
            ) from None

    def context(self) -> ssl.SSLContext | None:
        if self.ca_file is None and not self.mutual:
            return None  # the defaults (public CAs, no client certificate)
        context = (
            ssl.create_default_context(cafile=str(self.ca_file))
            if self.ca_file is not None
            else httpx.create_ssl_context(trust_env=False)
        )
        if self.mutual:
            context.load_cert_chain(str(self.client_cert), str(self.client_key))
        return context


class CallbackClient:
    """One guarded HTTP client for every callback and token endpoint of this process."""

    def __init__(
        self, policy: CallbackPolicy, *, timeout: float = 10.0, tls: CallbackTls | None = None
    ) -> None:
        self.policy = policy
        self._timeout = timeout
        self._tls = tls or CallbackTls()
        self._tls.check()
        self._client: httpx.AsyncClient | None = None
        self._tokens = TokenCache(lambda: self._http)

    @property
    def mutual_tls(self) -> bool:
        """Whether callbacks can be called over mutually authenticated TLS (``TLS_CERT``)."""
        return self._tls.mutual

    @property
    def _http(self) -> httpx.AsyncClient:
        # Built on first use, not at start: its TLS context loads the CA bundle (tens of ms of
        # cold start for a gateway that may never call back).
        if self._client is None:
            self._client = guarded_client(
                self.policy, timeout=self._timeout, ssl_context=self._tls.context()
            )
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    def _auth(self, record: Mapping[str, Any] | None) -> httpx.Auth:
        creds = credentials(record)
        if creds is None:
            return _NO_AUTH
        if creds.kind == "BASIC":
            return httpx.BasicAuth(creds.user, creds.secret)
        return _OAuth2Auth(creds, self._tokens)

    async def check(
        self, callback_uri: str, authentication: SubscriptionAuthentication | None
    ) -> None:
        """Create-time checks: ``TLS_CERT`` usable (422 naming what is missing), SSRF on the
        callback and token endpoint (400 naming the field)."""
        if authentication is not None and "TLS_CERT" in authentication.auth_type:
            if not self.mutual_tls:
                raise Unprocessable(
                    "authentication: TLS_CERT needs a client certificate this gateway has not "
                    "been given (notifications.clientCertFile and clientKeyFile)",
                    details={"field": "authentication.authType"},
                )
            if not callback_uri.lower().startswith("https://"):
                raise Unprocessable(
                    "authentication: TLS_CERT needs an https callbackUri",
                    details={"field": "callbackUri"},
                )
        await self.policy.check_url(callback_uri, field="callbackUri")
        oauth = authentication.params_oauth2_client_credentials if authentication else None
        if oauth is not None:
            await self.policy.check_url(
                oauth.token_endpoint,
                field="authentication.paramsOauth2ClientCredentials.tokenEndpoint",
            )

    async def test(self, callback_uri: str, authentication: Mapping[str, Any] | None) -> None:
        """GET the callback with the subscription's credentials; anything but 204 → 422."""
        try:
            response = await self._send("GET", callback_uri, authentication)
        except CallbackRefused:
            raise
        except CallbackAuthError as exc:
            raise CallbackTestFailed(
                f"callback test failed: {exc}", details={"field": "authentication"}
            ) from None
        except httpx.HTTPError as exc:
            raise CallbackTestFailed(
                f"callback test failed: {type(exc).__name__} reaching the callback"
                + _tls_reason(exc),
                details={"field": "callbackUri"},
            ) from None
        if response.status_code != 204:
            raise CallbackTestFailed(
                f"callback test failed: GET answered {response.status_code}, expected 204",
                details={"field": "callbackUri", "status": response.status_code},
            )

    async def post(
        self,
        callback_uri: str,
        body: bytes,
        authentication: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """POST one notification. Raises httpx errors, :class:`CallbackRefused` or
        :class:`CallbackAuthError`; the caller decides about retries."""
        return await self._send(
            "POST",
            callback_uri,
            authentication,
            content=body,
            headers={"Content-Type": "application/json", **(headers or {})},
        )

    async def _send(
        self,
        method: str,
        url: str,
        authentication: Mapping[str, Any] | None,
        **options: Any,
    ) -> httpx.Response:
        try:
            return await self._http.request(method, url, auth=self._auth(authentication), **options)
        except ssl.SSLError as exc:
            # An endpoint refusing the client certificate alerts after the handshake (TLS 1.3):
            # httpcore lets that SSLError through unwrapped. A transport error like the rest.
            raise httpx.ConnectError(f"TLS: {exc.reason or exc}") from exc


def _tls_reason(exc: BaseException) -> str:
    """A failed TLS handshake's reason (an unknown CA, a refused client certificate), which
    tells the subscriber what to fix; nothing for other errors."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLError):
            return f" (TLS: {cause.reason or cause})"
        cause = cause.__cause__ or cause.__context__
    return ""


__all__ = [
    "CallbackAuthError",
    "CallbackClient",
    "CallbackTestFailed",
    "CallbackTls",
    "CallbackTlsError",
    "Credentials",
    "TokenCache",
    "authentication_record",
    "credentials",
]

"""Authentication to argocd-server: a static API token, or a session login refreshed as needed.

Argo CD accepts ``Authorization: Bearer <JWT>``. With username/password the adapter logs in
through ``POST /api/v1/session`` and keeps the session token; it logs in again before the
token's ``exp`` and whenever a request comes back 401 (token expired or revoked server-side),
then replays that request once. This is an ``httpx.Auth`` flow, so every request of the shared
``BackendClient`` goes through it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncGenerator, Generator

import httpx
from netweave.errors import BackendError, BackendUnavailable

SESSION_PATH = "/api/v1/session"
#: Log in again this many seconds before the session token expires.
_REFRESH_MARGIN = 60.0


def token_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT (not verified: only used to refresh early), or None."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except ValueError:
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, int | float) else None


class StaticTokenAuth(httpx.Auth):
    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request


class SessionAuth(httpx.Auth):
    """Username/password login with a cached, refreshed session token."""

    def __init__(self, username: str, password: str) -> None:
        self._username = username
        self._password = password
        self._token: str | None = None
        self._expires_at: float | None = None
        self._lock = asyncio.Lock()
        #: How many logins happened (tests and diagnostics).
        self.logins = 0

    def _fresh(self) -> bool:
        if self._token is None:
            return False
        return self._expires_at is None or time.time() < self._expires_at - _REFRESH_MARGIN

    def _login_request(self, request: httpx.Request) -> httpx.Request:
        return httpx.Request(
            "POST",
            request.url.copy_with(path=SESSION_PATH, query=None),
            json={"username": self._username, "password": self._password},
        )

    def _accept_login(self, response: httpx.Response) -> None:
        status = response.status_code
        if status in (401, 403):
            raise BackendError(f"Argo CD refused the login of user {self._username!r}")
        if status in (429, 502, 503, 504):
            raise BackendUnavailable(f"Argo CD is unavailable (login answered HTTP {status})")
        if status != 200:
            raise BackendError(f"Argo CD login failed (HTTP {status})")
        try:
            token = response.json().get("token")
        except ValueError:
            token = None
        if not isinstance(token, str) or not token:
            raise BackendError("Argo CD login answered without a session token")
        self._token = token
        self._expires_at = token_expiry(token)
        self.logins += 1

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        used: str | None = None
        # Several requests may find the token stale at once: one logs in, the others reuse it.
        async with self._lock:
            if not self._fresh():
                login = yield self._login_request(request)
                await login.aread()
                self._accept_login(login)
            used = self._token
        request.headers["Authorization"] = f"Bearer {used}"
        response = yield request
        if response.status_code != 401:
            return
        async with self._lock:
            if self._token == used:  # nobody refreshed meanwhile
                login = yield self._login_request(request)
                await login.aread()
                self._accept_login(login)
            used = self._token
        request.headers["Authorization"] = f"Bearer {used}"
        yield request

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("SessionAuth works with httpx.AsyncClient only")
        yield request  # pragma: no cover - makes this a generator

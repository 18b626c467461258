"""Authentication to argocd-server: a static API token, or a session login refreshed as needed.

Argo CD accepts ``Authorization: Bearer <JWT>``. With username/password the adapter logs in
through ``POST /api/v1/session`` and keeps the session token; core's
:class:`~netweave.adapters.http.RefreshingBearerAuth` logs in again before the token's ``exp``
and whenever a request comes back 401, then replays that request once. This module holds only
Argo CD's login call and how to read its answer.
"""

from __future__ import annotations

import base64
import json

import httpx
from netweave.adapters.http import BearerToken, RefreshingBearerAuth, StaticBearerAuth
from netweave.errors import BackendError, BackendUnavailable

SESSION_PATH = "/api/v1/session"
#: Log in again this many seconds before the session token expires.
_REFRESH_MARGIN = 60.0

#: A fixed API token (``token:`` in the adapter's config).
StaticTokenAuth = StaticBearerAuth


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


class SessionAuth(RefreshingBearerAuth):
    """Username/password login with a cached, refreshed session token."""

    def __init__(self, username: str, password: str) -> None:
        super().__init__(margin=_REFRESH_MARGIN)
        self._username = username
        self._password = password

    def _login_request(self, request: httpx.Request) -> httpx.Request:
        return httpx.Request(
            "POST",
            request.url.copy_with(path=SESSION_PATH, query=None),
            json={"username": self._username, "password": self._password},
        )

    def _read_token(self, response: httpx.Response) -> BearerToken:
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
        return BearerToken(token, token_expiry(token))

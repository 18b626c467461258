"""OAuth2 bearer JWT verification (``api.jwt``), an :class:`~netweave.api.auth.Authenticator`.

Checks, with PyJWT: the signature against the issuer's JWKS (fetched with httpx, cached for
``jwksCacheSeconds``, fetched again on an unknown ``kid`` at most once per
``jwksMinRefreshSeconds`` so forged ``kid`` values cannot hammer the issuer), the algorithm (only
the configured asymmetric ones: never ``none`` or HMAC with a public key), ``iss``, ``aud``,
``exp`` (required) and ``nbf``/``iat`` with ``leeway`` seconds of clock skew.

Scopes come from the standard claims, ``scope`` (space-separated, RFC 8693/9068) or ``scp``
(list or string); only ``o2dms:read|write|admin`` count, with the same implications as static
tokens. A token that is not a JWT is left to the next authenticator (static or stored tokens);
a JWT that fails a check is a 401 saying which check, never echoing the token.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any

import httpx
import jwt

from netweave.api.auth import ALL_SCOPES, Principal, expand_scopes
from netweave.config import JwtSettings
from netweave.errors import BackendUnavailable, Unauthorized

_log = logging.getLogger("netweave.api.auth")

# header.payload.signature, each base64url; a JWS header always starts with '{"' → "eyJ".
_JWT_SHAPE = re.compile(r"^eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
#: A JWKS larger than this is not a key set.
_MAX_JWKS_BYTES = 1 << 20


def looks_like_jwt(token: str) -> bool:
    return bool(_JWT_SHAPE.match(token))


class JwksCache:
    """The issuer's signing keys by ``kid``; refreshed on expiry or an unknown ``kid``."""

    def __init__(
        self,
        url: str,
        *,
        cache_seconds: float = 300.0,
        min_refresh_seconds: float = 30.0,
        timeout: float = 5.0,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self._url = url
        self._cache_seconds = cache_seconds
        self._min_refresh = min_refresh_seconds
        self._http = http or httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self._owns_http = http is None
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def close(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def key(self, kid: str | None) -> jwt.PyJWK | None:
        now = time.monotonic()
        stale = self._fetched_at is None or now - self._fetched_at >= self._cache_seconds
        if not stale:
            found = self._find(kid)
            if found is not None:
                return found
        async with self._lock:
            now = time.monotonic()
            found = self._find(kid)
            fresh = self._fetched_at is not None and now - self._fetched_at < self._cache_seconds
            if found is not None and fresh:
                return found
            may_refresh = self._fetched_at is None or now - self._fetched_at >= self._min_refresh
            if may_refresh:
                await self._fetch()
            return self._find(kid)

    def _find(self, kid: str | None) -> jwt.PyJWK | None:
        if kid is not None:
            return self._keys.get(kid)
        # No kid in the token: acceptable only when the set has exactly one key.
        return next(iter(self._keys.values())) if len(self._keys) == 1 else None

    async def _fetch(self) -> None:
        self.fetches += 1
        try:
            response = await self._http.get(self._url, headers={"Accept": "application/json"})
            response.raise_for_status()
            if len(response.content) > _MAX_JWKS_BYTES:
                raise ValueError("JWKS too large")
            keyset = jwt.PyJWKSet.from_dict(response.json())
        except (httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
            # Keep serving the keys we had; without any, requests cannot be verified.
            self._fetched_at = time.monotonic()
            _log.warning("fetching the JWKS from %s failed: %s", self._url, type(exc).__name__)
            if not self._keys:
                raise BackendUnavailable(
                    "cannot verify bearer tokens: the issuer's JWKS is unavailable"
                ) from None
            return
        self._keys = {k.key_id: k for k in keyset.keys}
        self._fetched_at = time.monotonic()


def _claimed_scopes(claims: dict[str, Any]) -> frozenset[str]:
    raw: list[str] = []
    for name in ("scope", "scp"):
        value = claims.get(name)
        if isinstance(value, str):
            raw.extend(value.split())
        elif isinstance(value, list):
            raw.extend(v for v in value if isinstance(v, str))
    return expand_scopes(s for s in raw if s in ALL_SCOPES)


class JwtAuthenticator:
    def __init__(self, settings: JwtSettings, *, http: httpx.AsyncClient | None = None) -> None:
        self._settings = settings
        self._algorithms = list(settings.algorithms)
        self.jwks = JwksCache(
            settings.jwks_url,
            cache_seconds=settings.jwks_cache_seconds,
            min_refresh_seconds=settings.jwks_min_refresh_seconds,
            timeout=settings.jwks_timeout,
            http=http,
        )

    async def close(self) -> None:
        await self.jwks.close()

    async def authenticate(self, token: str) -> Principal | None:
        if not looks_like_jwt(token):
            return None
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("the bearer token is not a well-formed JWT") from None
        algorithm = header.get("alg")
        if algorithm not in self._algorithms:
            raise Unauthorized(f"JWT algorithm {algorithm!r} is not accepted")
        kid = header.get("kid")
        key = await self.jwks.key(kid if isinstance(kid, str) else None)
        if key is None:
            raise Unauthorized("the JWT's signing key is not in the issuer's key set")
        settings = self._settings
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[algorithm],
                audience=settings.audience,
                issuer=settings.issuer,
                leeway=settings.leeway,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the JWT has expired") from None
        except jwt.ImmatureSignatureError:
            raise Unauthorized("the JWT is not valid yet (nbf/iat)") from None
        except jwt.InvalidAudienceError:
            raise Unauthorized("the JWT's audience is not accepted") from None
        except jwt.InvalidIssuerError:
            raise Unauthorized("the JWT's issuer is not accepted") from None
        except jwt.InvalidSignatureError:
            raise Unauthorized("the JWT's signature is not valid") from None
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthorized(f"the JWT lacks the {exc.claim!r} claim") from None
        except jwt.PyJWTError:
            raise Unauthorized("the JWT is not valid") from None
        subject = claims.get("sub") or claims.get("client_id") or claims.get("azp") or "unknown"
        return Principal(subject=f"jwt:{subject}", scopes=_claimed_scopes(claims))


__all__ = ["JwksCache", "JwtAuthenticator", "looks_like_jwt"]

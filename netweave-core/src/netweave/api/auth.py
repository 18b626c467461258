"""Bearer-token authentication and scopes for every ``/o2dms`` route.

Scopes
    ``o2dms:read``   every ``GET`` (and ``HEAD``);
    ``o2dms:write``  every change: package upload/registration/deprecate/delete, deployment
                     create/update/delete/scale/rollback, operation ``retry``, subscriptions;
    ``o2dms:admin``  what overrides a safety rule or ends someone else's work: operation
                     ``fail`` and ``cancel``, ``DELETE …/nfDeploymentDescriptors/{id}?force=true``.
    ``admin`` implies ``write``, and ``write`` implies ``read``. The static token (settings /
    ``NETWEAVE_API_TOKEN``) and the token generated at first start have all scopes.

Tokens
    Accepted: the configured token (compared in constant time, as sha256 digests so the length
    leaks nothing), or a token whose sha256 is stored (``add_api_token``). Stored tokens are
    looked up by their hash — the token has ≥ 256 bits of entropy, so the lookup's timing
    tells nothing useful — and cached briefly so a hot client costs no query per request.
    With no configured token and none stored, :func:`bootstrap_token` generates one at first
    start, prints it once to stdout (never to the log) and stores only its hash.

Seam for JWT (a later issue): anything implementing :class:`Authenticator` can be put in the
chain; a JWT authenticator maps the token's ``scope`` claim onto the same scopes.

``/healthz``, ``/readyz``, ``/metrics`` and ``/schema`` are open.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.types import ASGIApp, Receive, Scope, Send

from netweave.errors import Forbidden, NetweaveError, Unauthorized
from netweave.store import ApiTokenRecord, Store

SCOPE_READ = "o2dms:read"
SCOPE_WRITE = "o2dms:write"
SCOPE_ADMIN = "o2dms:admin"
ALL_SCOPES = frozenset({SCOPE_READ, SCOPE_WRITE, SCOPE_ADMIN})
_IMPLIED = {
    SCOPE_ADMIN: {SCOPE_ADMIN, SCOPE_WRITE, SCOPE_READ},
    SCOPE_WRITE: {SCOPE_WRITE, SCOPE_READ},
    SCOPE_READ: {SCOPE_READ},
}
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def expand_scopes(scopes: Iterable[str]) -> frozenset[str]:
    expanded: set[str] = set()
    for scope in scopes:
        expanded |= _IMPLIED.get(scope, {scope})
    return frozenset(expanded)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    scopes: frozenset[str]

    def has(self, scope: str) -> bool:
        return scope in self.scopes


class Authenticator(Protocol):
    """Turns a bearer token into a principal, or ``None`` when it does not know the token."""

    async def authenticate(self, token: str) -> Principal | None: ...


class StaticTokenAuthenticator:
    def __init__(self, token: str) -> None:
        self._digest = hashlib.sha256(token.encode()).digest()
        self._principal = Principal(subject="static-token", scopes=ALL_SCOPES)  # immutable

    async def authenticate(self, token: str) -> Principal | None:
        candidate = hashlib.sha256(token.encode()).digest()
        if hmac.compare_digest(candidate, self._digest):
            return self._principal
        return None


class StoredTokenAuthenticator:
    def __init__(
        self, store: Store, *, ttl: float = 30.0, negative_ttl: float = 5.0, max_entries: int = 4096
    ) -> None:
        self._store = store
        self._ttl = ttl
        self._negative_ttl = negative_ttl
        self._max_entries = max_entries
        self._cache: dict[str, tuple[float, Principal | None]] = {}

    async def authenticate(self, token: str) -> Principal | None:
        digest = token_hash(token)
        cached = self._cache.get(digest)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        record = await self._store.find_api_token(digest)
        principal = (
            Principal(subject=f"token:{record.token_id}", scopes=expand_scopes(record.scopes))
            if record is not None
            else None
        )
        if len(self._cache) >= self._max_entries:
            self._cache.clear()  # crude but bounded; entries are cheap to rebuild
        self._cache[digest] = (now + (self._ttl if principal else self._negative_ttl), principal)
        return principal


class ChainAuthenticator:
    def __init__(self, authenticators: Sequence[Authenticator]) -> None:
        self._chain = tuple(authenticators)

    async def authenticate(self, token: str) -> Principal | None:
        for authenticator in self._chain:
            principal = await authenticator.authenticate(token)
            if principal is not None:
                return principal
        return None


def scope_header(scope: Scope, name: bytes) -> str | None:
    """The first value of the header ``name`` (lower case, as ASGI gives names) read from the
    scope itself: cheaper than building the request's ``Headers`` for one value."""
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def _bearer_from_scope(scope: Scope) -> str:
    header = scope_header(scope, b"authorization")
    if not header:
        raise Unauthorized("an Authorization: Bearer <token> header is required")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("the Authorization header must be 'Bearer <token>'")
    return token


def required_scope(method: str, handler: BaseRouteHandler) -> str:
    explicit = handler.opt.get("scope")
    if isinstance(explicit, str):
        return explicit
    return SCOPE_READ if method in _READ_METHODS else SCOPE_WRITE


def auth_middleware(app: ASGIApp) -> ASGIApp:
    """Router middleware on ``/o2dms``: authenticate, check the scope, check JSON bodies.

    A middleware rather than Litestar guards: it runs after routing (the route handler and its
    ``opt`` are known) and before the body is read, like a guard, but Litestar copies the route
    handler for every guard call, which cost more than the rest of a cached GET together.
    """

    async def authenticate(scope: Scope, receive: Receive, send: Send) -> None:
        state = scope["app"].state
        token = _bearer_from_scope(scope)
        principal = await state.authenticator.authenticate(token)
        if principal is None:
            raise Unauthorized("the bearer token is not valid")
        method = str(scope.get("method", "GET"))
        handler = scope["route_handler"]
        required = required_scope(method, handler)
        if not principal.has(required):
            raise Forbidden(
                f"this route needs the scope {required}", details={"requiredScope": required}
            )
        scope.setdefault("state", {})["principal"] = principal
        if handler.opt.get("json_body"):
            content_type = scope_header(scope, b"content-type") or ""
            if not is_json_media_type(content_type):
                raise UnsupportedMediaType(
                    f"this route accepts application/json, not "
                    f"{content_type or 'a body without Content-Type'}",
                    details={"header": "Content-Type"},
                )
        await app(scope, receive, send)

    return authenticate


def is_json_media_type(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class UnsupportedMediaType(NetweaveError):
    status = 415
    code = "UnsupportedMediaType"
    title = "Unsupported media type"


def require_scope(connection: ASGIConnection[Any, Any, Any, Any], scope: str) -> None:
    """For scope rules that depend on the request (``force=true``)."""
    principal: Principal | None = connection.scope.get("state", {}).get("principal")
    if principal is None or not principal.has(scope):
        raise Forbidden(f"this request needs the scope {scope}", details={"requiredScope": scope})


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    principal: Principal | None = connection.scope.get("state", {}).get("principal")
    if principal is None:
        raise Unauthorized("not authenticated")
    return principal


async def bootstrap_token(store: Store, configured: str | None) -> str | None:
    """At start: with no configured token and none stored, create one and print it once.

    Returns the generated token (for tests and the CLI); ``None`` when nothing was generated.
    """
    if configured:
        return None
    if await store.count_api_tokens() > 0:
        return None
    token = secrets.token_urlsafe(32)
    await store.add_api_token(
        ApiTokenRecord(
            token_id=uuid.uuid4().hex,
            token_hash=token_hash(token),
            scopes=sorted(ALL_SCOPES),
            created_at=datetime.now(UTC),
            description="generated at first start",
        )
    )
    # stdout on purpose, not the logger: shown once to the operator, never kept in log files.
    sys.stdout.write(
        "netweave: no API token configured; generated one (shown only now, stored hashed):\n"
        f"  NETWEAVE_API_TOKEN={token}\n"
    )
    sys.stdout.flush()
    return token

"""Shared pieces of the controllers: parameters, responses, idempotency."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus
from typing import Annotated, Any

from litestar import Request, Response
from litestar.background_tasks import BackgroundTask, BackgroundTasks
from litestar.datastructures import MutableScopeHeaders
from litestar.di import NamedDependency
from litestar.enums import ParamType
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter, PathParameter, QueryParameter
from litestar.response.base import ASGIResponse
from litestar.types import TypeEncodersMap
from pydantic import BaseModel

from netweave.api.auth import is_json_media_type, principal_of
from netweave.errors import InvalidInput
from netweave.models import PROBLEM_MEDIA_TYPE, Preview, ProblemDetails
from netweave.models.paths import API_PREFIX as API_PREFIX  # the controllers mount under it
from netweave.services import Services
from netweave.services.idempotency import KEY_PATTERN, MAX_KEY_LENGTH, StoredResponse

JSON = "application/json"


Limit = Annotated[
    int,
    QueryParameter(ge=1, le=1000, description="Page size (1 to 1000).", required=False),
]
Offset = Annotated[
    int,
    QueryParameter(ge=0, le=1_000_000_000, description="Items to skip (≥ 0).", required=False),
]
PackageIdParam = Annotated[
    str,
    PathParameter(
        name="packageId",
        title="Package id",
        description="The package's id (``{name}-{version}``).",
        min_length=1,
        max_length=300,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]*$",
    ),
]
#: Ids the gateway generates are UUIDs; anything else is a 400 naming the parameter (not a
#: route-level 404 that names nothing).
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
DeploymentIdParam = Annotated[
    str,
    PathParameter(name="deploymentId", title="Deployment id", pattern=UUID_PATTERN, max_length=36),
]
OperationIdParam = Annotated[
    str,
    PathParameter(name="operationId", title="Operation id", pattern=UUID_PATTERN, max_length=36),
]
SubscriptionIdParam = Annotated[
    str,
    PathParameter(
        name="subscriptionId", title="Subscription id", pattern=UUID_PATTERN, max_length=36
    ),
]
AdapterFilter = Annotated[
    str | None,
    QueryParameter(
        description="Only objects owned by this adapter instance.",
        max_length=63,
        required=False,
    ),
]
IdempotencyKeyHeader = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        required=False,
        min_length=1,
        max_length=MAX_KEY_LENGTH,
        pattern=KEY_PATTERN,
        description=(
            "Repeat a POST safely: the same key and body return the first response. "
            f"1..{MAX_KEY_LENGTH} printable ASCII characters."
        ),
    ),
]


#: Per route handler: its query parameters' wire names, and those of the optional non-string
#: ones.
_QUERY_NAMES: dict[int, tuple[frozenset[str], frozenset[str]]] = {}


def _query_names(handler: Any) -> tuple[frozenset[str], frozenset[str]]:
    declared: set[str] = set()
    nullable: set[str] = set()
    for name, field in handler.parsed_fn_signature.parameters.items():
        kwarg = field.kwarg_definition
        if getattr(kwarg, "param_type", None) != ParamType.QUERY:
            continue
        wire = getattr(kwarg, "name", None) or name
        declared.add(wire)
        if field.is_optional and all(
            t.annotation is not str for t in field.inner_types if not t.is_none_type
        ):
            nullable.add(wire)
    return frozenset(declared), frozenset(nullable)


async def check_query_parameters(request: Request[Any, Any, Any]) -> None:
    """``before_request`` of the /o2dms routes: a 400 naming the parameter for what Litestar
    would silently make something else of: a declared query parameter given twice (each is a
    single value; Litestar keeps the last), or ``null`` for an optional non-string one (its lax
    conversion makes it ``None``, so ``state=null`` would filter nothing), where the document
    allows only values."""
    if not request.scope["query_string"]:
        return
    handler = request.route_handler
    names = _QUERY_NAMES.get(id(handler))
    if names is None:
        names = _QUERY_NAMES[id(handler)] = _query_names(handler)
    declared, nullable = names
    seen: set[str] = set()
    for key, value in request.query_params.multi_items():
        if key in seen and key in declared:
            raise InvalidInput(
                f"query parameter {key!r} is given more than once", details={"field": key}
            )
        if value == "null" and key in nullable:
            raise InvalidInput(
                f"query parameter {key!r} cannot be null: leave it out instead",
                details={"field": key},
            )
        seen.add(key)


def is_json(content_type: str) -> bool:
    return is_json_media_type(content_type)


#: Handler ``opt`` for routes with a JSON body: the /o2dms middleware answers 415 for any other
#: Content-Type before the body is read.
JSON_BODY: dict[str, Any] = {"json_body": True}


_JSON_TYPE = (b"content-type", JSON.encode())


class JsonBytes(Response[Any]):
    """JSON already rendered (the package views kept in their rows), answered as it is.

    Litestar's own answer to a ``Response`` builds a header container, resolves the media type
    and encoders and renders the content again (bytes pass through); for a route whose whole
    work is one small read that cost as much as the rest of the route. With nothing added by
    the route (cookies, background tasks, layered headers) this answers with the two ASGI
    messages Litestar would send, the same headers in the same order (``headers`` first, as
    given, then the content type and length); otherwise it is a ``Response``.
    """

    __slots__ = ()

    def __init__(
        self, body: bytes, status_code: int = 200, headers: dict[str, str] | None = None
    ) -> None:
        # What Response.__init__ sets for (body, media_type=JSON, status_code), without its
        # conversions of arguments this never has (a fifth of the answer's cost).
        self.content = body
        self.background = None
        self.cookies = []
        self.encoding = "utf-8"
        self.headers = headers if headers is not None else {}
        self.media_type = JSON
        self.status_code = status_code
        self.response_type_encoders = {}

    def to_asgi_response(
        self,
        app: Any,
        request: Request[Any, Any, Any],
        *,
        background: BackgroundTask | BackgroundTasks | None = None,
        cookies: Any = None,
        encoded_headers: Any = None,
        headers: dict[str, str] | None = None,
        is_head_response: bool = False,
        media_type: Any = None,
        status_code: int | None = None,
        type_encoders: TypeEncodersMap | None = None,
    ) -> ASGIResponse:
        if (
            app is None
            and background is None
            and self.background is None
            and not cookies
            and not self.cookies
            and not encoded_headers
            and not headers
            and _CONTENT_HEADERS.isdisjoint(map(str.lower, self.headers))
            and not is_head_response
        ):
            return _JsonAnswer(self.status_code or status_code or 200, self.content, self.headers)
        return super().to_asgi_response(
            app,
            request,
            background=background,
            cookies=cookies,
            encoded_headers=encoded_headers,
            headers=headers,
            is_head_response=is_head_response,
            media_type=media_type,
            status_code=status_code,
            type_encoders=type_encoders,
        )


#: The headers an answer of JsonBytes sets itself (given by the route: Litestar's own path).
_CONTENT_HEADERS = frozenset({"content-type", "content-length"})


class _JsonAnswer(ASGIResponse):
    """``ASGIResponse(body=body, headers=headers, media_type=JSON, status_code=status)``, its
    fields set directly: the same headers (``headers``, then ``content-type`` and
    ``content-length``) and messages."""

    __slots__ = ()

    def __init__(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.headers = MutableScopeHeaders()
        self.headers.headers = [
            *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()),
            _JSON_TYPE,
            (b"content-length", b"%d" % len(body)),
        ]
        self._encoded_cookies = ()
        self.background = None
        self.body = body
        self.content_length = len(body)
        self.encoding = "utf-8"
        self.is_head_response = False
        self.status_code = status


def model_response(
    model: BaseModel, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response[Any]:
    """Serialise once, by alias; used where the bytes are also stored (idempotency)."""
    return Response(
        content=model.model_dump_json(by_alias=True).encode(),
        status_code=status_code,
        media_type=JSON,
        headers=headers,
    )


def body_hash(model: BaseModel) -> str:
    return hashlib.sha256(model.model_dump_json(by_alias=True).encode()).hexdigest()


async def idempotent(
    request: Request[Any, Any, Any],
    services: NamedDependency[Services],
    key: str | None,
    request_digest: str | BaseModel,
    produce: Callable[[], Awaitable[Response[Any]]],
) -> Response[Any]:
    """Replay the stored first response for a repeated ``Idempotency-Key``, or produce it.
    ``request_digest``: the request's digest, or its body (hashed only when there is a key)."""

    async def produce_then_remember(remember: Remember) -> Response[Any]:
        response = await produce()
        await remember(response)
        return response

    return await idempotent_change(request, services, key, request_digest, produce_then_remember)


#: Stores a produced response under the request's ``Idempotency-Key`` (nothing without one).
Remember = Callable[[Response[Any]], Awaitable[None]]


async def idempotent_change(
    request: Request[Any, Any, Any],
    services: NamedDependency[Services],
    key: str | None,
    request_digest: str | BaseModel,
    produce: Callable[[Remember], Awaitable[Response[Any]]],
) -> Response[Any]:
    """:func:`idempotent` for a change that commits in one transaction: ``produce`` calls
    ``remember`` with its response inside that transaction, so a response that cannot be
    stored undoes the change (and a change that committed has its response stored)."""
    if key is None:

        async def forget(response: Response[Any]) -> None:
            return None

        return await produce(forget)
    if isinstance(request_digest, BaseModel):
        request_digest = body_hash(request_digest)
    service = services.idempotency
    service.validate_key(key)
    scope = f"{principal_of(request).subject} {request.method} {request.url.path}"
    stored = await service.lookup(key, scope, request_digest)
    if stored is not None:
        headers = dict(stored.headers)
        headers.pop("content-type", None)
        headers["Idempotent-Replayed"] = "true"
        return Response(
            content=stored.body,
            status_code=stored.status_code,
            media_type=stored.headers.get("content-type", JSON),
            headers=headers,
        )
    digest = request_digest

    async def remember(response: Response[Any]) -> None:
        headers = {k.lower(): str(v) for k, v in response.headers.items()}
        headers["content-type"] = JSON
        content = response.content if isinstance(response.content, bytes) else b""
        await service.remember(
            key, scope, digest, StoredResponse(response.status_code or 200, content, headers)
        )

    return await produce(remember)


def sendable_headers(headers: Mapping[str, str]) -> None:
    """Raise ``ValueError`` unless every header is what the ASGI server can send (Latin-1, one
    line): checked while a change can still be undone, not when the response goes out."""
    for name, value in headers.items():
        name.encode("ascii")
        value.encode("latin-1")
        if any(c in name + value for c in "\r\n\0"):
            raise ValueError(f"header {name!r} holds a line break or NUL")


def _warn_text(text: str) -> str:
    r"""``text`` as the printable ASCII of a quoted-string: a double quote becomes ``'``; a
    backslash, control or non-ASCII character is sent as ``\\uXXXX``, which unquotes to
    ``\uXXXX`` (€ arrives as ``\u20ac``). A header must be Latin-1 and one line; a chart's
    file names and Helm's messages need not be."""
    out: list[str] = []
    for char in text:
        code = ord(char)
        if char == '"':
            out.append("'")
        elif 0x20 <= code < 0x7F and char != "\\":
            out.append(char)
        elif code > 0xFFFF:  # beyond the BMP: its UTF-16 surrogate pair, as JSON writes it
            code -= 0x10000
            out.append(f"\\\\u{0xD800 + (code >> 10):04x}\\\\u{0xDC00 + (code & 0x3FF):04x}")
        else:
            out.append(f"\\\\u{code:04x}")
    return "".join(out)


def warning_header(warnings: list[str] | tuple[str, ...]) -> dict[str, str]:
    """RFC 9111 ``Warning: 299 - "text"`` (miscellaneous persistent warning), ASCII only."""
    if not warnings:
        return {}
    texts = ", ".join(f'299 netweave "{_warn_text(w)}"' for w in warnings)
    return {"Warning": texts}


#: The 200 a change with ``dryRun: true`` answers instead of its 201/202.
PREVIEW_RESPONSE: dict[int, ResponseSpec] = {
    200: ResponseSpec(
        data_container=Preview,
        description="dryRun: true: what the change would render; nothing is stored or run",
        generate_examples=False,
    )
}


def problems(*statuses: int) -> dict[int, ResponseSpec]:
    """Document the error statuses a route answers (all as problem+json, see api.openapi)."""
    return {
        status: ResponseSpec(
            data_container=ProblemDetails,
            media_type=PROBLEM_MEDIA_TYPE,
            description=HTTPStatus(status).phrase,
            generate_examples=False,
        )
        for status in statuses
    }

"""Every 4xx/5xx as ``application/problem+json`` (RFC 9457 + the design note's members).

One place maps errors to HTTP: :func:`problem_response` for the :mod:`netweave.errors` taxonomy,
Litestar's own ``HTTPException`` family (validation, 404/405 for unknown routes, 413, 415 …) and
anything unexpected (a 500 without internals). :mod:`netweave.api.openapi` makes the OpenAPI
document say so.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    PermissionDeniedException,
    ValidationException,
)

from netweave.errors import BackendUnavailable, InvalidInput, NetweaveError, Unauthorized
from netweave.models import PROBLEM_MEDIA_TYPE

_log = logging.getLogger("netweave.api")

#: Litestar exception class → the design note's ``error`` code.
_HTTP_CODES = {
    400: "InvalidInput",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    413: "PayloadTooLarge",
    415: "UnsupportedMediaType",
    422: "Unprocessable",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
}
_encoder = msgspec.json.Encoder()


def _problem_bytes(problem: dict[str, Any]) -> bytes:
    return _encoder.encode(problem)


def _response(
    problem: dict[str, Any], status: int, headers: dict[str, str] | None = None
) -> Response[bytes]:
    return Response(
        content=_problem_bytes(problem),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def build_problem(
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    instance: str | None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    problem: dict[str, Any] = {
        "type": f"urn:netweave:problem:{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "error": code,
        "message": detail,
        "code": status,
    }
    if instance is not None:
        problem["instance"] = instance
    if details:
        problem["details"] = details
    return problem


def _wire_name(request: Request[Any, Any, Any], key: str) -> str:
    """The name the client used (``tailLines``), not the handler's argument (``tail_lines``)."""
    try:
        parameter = request.route_handler.parsed_fn_signature.parameters.get(key)
    except Exception:
        return key
    definition = getattr(parameter, "kwarg_definition", None)
    name = getattr(definition, "name", None) or getattr(definition, "query", None)
    return name if isinstance(name, str) and name else key


def _validation_details(
    request: Request[Any, Any, Any], exc: ValidationException
) -> tuple[str, dict[str, Any] | None]:
    """Turn Litestar's validation ``extra`` into a message naming the field(s)."""
    extra = exc.extra
    errors: list[dict[str, Any]] = []
    if isinstance(extra, list):
        for item in extra:
            if isinstance(item, dict):
                key = str(item.get("key") or item.get("loc") or "")
                errors.append(
                    {
                        "field": _wire_name(request, key) if key else "",
                        "source": str(getattr(item.get("source"), "value", None) or "body"),
                        "message": str(item.get("message") or ""),
                    }
                )
    elif isinstance(extra, dict):
        errors.append({"field": "", "source": "body", "message": str(extra)})
    if len(errors) == 1 and errors[0]["field"] == "data" and errors[0]["message"] == "'data'":
        # Litestar's way of saying the body is missing.
        return "invalid request: a JSON body is required", {"field": "body"}
    if not errors:
        # e.g. malformed JSON: Litestar says what is wrong in ``detail``.
        return f"invalid request body: {exc.detail}" if exc.detail else "invalid request", None
    parts = [f"{e['field']}: {e['message']}" if e["field"] else e["message"] for e in errors[:10]]
    details: dict[str, Any] = {"errors": errors}
    if errors[0]["field"]:
        details["field"] = errors[0]["field"]
    return "invalid request: " + "; ".join(parts), details


class BodyDecodingRequest(Request[Any, Any, Any]):
    """The app's request class (Litestar's public ``request_class``): a JSON body the decoder
    cannot read because of the client — not UTF-8, or nested too deeply for it — is
    ``InvalidInput`` (400) naming the body, where Litestar would let the decoder's own
    ``UnicodeDecodeError`` / ``RecursionError`` through as a 500."""

    async def json(self) -> Any:
        try:
            return await super().json()
        except UnicodeDecodeError:
            reason = "the request body is not valid UTF-8"
        except RecursionError:
            reason = "the request body nests too deeply"
        raise InvalidInput(f"invalid request body: {reason}", details={"field": "body"})


def problem_response(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """The single exception handler of the app (registered for ``Exception``)."""
    instance = request.url.path
    if isinstance(exc, NetweaveError):
        problem = build_problem(
            status=exc.status,
            code=exc.code,
            title=exc.title,
            detail=exc.message,
            instance=instance,
            details=exc.details,
        )
        headers = None
        if isinstance(exc, Unauthorized):
            headers = {"WWW-Authenticate": 'Bearer realm="netweave"'}
        elif isinstance(exc, BackendUnavailable) and exc.retry_after is not None:
            headers = {"Retry-After": str(exc.retry_after)}
        if exc.status >= 500:
            _log.warning("%s %s → %d %s", request.method, instance, exc.status, exc.message)
        return _response(problem, exc.status, headers)
    if isinstance(exc, HTTPException):
        status = exc.status_code
        code = _HTTP_CODES.get(status, HTTPStatus(status).phrase.replace(" ", ""))
        title = HTTPStatus(status).phrase
        details: dict[str, Any] | None = None
        if isinstance(exc, ValidationException):
            detail, details = _validation_details(request, exc)
            title = "Invalid input"
            code = "InvalidInput"
        elif status >= 500:
            _log.error("%s %s → %d", request.method, instance, status, exc_info=exc)
            detail = "an unexpected error occurred; see the gateway's log"
        elif status == 400:
            # Malformed bodies (bad JSON …): Litestar's ``detail`` says what is wrong.
            title, code = "Invalid input", "InvalidInput"
            detail = f"invalid request body: {exc.detail}" if exc.detail else title
        else:
            detail = str(exc.detail) if exc.detail else title
        headers = dict(exc.headers or {})
        if isinstance(exc, NotAuthorizedException):
            headers.setdefault("WWW-Authenticate", 'Bearer realm="netweave"')
        elif isinstance(exc, PermissionDeniedException):
            code = "Forbidden"
        problem = build_problem(
            status=status,
            code=code,
            title=title,
            detail=detail,
            instance=instance,
            details=details,
        )
        return _response(problem, status, headers or None)
    _log.error("unhandled error on %s %s", request.method, instance, exc_info=exc)
    problem = build_problem(
        status=500,
        code="InternalError",
        title="Internal error",
        detail="an unexpected error occurred; see the gateway's log",
        instance=instance,
    )
    return _response(problem, 500)


def pydantic_problem(exc: Any, *, source: str = "body") -> Exception:
    """A pydantic ``ValidationError`` from our own parsing → ``InvalidInput`` naming fields."""
    from netweave.errors import InvalidInput

    errors = []
    for error in exc.errors(include_url=False, include_input=False)[:20]:
        field = ".".join(str(part) for part in error.get("loc", ()))
        errors.append({"field": field, "source": source, "message": error.get("msg", "")})
    message = "; ".join(
        f"{e['field']}: {e['message']}" if e["field"] else e["message"] for e in errors
    )
    details: dict[str, Any] = {"errors": errors}
    if errors and errors[0]["field"]:
        details["field"] = errors[0]["field"]
    return InvalidInput(f"invalid request: {message}", details=details)

"""API errors rendered as Kubernetes ``Status`` objects."""

from __future__ import annotations

from typing import Any

from netweave.testing.k8s.util import JSONDict

_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


class ApiError(Exception):
    """An error answered as a ``Status`` with the given HTTP code."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        reason: str | None = None,
        details: JSONDict | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        # A real server leaves the reason empty for plain 500s; clients tolerate both.
        self.reason = reason if reason is not None else _REASONS.get(code, "")
        self.details = details
        self.headers = headers or {}

    def status(self) -> JSONDict:
        out: JSONDict = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if not self.reason:
            del out["reason"]
        if self.details is not None:
            out["details"] = self.details
        return out


def _details(name: str, group: str, kind: str) -> JSONDict:
    d: JSONDict = {"name": name, "kind": kind}
    if group:
        d["group"] = group
    return d


def not_found(plural: str, group: str, name: str) -> ApiError:
    res = f"{plural}.{group}" if group else plural
    return ApiError(404, f'{res} "{name}" not found', details=_details(name, group, plural))


def already_exists(plural: str, group: str, name: str) -> ApiError:
    res = f"{plural}.{group}" if group else plural
    return ApiError(
        409,
        f'{res} "{name}" already exists',
        reason="AlreadyExists",
        details=_details(name, group, plural),
    )


def conflict(plural: str, group: str, name: str, why: str | None = None) -> ApiError:
    res = f"{plural}.{group}" if group else plural
    msg = why or (
        "the object has been modified; please apply your changes to the latest "
        "version and try again"
    )
    return ApiError(
        409,
        f'Operation cannot be fulfilled on {res} "{name}": {msg}',
        reason="Conflict",
        details=_details(name, group, plural),
    )


def invalid(kind: str, group: str, name: str, causes: list[tuple[str, str, str]]) -> ApiError:
    """422 Invalid; ``causes`` are (reason, field, message) like field.ErrorList."""
    qual = f"{kind}.{group}" if group else kind
    text = [f"{field}: {msg}" if field else msg for _, field, msg in causes]
    joined = text[0] if len(text) == 1 else "[" + ", ".join(text) + "]"
    details = _details(name, group, kind)
    details["causes"] = [{"reason": r, "message": m, "field": f} for r, f, m in causes]
    return ApiError(422, f'{qual} "{name}" is invalid: {joined}', details=details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def method_not_allowed(
    message: str = "the server does not allow this method on the requested resource",
) -> ApiError:
    return ApiError(405, message)


def status_success(extra: dict[str, Any] | None = None) -> JSONDict:
    out: JSONDict = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
    }
    if extra:
        out.update(extra)
    return out

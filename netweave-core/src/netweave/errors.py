"""The error taxonomy every adapter raises and the API maps to HTTP, once.

Adapters raise these (never a backend's own exception type); ``DMSAdapter``'s template methods
wrap anything else into :class:`BackendError` so no backend type leaks through the API.
Each class carries its HTTP status and the design note's ``error`` code (e.g. ``PackageInUse``).
"""

from __future__ import annotations

from typing import Any, ClassVar


class NetweaveError(Exception):
    """Base of every error the gateway reports to a client."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "InternalError"
    title: ClassVar[str] = "Internal error"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})
        #: Set by the adapter template when it wrapped a backend exception the adapter did not
        #: map; never sent to clients, read by the conformance kit.
        self.unmapped_exception_type: str | None = None

    @property
    def problem_type(self) -> str:
        return f"urn:netweave:problem:{self.code}"


class InvalidInput(NetweaveError):
    """The request is malformed or violates a rule (schema, name, version, lint)."""

    status = 400
    code = "InvalidInput"
    title = "Invalid input"


class Unprocessable(InvalidInput):
    """Well-formed by the API document, refused for what it names: an adapter that is not
    configured, a package of another adapter. 422, so that a 400 always means the request broke
    a documented rule (a schema-driven client never gets a 400 for what the document allows)."""

    status = 422
    code = "Unprocessable"
    title = "Unprocessable request"


class PayloadTooLarge(NetweaveError):
    status = 413
    code = "PayloadTooLarge"
    title = "Payload too large"


class Unauthorized(NetweaveError):
    status = 401
    code = "Unauthorized"
    title = "Authentication required"


class Forbidden(NetweaveError):
    status = 403
    code = "Forbidden"
    title = "Insufficient scope"


class NotFound(NetweaveError):
    status = 404
    code = "NotFound"
    title = "Not found"


class Conflict(NetweaveError):
    """The request conflicts with the current state (ETSI: state forbids the task)."""

    status = 409
    code = "Conflict"
    title = "Conflict"


class AlreadyExists(Conflict):
    code = "AlreadyExists"
    title = "Already exists"


class InUse(Conflict):
    """A package still referenced by deployments; ``details['deployments']`` lists them."""

    code = "PackageInUse"
    title = "Package in use"


class Unsupported(NetweaveError):
    """The adapter lacks the capability; ``details['capability']`` names it."""

    status = 501
    code = "NotImplemented"
    title = "Capability not supported by this adapter"


class BackendUnavailable(NetweaveError):
    """Not available now; ``retry_after`` (seconds), when known, becomes ``Retry-After``."""

    status = 503
    code = "BackendUnavailable"
    title = "Backend unavailable"

    def __init__(
        self,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message, details=details)
        #: Set when the backend is busy getting ready (first load), not down.
        self.retry_after = retry_after


class ClusterNotConfigured(BackendUnavailable):
    """Deployment calls without a configured cluster; the message says how to configure one."""

    code = "ClusterNotConfigured"
    title = "No cluster configured"


class BackendTimeout(NetweaveError):
    status = 504
    code = "BackendTimeout"
    title = "Backend timed out"


class BackendError(NetweaveError):
    """The backend failed in a way that is not the client's fault."""

    status = 502
    code = "BackendError"
    title = "Backend error"


def status_error_class(status: int) -> type[NetweaveError]:
    """The error for a backend that answered HTTP ``status``: the one mapping every adapter
    uses, whichever client or SDK made the call, so one failure is one status on every route.
    429 and 502/503/504 are the backend being unavailable now (503); any other 5xx is the
    backend failing (502); the backend refusing the gateway's own credentials is not the
    client's fault (502)."""
    if status == 404:
        return NotFound
    if status == 409:
        return Conflict
    if status in (400, 422):
        return InvalidInput
    if status == 429 or status in (502, 503, 504):
        return BackendUnavailable
    return BackendError


__all__ = [
    "AlreadyExists",
    "BackendError",
    "BackendTimeout",
    "BackendUnavailable",
    "ClusterNotConfigured",
    "Conflict",
    "Forbidden",
    "InUse",
    "InvalidInput",
    "NetweaveError",
    "NotFound",
    "PayloadTooLarge",
    "Unauthorized",
    "Unprocessable",
    "Unsupported",
    "status_error_class",
]

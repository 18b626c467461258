"""RFC 9457 problem details, plus the design note's ``error``/``message``/``code``/``details``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

PROBLEM_MEDIA_TYPE = "application/problem+json"


class ProblemDetails(BaseModel):
    """Every 4xx/5xx body. Member names are already camel/lower case on the wire."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    #: Short machine-readable error name from the design note (e.g. ``PackageInUse``).
    error: str | None = None
    #: Same text as ``detail``, for clients written against the design note.
    message: str | None = None
    #: Numeric copy of ``status`` for the same clients.
    code: int | None = None
    details: dict[str, Any] | None = None

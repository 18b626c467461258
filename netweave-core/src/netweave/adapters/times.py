"""Backend timestamps → ``datetime``: one reading for every adapter.

Backends write times as RFC 3339 strings (Kubernetes, Helm, Argo CD, Flux, ONAP; often with a
``Z``) or as epoch seconds (OSM). A value that is missing or unreadable is ``None``, never an
error: a malformed timestamp in a backend's answer must not fail a read of the deployment.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any


def now() -> datetime:
    """The current time, aware and in UTC: the one clock records and events are stamped with."""
    return datetime.now(UTC)


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 / ISO 8601 string or positive epoch seconds as an aware ``datetime``
    (naive strings are taken as UTC), or ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if not math.isfinite(value) or value <= 0:
            return None
        try:
            return datetime.fromtimestamp(float(value), UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


__all__ = ["now", "parse_time"]

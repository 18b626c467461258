"""One stamp of an operation's idempotency key on the backend object a change creates.

A retried or resumed step (``OperationContext.idempotency_key`` is stable across retries and
restarts) must recognise what its earlier attempt made instead of acting twice: the adapter
stamps the object with :func:`idempotency_stamp` and later compares with :func:`has_stamp`.

The stamp is label-safe everywhere an adapter may put it: 40 lowercase hex characters (the
SHA-256 of the key, truncated), a valid Kubernetes label value (at most 63 characters of
``[a-z0-9]``), annotation, Helm release label, Argo CD or k8s-plugin label, or a word in a free
text field. A key itself is not (``op-id:1`` has a colon, and keys have no length limit).
A backend that wants a UUID for the request (ONAP SO's ``X-ONAP-RequestID``) gets one derived
from the same key by :func:`idempotency_uuid`.
"""

from __future__ import annotations

import hashlib
import uuid

#: The label (or annotation) key adapters stamp with, unless their backend already fixed one
#: (Helm releases keep ``netweave-op``).
STAMP_KEY = "netweave.io/operation"

_STAMP_LENGTH = 40
#: The namespace ONAP SO request ids were derived in before this module (kept: a step resumed
#: across an upgrade derives the same id).
_UUID_NAMESPACE = uuid.UUID("7b0f6f6e-4c8e-5d3a-9d0e-6e657477656f")


def idempotency_stamp(idempotency_key: str) -> str:
    """The label-safe stamp of ``idempotency_key`` (40 hex characters, stable)."""
    return hashlib.sha256(idempotency_key.encode()).hexdigest()[:_STAMP_LENGTH]


def has_stamp(value: object, idempotency_key: str) -> bool:
    """True when ``value`` (a label, an annotation …, any type) is ``idempotency_key``'s stamp."""
    return isinstance(value, str) and value == idempotency_stamp(idempotency_key)


def idempotency_uuid(idempotency_key: str, *, part: str = "") -> uuid.UUID:
    """A UUID derived from ``idempotency_key`` (and ``part``, for several requests of one
    step), for a backend that names requests by UUID."""
    return uuid.uuid5(_UUID_NAMESPACE, f"{idempotency_key}#{part}")


__all__ = ["STAMP_KEY", "has_stamp", "idempotency_stamp", "idempotency_uuid"]

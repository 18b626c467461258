"""References out of a chart's ``values.schema.json``, found before Helm compiles the schema.

Part of core's chart-archive inspector (:mod:`netweave.adapters.charts`): every adapter that
hands a Helm chart to Helm (directly or through its backend) refuses the same schemas.

Helm's schema compiler (santhosh-tekuri/jsonschema, set up by Helm with ``file``, ``http`` and
``https`` loaders and the schema placed at ``file:///values.schema.json``) loads whatever a
schema refers to: ``{"$ref": "http://10.0.0.1/x.json"}`` makes the process that validates
values (the lint child at upload, the gateway at install and dry-run) fetch that URL, and
``{"$ref": "other.json"}`` or ``file:///etc/passwd`` reads the local file system. The SDK has
no switch to turn those loaders off, so the gateway refuses such a chart before Helm sees it.

What passes (none of it makes the compiler load anything):

* ``$ref`` / ``$dynamicRef`` / ``$recursiveRef`` that start with ``#`` (a pointer or anchor in
  the same document, resolved in memory even under a remote-looking ``$id``);
* ``$schema`` and ``$ref`` naming a meta-schema the compiler has built in (JSON Schema drafts
  4, 6, 7, 2019-09 and 2020-12, ``http`` or ``https``), a ``$ref`` with a pointer into it;
* ``$id`` / ``id`` of any value: an identifier alone loads nothing.

Everything else under those keywords is refused, wherever it appears in the document (also
inside ``default`` or ``enum`` data: refusing a rare false positive is cheaper than modelling
which keywords hold schemas).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

#: Keywords whose string value the compiler resolves and loads.
REFERENCE_KEYWORDS = ("$ref", "$dynamicRef", "$recursiveRef")
#: Meta-schemas built into the compiler (fetched from nowhere), by path on json-schema.org.
_BUILT_IN_PATHS = frozenset(
    {
        "/schema",
        "/draft-04/schema",
        "/draft-06/schema",
        "/draft-07/schema",
        "/draft/2019-09/schema",
        "/draft/2020-12/schema",
    }
)


@dataclass(frozen=True, slots=True)
class ExternalReference:
    """One reference that would make Helm load something outside the document."""

    keyword: str
    value: str
    #: JSON pointer of the object holding ``keyword``.
    pointer: str


class DuplicateKey(ValueError):
    """The schema repeats a key in one object (parsers disagree on which value wins)."""


def _built_in(value: str, *, pointer_allowed: bool) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or parts.netloc != "json-schema.org":
        return False
    if parts.query or parts.path not in _BUILT_IN_PATHS:
        return False
    return parts.fragment == "" or (pointer_allowed and parts.fragment.startswith("/"))


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def external_references(schema: Any, *, limit: int = 10) -> list[ExternalReference]:
    """The first ``limit`` references in ``schema`` (parsed JSON) that leave the document."""
    found: list[ExternalReference] = []
    # Iterative: a deeply nested document must not exhaust the interpreter's stack.
    stack: list[tuple[Any, str]] = [(schema, "")]
    while stack and len(found) < limit:
        node, pointer = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(value, str):
                    if key in REFERENCE_KEYWORDS:
                        if not value.startswith("#") and not _built_in(value, pointer_allowed=True):
                            found.append(ExternalReference(key, value, pointer or "/"))
                    elif key == "$schema" and not _built_in(value, pointer_allowed=False):
                        found.append(ExternalReference(key, value, pointer or "/"))
                elif isinstance(value, dict | list):
                    stack.append((value, f"{pointer}/{_escape(str(key))}"))
        elif isinstance(node, list):
            stack.extend(
                (item, f"{pointer}/{index}")
                for index, item in enumerate(node)
                if isinstance(item, dict | list)
            )
    return found


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise DuplicateKey(f"the key {key!r} appears twice in one object")
        result[key] = value
    return result


def load_schema(data: bytes) -> Any:
    """Parse a schema as the scan needs it: strict UTF-8 JSON, no repeated keys (Go's decoder
    and Python's could otherwise see different ``$ref`` values). Raises ``ValueError`` (also
    for nesting too deep to parse)."""
    try:
        return json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except RecursionError:
        raise ValueError("nested too deeply") from None


__all__ = [
    "REFERENCE_KEYWORDS",
    "DuplicateKey",
    "ExternalReference",
    "external_references",
    "load_schema",
]

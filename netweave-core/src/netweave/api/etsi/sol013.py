"""ETSI GS NFV-SOL 013 conventions for the standard face: the ``Version`` header, media types,
attribute-based filtering, attribute selectors and paging.

Filtering and selecting work on the rendered representation (a JSON object), so every
attribute of the returned type is filterable; a path whose first segment the type does not
define is a 400, as the standard asks.
"""

from __future__ import annotations

import binascii
import copy
import functools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import msgspec

from netweave.errors import InvalidInput, NetweaveError
from netweave.store.vnf import ColumnTerm

_decode_json = msgspec.json.Decoder().decode


class NotAcceptable(NetweaveError):
    status = 406
    code = "NotAcceptable"
    title = "Not acceptable"


class PreconditionFailed(NetweaveError):
    status = 412
    code = "PreconditionFailed"
    title = "Precondition failed"


# -- versions and media types ---------------------------------------------------------------

_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)(-impl:[^\s]+)?$")


def check_version(header: str | None, major: int, supported: str) -> None:
    """SOL013 §9.1: ``Version`` on every request; missing or malformed → 400, another major
    version than the URI's → 406."""
    if header is None or not header.strip():
        raise InvalidInput(
            f"the Version header is required (this API is {supported})",
            details={"header": "Version", "supported": [supported]},
        )
    match = _VERSION.match(header.strip())
    if match is None:
        raise InvalidInput(
            f"Version {header!r} is not a version identifier (e.g. {supported})",
            details={"header": "Version", "supported": [supported]},
        )
    if int(match.group(1)) != major:
        raise NotAcceptable(
            f"Version {header} is not served here: this URI serves {supported}",
            details={"header": "Version", "supported": [supported]},
        )


def accepts_json(accept: str | None) -> bool:
    if not accept:
        return True
    for part in accept.split(","):
        media = part.split(";", 1)[0].strip().lower()
        if media in {"*/*", "application/*", "application/json"} or (
            media.startswith("application/") and media.endswith("+json")
        ):
            return True
    return False


# -- attribute-based filtering (SOL013 §5.2) -------------------------------------------------

_ONE = frozenset({"eq", "neq", "gt", "lt", "gte", "lte"})
_MULTI = frozenset({"in", "nin", "cont", "ncont"})


@dataclass(frozen=True, slots=True)
class Term:
    op: str
    path: tuple[str, ...]
    values: tuple[str, ...]


def _split(text: str, separator: str) -> list[str]:
    """Split on ``separator`` outside single quotes ('' is a quote inside a quoted value)."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    i = 0
    while i < len(text):
        char = text[i]
        if char == "'":
            if quoted and i + 1 < len(text) and text[i + 1] == "'":
                current.append("''")
                i += 2
                continue
            quoted = not quoted
            current.append(char)
        elif char == separator and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    if quoted:
        raise _bad("an unterminated quoted value")
    parts.append("".join(current))
    return parts


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == "'" and value[-1] == "'":
        return value[1:-1].replace("''", "'")
    if "'" in value:
        raise _bad(f"value {value!r} has a quote outside a quoted value")
    return value


def _unescape(segment: str) -> str:
    return segment.replace("~1", "/").replace("~a", ",").replace("~b", "@").replace("~0", "~")


def _bad(what: str) -> InvalidInput:
    return InvalidInput(f"invalid filter: {what}", details={"field": "filter"})


def parse_filter(text: str | None, attributes: frozenset[str]) -> list[Term]:
    """``(op,attr/path,value[,value…])[;(…)]``; a 400 naming what is wrong."""
    if text is None:
        return []
    if len(text) > 4096:
        raise _bad("longer than 4096 characters")
    # A client pages through one filter, so it is parsed again and again: kept parsed.
    return list(_parsed_filter(text, attributes))


@functools.lru_cache(maxsize=256)
def _parsed_filter(text: str, attributes: frozenset[str]) -> tuple[Term, ...]:
    terms: list[Term] = []
    for raw in _split(text, ";"):
        raw = raw.strip()
        if not (raw.startswith("(") and raw.endswith(")")):
            raise _bad(f"{raw!r} is not '(op,attribute,value…)'")
        parts = _split(raw[1:-1], ",")
        if len(parts) < 3:
            raise _bad(f"{raw!r} needs an operator, an attribute and a value")
        op, attr, values = parts[0].strip(), parts[1].strip(), parts[2:]
        if op not in _ONE | _MULTI:
            raise _bad(f"unknown operator {op!r} (eq, neq, gt, lt, gte, lte, in, nin, cont, ncont)")
        if op in _ONE and len(values) != 1:
            raise _bad(f"{op} takes exactly one value")
        path = tuple(_unescape(s) for s in attr.split("/"))
        if not path[0] or path[0] not in attributes or any(not s for s in path):
            raise _bad(f"{attr!r} is not an attribute of this resource")
        terms.append(Term(op, path, tuple(_unquote(v) for v in values)))
    return tuple(terms)


def _leaves(node: Any, path: Sequence[str]) -> Iterable[Any]:
    """The values at ``path``; arrays fan out (an array matches if any element does),
    ``@key`` addresses a map's keys."""
    if isinstance(node, list):
        for item in node:
            yield from _leaves(item, path)
        return
    if not path:
        yield node
        return
    head, rest = path[0], path[1:]
    if head == "@key" and isinstance(node, dict):
        for key in node:
            yield from _leaves(key, rest)
        return
    if isinstance(node, dict) and head in node:
        yield from _leaves(node[head], rest)


def _typed(have: Any, want: str) -> tuple[Any, Any] | None:
    """The pair to compare, typed after the attribute's value; None when incomparable."""
    if isinstance(have, bool):
        if want in {"true", "false"}:
            return have, want == "true"
        return None
    if isinstance(have, int | float):
        try:
            return have, float(want)
        except ValueError:
            return None
    if isinstance(have, str):
        if _looks_like_time(have) and _looks_like_time(want):
            try:
                return _time(have), _time(want)
            except ValueError:
                return have, want
        return have, want
    return None


def _looks_like_time(text: str) -> bool:
    return len(text) >= 10 and text[4:5] == "-" and text[7:8] == "-"


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _compare(op: str, have: Any, want: str) -> bool:
    pair = _typed(have, want)
    if pair is None:
        return False
    left, right = pair
    try:
        if op in {"eq", "in"}:
            return bool(left == right)
        if op == "gt":
            return bool(left > right)
        if op == "lt":
            return bool(left < right)
        if op == "gte":
            return bool(left >= right)
        if op == "lte":
            return bool(left <= right)
    except TypeError:
        return False
    if op == "cont":
        return isinstance(have, str) and want in have
    return False


def matches(item: Mapping[str, Any], terms: Sequence[Term]) -> bool:
    for term in terms:
        leaves = [leaf for leaf in _leaves(item, term.path) if not isinstance(leaf, dict)]
        if term.op in {"eq", "gt", "lt", "gte", "lte"}:
            ok = any(_compare(term.op, leaf, term.values[0]) for leaf in leaves)
        elif term.op == "neq":
            ok = not any(_compare("eq", leaf, term.values[0]) for leaf in leaves)
        elif term.op == "in":
            ok = any(_compare("eq", leaf, v) for leaf in leaves for v in term.values)
        elif term.op == "nin":
            ok = not any(_compare("eq", leaf, v) for leaf in leaves for v in term.values)
        elif term.op == "cont":
            ok = any(_compare("cont", leaf, v) for leaf in leaves for v in term.values)
        else:  # ncont
            ok = not any(_compare("cont", leaf, v) for leaf in leaves for v in term.values)
        if not ok:
            return False
    return True


def _alternatives(names: Iterable[str]) -> str:
    return "(?:" + "|".join(re.escape(n) for n in sorted(names)) + ")"


#: An unquoted filter value, or a quoted one ('' is a quote inside it).
_VALUE = "(?:[^,;'()]*|'(?:[^']|'')*')"


def filter_pattern(attributes: frozenset[str]) -> str:
    """The ``filter`` expressions :func:`parse_filter` accepts for ``attributes``, as one regular
    expression for the OpenAPI document (narrower than the parser where the grammar is
    awkward to state: no parentheses inside unquoted values)."""
    # Path segments without white space: the parser strips the attribute's ends.
    path = _alternatives(attributes) + "(?:/[^,;'()/\\s]+)*"
    one = f"\\((?:{'|'.join(sorted(_ONE))}),{path},{_VALUE}\\)"
    many = f"\\((?:{'|'.join(sorted(_MULTI))}),{path},{_VALUE}(?:,{_VALUE})*\\)"
    term = f"(?:{one}|{many})"
    return f"^{term}(?:;{term})*$"


def fields_pattern(attributes: Iterable[str]) -> str:
    """Comma-separated attribute paths whose first segment is one of ``attributes``."""
    path = _alternatives(attributes) + "(?:/[^,/\\s]+)*"
    return f"^{path}(?:,{path})*$"


# -- filters pushed down to SQL ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Column:
    """A top-level string attribute rendered straight from a column (left out when NULL);
    ``or_present``: rows whose ``or_present`` column is set may show another value (a VNF
    package with a row of its own may name its product in its VNFD), so they are kept."""

    name: str
    or_present: str | None = None


def pushdown(
    terms: Sequence[Term],
    columns: Mapping[str, Column],
    states: Mapping[str, tuple[str, str, str]] | None = None,
    json: Mapping[str, str] | None = None,
) -> list[ColumnTerm]:
    """The terms SQL can pre-filter on, as column conditions keeping a superset of the rows
    :func:`matches` keeps (each row is still checked exactly against every term).

    Pushed: ``eq in neq nin cont`` on a top-level attribute of ``columns`` whose values do not
    look like date-times (those compare as times, not as strings); ``states``: an attribute
    with two values, one of them exactly when a column is set (``instantiationState`` →
    ``(INSTANTIATED, NOT_INSTANTIATED, deployment_id)``): asking for the first needs the
    column set; ``json``: attributes rendered as stored in a JSON column, whose nested ``eq``
    and ``in`` terms the store may pre-filter (``json_in``; SQLite only). Other nested paths,
    other operators and other attributes stay in Python."""
    pushed: list[ColumnTerm] = []
    for term in terms:
        if len(term.path) != 1:
            stored = json.get(term.path[0]) if json else None
            if (
                stored is not None
                and term.op in {"eq", "in"}
                and "@key" not in term.path
                and not any(_looks_like_time(v) for v in term.values)
            ):
                pushed.append(ColumnTerm(stored, "json_in", term.values, path=term.path[1:]))
            continue
        name = term.path[0]
        if states and name in states:
            on, off, column = states[name]
            values = set(term.values)
            wants_on = (term.op in {"eq", "in"} and values == {on}) or (
                term.op in {"neq", "nin"} and values == {off}
            )
            if wants_on:
                pushed.append(ColumnTerm(column, "present"))
            continue
        spec = columns.get(name)
        if spec is None or any(_looks_like_time(v) for v in term.values):
            continue
        if term.op in {"eq", "in"}:
            pushed.append(ColumnTerm(spec.name, "in", term.values, spec.or_present))
        elif term.op in {"neq", "nin"} and spec.or_present is None:
            # NULL leaves the attribute out: no value equals, so it matches neq.
            pushed.append(ColumnTerm(spec.name, "nin", term.values))
        elif term.op == "cont" and spec.or_present is None:
            pushed.append(ColumnTerm(spec.name, "cont", term.values))
    return pushed


def exact_terms(terms: Sequence[Term], columns: Mapping[str, str]) -> list[ColumnTerm] | None:
    """The filter as conditions SQL evaluates exactly as :func:`matches` does, or None when a
    term needs Python. ``columns``: top-level attributes whose value is a string (or absent)
    that the store reads as the named column or expression of its joined page.

    Exact: ``eq in neq nin`` with values that do not look like date-times (then :func:`matches`
    compares plain strings: equality, and an absent attribute matches ``neq``/``nin`` only)."""
    exact: list[ColumnTerm] = []
    for term in terms:
        column = columns.get(term.path[0]) if len(term.path) == 1 else None
        if column is None or any(_looks_like_time(v) for v in term.values):
            return None
        if term.op in {"eq", "in"}:
            exact.append(ColumnTerm(column, "in", term.values))
        elif term.op in {"neq", "nin"}:
            exact.append(ColumnTerm(column, "nin", term.values))
        else:
            return None
    return exact


# -- attribute selectors (SOL013 §5.3) -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Selector:
    """What to keep of each item: everything, everything but ``exclude``, with ``include``
    added back where excluded by default."""

    exclude: tuple[tuple[str, ...], ...]


def _paths(text: str, attributes: frozenset[str], name: str) -> list[tuple[str, ...]]:
    paths = []
    for raw in text.split(","):
        path = tuple(_unescape(s) for s in raw.strip().split("/"))
        if not path[0] or path[0] not in attributes or any(not s for s in path):
            raise InvalidInput(
                f"{name}: {raw.strip()!r} is not an attribute of this resource",
                details={"field": name},
            )
        paths.append(path)
    return paths


def parse_selector(
    query: Mapping[str, str | None],
    attributes: frozenset[str],
    default_excluded: Sequence[str],
    required: frozenset[str],
) -> Selector:
    """``all_fields`` | ``fields`` [+ ``exclude_default``] | ``exclude_fields`` |
    ``exclude_default`` (also the default when none is given); other combinations are a 400."""
    given = {
        name
        for name in ("all_fields", "fields", "exclude_fields", "exclude_default")
        if name in query
    }
    allowed = [
        set(),
        {"all_fields"},
        {"fields"},
        {"fields", "exclude_default"},
        {"exclude_fields"},
        {"exclude_default"},
    ]
    if given not in allowed:
        raise InvalidInput(
            f"attribute selectors {sorted(given)} cannot be combined (all_fields alone; fields "
            "with or without exclude_default; exclude_fields alone; exclude_default alone)",
            details={"field": sorted(given)[0]},
        )
    defaults = tuple((name,) for name in default_excluded)
    if "all_fields" in given:
        return Selector(exclude=())
    if "exclude_fields" in given:
        paths = _paths(query["exclude_fields"] or "", attributes, "exclude_fields")
        for path in paths:
            if len(path) == 1 and path[0] in required:
                raise InvalidInput(
                    f"exclude_fields: {path[0]} is mandatory and cannot be excluded",
                    details={"field": "exclude_fields"},
                )
        return Selector(exclude=tuple(paths))
    if "fields" in given:
        wanted = {p[0] for p in _paths(query["fields"] or "", attributes, "fields")}
        return Selector(exclude=tuple(d for d in defaults if d[0] not in wanted))
    return Selector(exclude=defaults)


def select_fields(item: dict[str, Any], selector: Selector) -> dict[str, Any]:
    if not selector.exclude:
        return item
    result = copy.copy(item)
    for path in selector.exclude:
        _drop(result, path)
    return result


def _drop(node: Any, path: tuple[str, ...]) -> None:
    if isinstance(node, list):
        for element in node:
            _drop(element, path)
        return
    if not isinstance(node, dict) or path[0] not in node:
        return
    if len(path) == 1:
        del node[path[0]]
        return
    child = copy.copy(node[path[0]])
    node[path[0]] = child
    _drop(child, path[1:])


# -- paging (SOL013 §5.4.2.3, alternative 2) --------------------------------------------------


#: A key json.dumps writes as it is (printable ASCII but the quote and the backslash).
_PLAIN_KEY = re.compile(r"[ !#-\[\]-~]*").fullmatch
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")


def encode_marker(stamp: datetime, key: str) -> str:
    """The urlsafe base64 (unpadded) of ``json.dumps([stamp.isoformat(), key])``, written
    directly for a plain key (the same bytes: an ISO time needs no escape either)."""
    if _PLAIN_KEY(key) is not None:
        raw = f'["{stamp.isoformat()}", "{key}"]'.encode()
    else:
        raw = json.dumps([stamp.isoformat(), key]).encode()
    return binascii.b2a_base64(raw, newline=False).translate(_TO_URLSAFE).rstrip(b"=").decode()


def decode_marker(marker: str | None) -> tuple[datetime, str] | None:
    if marker is None:
        return None
    try:
        encoded = marker.encode("ascii").translate(_FROM_URLSAFE)
        raw = binascii.a2b_base64(encoded + b"=" * (-len(encoded) % 4))
        stamp, key = _decode_json(raw)  # msgspec.DecodeError is a ValueError
        at = datetime.fromisoformat(stamp)
        if at.utcoffset() is None:  # the gateway issues UTC times only: a client wrote this
            raise ValueError("a time without a zone")
        # In UTC here: an offset near year 1 or 9999 leaves datetime's range (OverflowError)
        # and the store compares UTC times; the same instant otherwise.
        return at.astimezone(UTC), str(key)
    except (ValueError, TypeError, OverflowError, binascii.Error):
        raise InvalidInput(
            "nextpage_opaque_marker is not a marker this gateway issued",
            details={"field": "nextpage_opaque_marker"},
        ) from None


def next_link(url: str, query: Mapping[str, str | None], marker: str) -> str:
    """``marker`` is urlsafe base64 (:func:`encode_marker`), which urlencode leaves as it is."""
    pairs = tuple(
        (name, value if value is not None else "")
        for name, value in query.items()
        if name != "nextpage_opaque_marker"
    )
    return f'<{url}?{_query_head(pairs)}nextpage_opaque_marker={marker}>; rel="next"'


@functools.lru_cache(maxsize=256)
def _query_head(pairs: tuple[tuple[str, str], ...]) -> str:
    """The encoded query before the marker (the same on every page of one list)."""
    return urlencode(pairs) + "&" if pairs else ""


__all__ = [
    "Column",
    "NotAcceptable",
    "PreconditionFailed",
    "Selector",
    "Term",
    "accepts_json",
    "check_version",
    "decode_marker",
    "encode_marker",
    "exact_terms",
    "fields_pattern",
    "filter_pattern",
    "matches",
    "next_link",
    "parse_filter",
    "parse_selector",
    "pushdown",
    "select_fields",
]

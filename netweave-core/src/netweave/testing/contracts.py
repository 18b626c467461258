"""Validate HTTP traffic against a backend's published contract (Swagger 2.0 / OpenAPI 3.x).

Backend emulators in the tests (Argo CD, OSM, ONAP …) call this for every request they receive
and every response they send, so a request shape the real API does not allow — or an emulator
answer the real API would never give — fails the test instead of passing silently.

Usage::

    from netweave.testing.contracts import ContractValidator, ContractViolation

    contract = ContractValidator.from_file(shared / "contracts/argocd/swagger.json", strict=True)

    # in the emulator's request handler:
    op = contract.validate_request(
        "POST", "/api/v1/applications/web/rollback",
        query={"project": "default"},               # Mapping, multi-dict or list of pairs
        body={"name": "web", "id": 3},              # parsed JSON (bytes are parsed too)
        headers={"Content-Type": "application/json"},
    )
    op.operation_id   # "ApplicationService_Rollback": route on it
    op.path_params    # {"name": "web"}
    ...
    contract.validate_response("POST", "/api/v1/applications/web/rollback", 200, answer)

    # a schema by name (``#/definitions/X`` or ``#/components/schemas/X``) or JSON pointer:
    contract.validate_schema("v1alpha1Application", app)

    # a custom resource against its CRD's openAPIV3Schema:
    validate_against_crd(app, shared / "contracts/argocd/application-crd.yaml")

Every failure raises :class:`ContractViolation` (an ``AssertionError``, so pytest reports it
as a test failure) whose message names the operation, the location (path, query parameter,
request or response body) and the failing field as a JSON path (``$.spec.source.repoURL``).

Options:

- ``strict=True`` closes every object schema that lists ``properties`` without saying
  ``additionalProperties`` (an unknown field fails), and rejects undeclared query parameters.
  Generated specs such as Argo CD's never say ``additionalProperties: false``; without strict
  mode almost any body would pass. Schemas used as ``allOf`` members, schemas with
  ``x-kubernetes-preserve-unknown-fields`` and free-form objects stay open.
- ``overrides={pointer: schema}`` replaces a schema the published document gets wrong, e.g.
  Argo CD's ``runtimeRawExtension`` (declared ``{raw: bytes}``, sent as a plain JSON object):
  ``{"#/definitions/runtimeRawExtension": {"type": "object"}}``. Any JSON pointer works,
  also into ``paths`` (``/`` inside a segment is ``~1``): ONAP SO's create body, typed as an
  array but sent as one object, is fixed with ``{"#/paths/~1onap~1so~1infra~1…/post/
  requestBody/content/application~1json/schema": {"$ref": "#/components/schemas/…"}}``.
  Keep each override documented where it is used.
- ``base_path`` overrides where paths are mounted (default: Swagger ``basePath`` or the path
  part of each OpenAPI ``servers[].url``; paths are also accepted without it).

OpenAPI 3.0 ``nullable`` and Swagger ``x-nullable`` are honoured; relative ``$ref`` to other
files (the ETSI specs) are loaded from disk; YAML integer keys (``400:``) are read as strings.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urldefrag, urljoin, urlsplit
from urllib.request import url2pathname

import jsonschema  # type: ignore[import-untyped,unused-ignore]
import yaml
from jsonschema.exceptions import best_match  # type: ignore[import-untyped,unused-ignore]
from referencing import Registry, Resource
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT4, DRAFT202012

__all__ = [
    "ContractValidator",
    "ContractViolation",
    "OperationMatch",
    "validate_against_crd",
]

_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_NO_VALUE = object()


class ContractViolation(AssertionError):
    """A request or response the contract does not allow.

    ``operation`` names the operation (``operationId`` and ``METHOD template``), ``location``
    says where (``request body``, ``query parameter 'x'``, ``response 200 body`` …) and
    ``field`` is the JSON path of the failing value inside a body, when there is one.
    """

    def __init__(
        self, message: str, *, operation: str, location: str, field: str | None = None
    ) -> None:
        text = f"{operation}: {location}"
        if field:
            text += f" at {field}"
        super().__init__(f"{text}: {message}")
        self.operation = operation
        self.location = location
        self.field = field
        self.reason = message


@dataclass(frozen=True, slots=True)
class OperationMatch:
    """The operation a request matched; emulators route on ``operation_id``."""

    operation_id: str
    method: str
    #: The path template as the document writes it (``/api/v1/applications/{name}``).
    template: str
    #: Path parameters, percent-decoded.
    path_params: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.operation_id} ({self.method} {self.template})"


# -- document loading --------------------------------------------------------------------


def _stringify_keys(node: Any) -> Any:
    # YAML reads ``400:`` as an int; JSON pointers (and JSON) only know string keys.
    if isinstance(node, dict):
        return {str(k): _stringify_keys(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_stringify_keys(v) for v in node]
    return node


@functools.lru_cache(maxsize=64)
def _load_file(path: str) -> Any:
    text = Path(path).read_text(encoding="utf-8")
    if path.endswith(".json"):
        return json.loads(text)
    # libyaml's loader when present: the big CRDs take seconds with the pure-Python one.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    docs = [d for d in yaml.load_all(text, Loader=loader) if d is not None]
    return _stringify_keys(docs[0] if len(docs) == 1 else docs)


def relocate_definitions(node: Any, definitions_file: str) -> Any:
    """A schema taken from an ETSI definitions file (``definitions/…_def.yaml``), its ``$ref``s
    rewritten to resolve from the API's main document one directory up: local ``#…`` refs
    point into ``definitions_file``, ``../…`` refs lose their ``../``."""
    if isinstance(node, dict):
        result = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                if value.startswith("#"):
                    value = f"{definitions_file}{value}"
                elif value.startswith("../"):
                    value = value[3:]
            result[key] = relocate_definitions(value, definitions_file)
        return result
    if isinstance(node, list):
        return [relocate_definitions(v, definitions_file) for v in node]
    return node


def _escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


def _pointer(*segments: str) -> str:
    return "/" + "/".join(_escape(s) for s in segments)


# -- schema preparation ------------------------------------------------------------------


class _SchemaPreparer:
    """Rewrites schemas in place: nullable, int-or-string, and (strict) closed objects."""

    def __init__(self, *, strict: bool, nullable: bool, open_pointers: set[str]) -> None:
        self.strict = strict
        self.nullable = nullable
        #: Fragments (``/definitions/X``) of schemas used as ``allOf`` members: closing those
        #: would make the ``allOf`` unsatisfiable.
        self.open_pointers = open_pointers

    def schema(self, node: Any, pointer: str = "", *, closable: bool = True) -> None:
        if not isinstance(node, dict):
            return
        if self.nullable and (node.get("nullable") is True or node.get("x-nullable") is True):
            kind = node.get("type")
            if isinstance(kind, str):
                node["type"] = [kind, "null"]
            if isinstance(node.get("enum"), list) and None not in node["enum"]:
                node["enum"] = [*node["enum"], None]
        if node.get("x-kubernetes-int-or-string") is True:
            node.pop("type", None)
            node.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
        props = node.get("properties")
        if (
            self.strict
            and closable
            and isinstance(props, dict)
            and "additionalProperties" not in node
            and "allOf" not in node
            and node.get("x-kubernetes-preserve-unknown-fields") is not True
            and pointer not in self.open_pointers
        ):
            node["additionalProperties"] = False
        if isinstance(props, dict):
            for value in props.values():
                self.schema(value)
        for key in ("items", "additionalProperties", "not"):
            child = node.get(key)
            if isinstance(child, dict):
                self.schema(child)
            elif key == "items" and isinstance(child, list):
                for item in child:
                    self.schema(item)
        for key in ("anyOf", "oneOf"):
            for item in node.get(key) or ():
                self.schema(item)
        for item in node.get("allOf") or ():
            # An allOf member sees only its own properties: closing it would reject the
            # properties the other members add.
            self.schema(item, closable=False)

    def document(self, doc: Any) -> None:
        """Prepare every schema location of a Swagger/OpenAPI document (or a definitions file)."""
        if not isinstance(doc, dict):
            return
        for name, schema in (doc.get("definitions") or {}).items():
            self.schema(schema, _pointer("definitions", name))
        components = doc.get("components") or {}
        for name, schema in (components.get("schemas") or {}).items():
            self.schema(schema, _pointer("components", "schemas", name))
        for param in (components.get("parameters") or {}).values():
            self._parameter(param)
        for param in (doc.get("parameters") or {}).values():
            self._parameter(param)
        for body in (components.get("requestBodies") or {}).values():
            self._content(body)
        for response in (components.get("responses") or {}).values():
            self._response(response)
        for response in (doc.get("responses") or {}).values():
            self._response(response)
        for item in (doc.get("paths") or {}).values():
            if not isinstance(item, dict):
                continue
            for param in item.get("parameters") or ():
                self._parameter(param)
            for method in _METHODS:
                op = item.get(method)
                if not isinstance(op, dict):
                    continue
                for param in op.get("parameters") or ():
                    self._parameter(param)
                self._content(op.get("requestBody"))
                for response in (op.get("responses") or {}).values():
                    self._response(response)

    def _parameter(self, param: Any) -> None:
        if isinstance(param, dict):
            self.schema(param.get("schema"))

    def _content(self, holder: Any) -> None:
        if isinstance(holder, dict):
            for media in (holder.get("content") or {}).values():
                if isinstance(media, dict):
                    self.schema(media.get("schema"))

    def _response(self, response: Any) -> None:
        if isinstance(response, dict):
            self.schema(response.get("schema"))
            self._content(response)


def _allof_targets(node: Any, found: set[str]) -> set[str]:
    """Fragments of every ``$ref`` used directly as an ``allOf`` member anywhere in ``node``."""
    if isinstance(node, dict):
        for item in node.get("allOf") or ():
            if isinstance(item, dict) and isinstance(item.get("$ref"), str):
                found.add(unquote(urldefrag(item["$ref"])[1]))
        for value in node.values():
            _allof_targets(value, found)
    elif isinstance(node, list):
        for value in node:
            _allof_targets(value, found)
    return found


def _referenced_files(doc: Any, uri: str, limit: int = 200) -> dict[str, Any]:
    """Copies of the files ``doc`` refers to by relative ``$ref``, transitively (``file:`` only)."""
    found: dict[str, Any] = {}
    pending = [(doc, uri)]
    while pending and len(found) < limit:  # bounded: a spec does not span hundreds of files
        node, base = pending.pop()
        for ref in _refs(node):
            target = urldefrag(_join(base, ref))[0]
            if not target.startswith("file:") or target == uri or target in found:
                continue
            path = url2pathname(urlsplit(target).path)
            if not Path(path).is_file():
                continue  # reported when a validation actually follows it
            found[target] = copy.deepcopy(_load_file(path))
            pending.append((found[target], target))
    return found


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and not ref.startswith("#"):
            yield ref
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _apply_overrides(doc: Any, overrides: Mapping[str, Any]) -> None:
    for pointer, replacement in overrides.items():
        fragment = pointer[1:] if pointer.startswith("#") else pointer
        parts = [p.replace("~1", "/").replace("~0", "~") for p in fragment.split("/")[1:]]
        if not parts:
            raise ValueError(f"override pointer {pointer!r} must name a location")
        parent = doc
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        if isinstance(parent, list):
            parent[int(parts[-1])] = copy.deepcopy(replacement)
        else:
            if parts[-1] not in parent:
                raise ValueError(f"override pointer {pointer!r} does not exist in the document")
            parent[parts[-1]] = copy.deepcopy(replacement)


def _format_checker() -> jsonschema.FormatChecker:
    checker = jsonschema.FormatChecker()

    def _int_range(bits: int) -> Any:
        def check(value: object) -> bool:
            if isinstance(value, bool):
                return True
            if isinstance(value, str):
                # Query parameters and protobuf-JSON int64 values arrive as strings.
                if not re.fullmatch(r"-?\d+", value):
                    return False
                value = int(value)
            if isinstance(value, int):
                return bool(-(2 ** (bits - 1)) <= value < 2 ** (bits - 1))
            return True

        return check

    checker.checks("int32")(_int_range(32))
    checker.checks("int64")(_int_range(64))
    return checker


_FORMAT_CHECKER = _format_checker()


def _json_path(parts: Iterable[Any]) -> str:
    text = "$"
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _describe(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        schema = error.schema if isinstance(error.schema, Mapping) else {}
        allowed = schema.get("properties") or {}
        extra = sorted(k for k in error.instance if k not in allowed)
        return f"unknown field(s) {extra} (the contract allows {sorted(allowed)[:40]})"
    return str(error.message)


def _schema_error(
    validator: Any, instance: Any, *, operation: str, location: str, prefix: Iterable[Any] = ()
) -> None:
    error = best_match(validator.iter_errors(instance))
    if error is None:
        return
    # best_match picks the most relevant error; for anyOf/oneOf prefer its deepest context.
    while error.context:
        deeper = best_match(error.context)
        if deeper is None:
            break
        error = deeper
    raise ContractViolation(
        _describe(error),
        operation=operation,
        location=location,
        field=_json_path([*prefix, *error.absolute_path]),
    )


# -- the validator -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Template:
    template: str
    regex: re.Pattern[str]
    names: tuple[str, ...]
    literal_segments: int


def _compile_template(template: str) -> _Template:
    names: list[str] = []
    pattern = ""
    literals = 0
    for segment in template.strip("/").split("/"):
        pieces = re.split(r"(\{[^}]+\})", segment)
        seg_pattern = ""
        has_literal = False
        for piece in pieces:
            if piece.startswith("{") and piece.endswith("}"):
                names.append(piece[1:-1])
                seg_pattern += f"(?P<p{len(names) - 1}>[^/]+)"
            elif piece:
                has_literal = True
                seg_pattern += re.escape(piece)
        literals += int(has_literal)
        pattern += "/" + seg_pattern
    return _Template(template, re.compile(f"^{pattern or '/'}/?$"), tuple(names), literals)


class ContractValidator:
    """Validates requests and responses against one Swagger 2.0 or OpenAPI 3.x document.

    Build it once per test session (``from_file`` caches the parsed document; compiled schema
    validators are cached per instance) and call it from the emulator for every exchange.
    """

    def __init__(
        self,
        document: Mapping[str, Any],
        *,
        uri: str = "urn:netweave:contract",
        strict: bool = False,
        overrides: Mapping[str, Any] | None = None,
        base_path: str | None = None,
    ) -> None:
        doc = copy.deepcopy(dict(document))
        if "swagger" in doc:
            self.version = str(doc["swagger"])
            self._oas3 = False
        elif "openapi" in doc:
            self.version = str(doc["openapi"])
            self._oas3 = True
        else:
            raise ValueError("not a Swagger 2.0 or OpenAPI 3.x document (no swagger/openapi key)")
        self._oas31 = self._oas3 and not self.version.startswith("3.0")
        self.strict = strict
        self.uri = uri
        self._overrides = dict(overrides or {})
        _apply_overrides(doc, self._overrides)
        # Every file of a multi-file spec is read up front, so that a schema used in an allOf
        # of *another* file is known (and left open) before any file is prepared.
        documents = {uri: doc, **_referenced_files(doc, uri)}
        self._open: set[str] = set()
        for each in documents.values():
            _allof_targets(each, self._open)
        self._preparer = _SchemaPreparer(
            strict=strict, nullable=not self._oas31, open_pointers=self._open
        )
        for each in documents.values():
            self._preparer.document(each)
        self.document = doc
        self._spec = DRAFT202012 if self._oas31 else DRAFT4
        self._validator_cls: Any = (
            jsonschema.Draft202012Validator if self._oas31 else jsonschema.Draft4Validator
        )
        empty: Registry[Any] = Registry(retrieve=self._retrieve)  # type: ignore[call-arg,unused-ignore]
        self._registry = empty.with_resources(
            (where, self._spec.create_resource(each)) for where, each in documents.items()
        )
        self._resolver = self._registry.resolver(base_uri=uri)
        self._validators: dict[str, Any] = {}
        self._base_paths = self._find_base_paths(base_path)
        self._templates = sorted(
            (_compile_template(t) for t in (doc.get("paths") or {})),
            # Literal segments win over parameters: ``/applications/manifestsWithFiles`` must
            # not match ``/applications/{name}``.
            key=lambda t: (-t.literal_segments, -len(t.template)),
        )

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        *,
        strict: bool = False,
        overrides: Mapping[str, Any] | None = None,
        base_path: str | None = None,
    ) -> ContractValidator:
        """Load a ``.json`` or ``.yaml`` document; relative ``$ref`` resolve next to it."""
        resolved = Path(path).resolve()
        return cls(
            _load_file(str(resolved)),
            uri=resolved.as_uri(),
            strict=strict,
            overrides=overrides,
            base_path=base_path,
        )

    # -- public API ------------------------------------------------------------------------

    def match(self, method: str, path: str) -> OperationMatch:
        """The operation for ``method`` and a request path (percent-encoded, no query)."""
        method_l = method.lower()
        raw = urlsplit(path).path or "/"
        # Several templates can match one path (``{name}`` vs ``{application.metadata.name}``):
        # the first that declares the method wins; 405 only when none does.
        matched: list[str] = []
        for candidate in self._candidate_paths(raw):
            for template in self._templates:
                found = template.regex.match(candidate)
                if found is None:
                    continue
                item = self._deref(self.document["paths"][template.template])[0]
                op = item.get(method_l)
                if not isinstance(op, dict):
                    matched.append(template.template)
                    continue
                params = {
                    name: unquote(found.group(f"p{i}")) for i, name in enumerate(template.names)
                }
                op_id = str(op.get("operationId") or f"{method.upper()} {template.template}")
                return OperationMatch(op_id, method.upper(), template.template, params)
        if matched:
            allowed = sorted(
                {
                    m.upper()
                    for t in matched
                    for m in _METHODS
                    if m in self._deref(self.document["paths"][t])[0]
                }
            )
            raise ContractViolation(
                f"method not allowed (the contract allows {allowed} on {matched})",
                operation=f"{method.upper()} {raw}",
                location="request method",
            )
        raise ContractViolation(
            "no path template in the contract matches",
            operation=f"{method.upper()} {raw}",
            location="request path",
        )

    def validate_request(
        self,
        method: str,
        path: str,
        query: Any = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> OperationMatch:
        """Validate path, query parameters, headers (when given) and JSON body of a request.

        ``query`` is a mapping (values may be lists), an object with ``multi_items()`` (httpx,
        Starlette/Litestar), a list of pairs or a raw query string; a query string inside
        ``path`` is read too. ``body`` is the parsed JSON (``bytes``/``bytearray`` are parsed);
        ``None`` means no body. Returns the matched operation.
        """
        match = self.match(method, path)
        item_uri = self._path_item_uri(match.template)
        item, item_base = self._deref(self.document["paths"][match.template], self.uri)
        op_uri = f"{item_uri}/{method.lower()}"
        op = item[method.lower()]
        label = match.label
        params = self._parameters(item, op, item_base, item_uri, op_uri)

        values = _query_pairs(urlsplit(path).query)
        values.extend(_query_pairs(query))
        by_name: dict[str, list[str]] = {}
        for key, value in values:
            by_name.setdefault(key, []).append(value)
        declared_query = {name for (name, where) in params if where == "query"}
        lowered_headers = {k.lower(): v for k, v in (headers or {}).items()}

        for (name, where), (param, schema_uri) in params.items():
            if where == "path":
                self._check_value(
                    param, schema_uri, [match.path_params.get(name, "")], label, f"path {name!r}"
                )
            elif where == "query":
                if name in by_name:
                    self._check_value(
                        param, schema_uri, by_name[name], label, f"query parameter {name!r}"
                    )
                elif param.get("required"):
                    raise ContractViolation(
                        "required query parameter missing",
                        operation=label,
                        location=f"query parameter {name!r}",
                    )
            elif where == "header" and headers is not None:
                if name.lower() in lowered_headers:
                    self._check_value(
                        param,
                        schema_uri,
                        [lowered_headers[name.lower()]],
                        label,
                        f"header {name!r}",
                    )
                elif param.get("required") and name.lower() not in {
                    "content-type",
                    "accept",
                    "authorization",
                }:
                    raise ContractViolation(
                        "required header missing", operation=label, location=f"header {name!r}"
                    )
        if self.strict:
            unknown = sorted(set(by_name) - declared_query)
            if unknown:
                raise ContractViolation(
                    f"undeclared query parameter(s) {unknown} "
                    f"(the contract declares {sorted(declared_query)})",
                    operation=label,
                    location="query",
                )
        self._check_request_body(op, op_uri, params, body, lowered_headers, label)
        return match

    def validate_response(
        self,
        method: str,
        path: str,
        status: int,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> OperationMatch:
        """Validate a response's status and JSON body (``None``: no body) for a request."""
        match = self.match(method, path)
        item_uri = self._path_item_uri(match.template)
        item, item_base = self._deref(self.document["paths"][match.template], self.uri)
        op = item[method.lower()]
        op_uri = f"{item_uri}/{method.lower()}"
        responses = op.get("responses") or {}
        label = match.label
        key = next(
            (
                k
                for k in (str(status), f"{str(status)[0]}XX", f"{str(status)[0]}xx")
                if k in responses
            ),
            "default" if "default" in responses else None,
        )
        if key is None:
            raise ContractViolation(
                f"status {status} is not declared (declared: {sorted(responses)})",
                operation=label,
                location="response status",
            )
        response_uri = f"{op_uri}/responses/{_escape(key)}"
        response, response_uri = self._deref_uri(responses[key], response_uri, item_base)
        if isinstance(body, bytes | bytearray):
            body = self._parse_json(bytes(body), label, f"response {status} body")
        location = f"response {status} body"
        if self._oas3:
            content = response.get("content") or {}
            content_type = (headers or {}).get("content-type") or (headers or {}).get(
                "Content-Type"
            )
            media_key = _pick_media(content, content_type)
            if media_key is None:
                if body is not None and self.strict and content:
                    raise ContractViolation(
                        f"no JSON media type declared for this response ({sorted(content)})",
                        operation=label,
                        location=location,
                    )
                return match
            media = content[media_key]
            if not isinstance(media, dict) or "schema" not in media:
                return match
            schema_uri = f"{response_uri}/content/{_escape(media_key)}/schema"
        else:
            if "schema" not in response:
                return match
            schema_uri = f"{response_uri}/schema"
        if body is None:
            if status == 204:
                return match
            raise ContractViolation(
                "the contract declares a body schema but the response has no body",
                operation=label,
                location=location,
            )
        _schema_error(self._validator(schema_uri), body, operation=label, location=location)
        return match

    def validate_schema(self, name_or_pointer: str, instance: Any) -> None:
        """Validate ``instance`` against a named schema or a ``#/…`` pointer in the document."""
        if name_or_pointer.startswith("#"):
            uri = self.uri + "#" + quote(name_or_pointer[1:], safe="/~")
        elif self._oas3:
            uri = self.uri + "#" + _pointer("components", "schemas", name_or_pointer)
        else:
            uri = self.uri + "#" + _pointer("definitions", name_or_pointer)
        _schema_error(
            self._validator(uri), instance, operation=name_or_pointer, location="instance"
        )

    # -- internals -------------------------------------------------------------------------

    def _retrieve(self, uri: str) -> Resource[Any]:
        # Multi-file specs (ETSI) point at sibling YAML files with relative refs.
        if not uri.startswith("file:"):
            raise Unresolvable(ref=uri)
        doc = copy.deepcopy(_load_file(url2pathname(urlsplit(uri).path)))
        self._preparer.open_pointers |= _allof_targets(doc, set())
        self._preparer.document(doc)
        return self._spec.create_resource(doc)

    def _find_base_paths(self, base_path: str | None) -> list[str]:
        bases: list[str] = []
        if base_path is not None:
            bases.append(base_path)
        elif self._oas3:
            for server in self.document.get("servers") or ():
                url = str(server.get("url", ""))
                for var, spec in (server.get("variables") or {}).items():
                    url = url.replace("{" + var + "}", str(spec.get("default", "")))
                bases.append(urlsplit(url).path)
        else:
            bases.append(str(self.document.get("basePath") or ""))
        cleaned = {"/" + b.strip("/") if b.strip("/") else "" for b in bases}
        return sorted(cleaned, key=len, reverse=True) + ([""] if "" not in cleaned else [])

    def _candidate_paths(self, raw: str) -> Iterator[str]:
        for base in self._base_paths:
            if not base:
                yield raw
            elif raw == base or raw.startswith(base + "/"):
                yield raw[len(base) :] or "/"

    def _path_item_uri(self, template: str) -> str:
        return f"{self.uri}#{_pointer('paths', template)}"

    def _deref(self, node: Any, base: str | None = None) -> tuple[Any, str]:
        """Follow ``$ref`` of a structural node (parameter, response, path item)."""
        current_base = base or self.uri
        for _ in range(16):  # bounded: a ref cycle in a document must not hang a test
            if not (isinstance(node, dict) and isinstance(node.get("$ref"), str)):
                return node, current_base
            target = _join(current_base, node["$ref"])
            resolved = self._resolver.lookup(target)
            node = resolved.contents
            current_base = target
        raise ValueError(f"$ref chain too long at {current_base}")

    def _deref_uri(self, node: Any, node_uri: str, base: str) -> tuple[Any, str]:
        if isinstance(node, dict) and isinstance(node.get("$ref"), str):
            resolved, where = self._deref(node, base)
            return resolved, where
        return node, node_uri

    def _parameters(
        self, item: Mapping[str, Any], op: Mapping[str, Any], base: str, item_uri: str, op_uri: str
    ) -> dict[tuple[str, str], tuple[dict[str, Any], str]]:
        """Declared parameters by (name, in): the parameter and its schema's URI."""
        params: dict[tuple[str, str], tuple[dict[str, Any], str]] = {}
        for holder, holder_uri in ((item, item_uri), (op, op_uri)):
            for index, raw in enumerate(holder.get("parameters") or ()):
                param, where = self._deref_uri(raw, f"{holder_uri}/parameters/{index}", base)
                if not isinstance(param, dict):
                    continue
                # Swagger 2 keeps type/format on the parameter itself; OpenAPI 3 under schema.
                schema_uri = f"{where}/schema" if "schema" in param else where
                params[(str(param.get("name")), str(param.get("in")))] = (param, schema_uri)
        return params

    def _validator(self, schema_uri: str) -> Any:
        found = self._validators.get(schema_uri)
        if found is None:
            found = self._validator_cls(
                {"$ref": schema_uri}, registry=self._registry, format_checker=_FORMAT_CHECKER
            )
            self._validators[schema_uri] = found
        return found

    def _param_validator(self, param: Mapping[str, Any], schema_uri: str) -> Any:
        if "schema" in param:
            return self._validator(schema_uri)
        # Swagger 2 non-body parameter: the parameter object carries the schema keywords.
        key = schema_uri + "#param"
        found = self._validators.get(key)
        if found is None:
            keywords = {
                k: v
                for k, v in param.items()
                if k
                in (
                    "type",
                    "format",
                    "items",
                    "enum",
                    "minimum",
                    "maximum",
                    "exclusiveMinimum",
                    "exclusiveMaximum",
                    "minLength",
                    "maxLength",
                    "pattern",
                    "minItems",
                    "maxItems",
                    "uniqueItems",
                )
            }
            found = self._validator_cls(
                keywords, registry=self._registry, format_checker=_FORMAT_CHECKER
            )
            self._validators[key] = found
        return found

    def _check_value(
        self,
        param: Mapping[str, Any],
        schema_uri: str,
        raw_values: list[str],
        label: str,
        location: str,
    ) -> None:
        schema = param.get("schema") if "schema" in param else param
        schema = self._deref(schema)[0] if isinstance(schema, dict) else {}
        kind = schema.get("type") if isinstance(schema, dict) else None
        if kind == "array":
            items = schema.get("items") or {}
            items = self._deref(items)[0] if isinstance(items, dict) else {}
            if param.get("collectionFormat", "multi" if "schema" not in param else "") == "csv":
                raw_values = [v for raw in raw_values for v in raw.split(",")]
            value: Any = [_coerce(v, items.get("type"), label, location) for v in raw_values]
        else:
            if len(raw_values) > 1:
                raise ContractViolation(
                    f"given {len(raw_values)} times, the contract allows one value",
                    operation=label,
                    location=location,
                )
            value = _coerce(raw_values[0], kind, label, location)
        _schema_error(
            self._param_validator(param, schema_uri), value, operation=label, location=location
        )

    def _check_request_body(
        self,
        op: Mapping[str, Any],
        op_uri: str,
        params: Mapping[tuple[str, str], tuple[dict[str, Any], str]],
        body: Any,
        headers: Mapping[str, str],
        label: str,
    ) -> None:
        location = "request body"
        if isinstance(body, bytes | bytearray):
            body = self._parse_json(bytes(body), label, location) if body else None
        if self._oas3:
            raw = op.get("requestBody")
            if raw is None:
                if body is not None:
                    raise ContractViolation(
                        "the operation takes no request body", operation=label, location=location
                    )
                return
            request_body, body_uri = self._deref_uri(raw, f"{op_uri}/requestBody", self.uri)
            if body is None:
                if request_body.get("required"):
                    raise ContractViolation(
                        "required request body missing", operation=label, location=location
                    )
                return
            content = request_body.get("content") or {}
            media_key = _pick_media(content, headers.get("content-type"))
            if media_key is None or not isinstance(content[media_key], dict):
                return
            if "schema" not in content[media_key]:
                return
            schema_uri = f"{body_uri}/content/{_escape(media_key)}/schema"
        else:
            body_params = [(p, uri) for (_, where), (p, uri) in params.items() if where == "body"]
            form = any(where == "formData" for (_, where) in params)
            if not body_params:
                if body is not None and not form:
                    raise ContractViolation(
                        "the operation takes no request body", operation=label, location=location
                    )
                return
            param, schema_uri = body_params[0]
            if body is None:
                if param.get("required"):
                    raise ContractViolation(
                        "required request body missing", operation=label, location=location
                    )
                return
            content_type = headers.get("content-type")
            consumes = op.get("consumes") or self.document.get("consumes") or []
            if content_type and consumes:
                media = content_type.split(";")[0].strip().lower()
                if media not in [c.lower() for c in consumes]:
                    raise ContractViolation(
                        f"content type {media!r} not accepted (consumes {consumes})",
                        operation=label,
                        location="header 'Content-Type'",
                    )
        _schema_error(self._validator(schema_uri), body, operation=label, location=location)

    @staticmethod
    def _parse_json(raw: bytes, label: str, location: str) -> Any:
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise ContractViolation(
                f"not JSON ({exc})", operation=label, location=location
            ) from None


def _join(base: str, ref: str) -> str:
    # urljoin ignores non-hierarchical schemes (``urn:``), so same-document refs are joined here.
    if ref.startswith("#"):
        return urldefrag(base)[0] + ref
    return urljoin(base, ref)


def _pick_media(content: Mapping[str, Any], content_type: str | None) -> str | None:
    if not content:
        return None
    if content_type:
        media = content_type.split(";")[0].strip().lower()
        for key in content:
            if key.lower() == media:
                return key if "json" in key.lower() else None
    for key in content:
        if key.lower() == "application/json":
            return key
    for key in content:
        if "json" in key.lower() or key == "*/*":
            return key
    return None


def _query_pairs(query: Any) -> list[tuple[str, str]]:
    if query is None or query == "":
        return []
    if isinstance(query, str | bytes):
        text = query.decode() if isinstance(query, bytes) else query
        return parse_qsl(text, keep_blank_values=True)
    if hasattr(query, "multi_items"):
        return [(str(k), str(v)) for k, v in query.multi_items()]
    if isinstance(query, Mapping):
        pairs: list[tuple[str, str]] = []
        for key, value in query.items():
            if isinstance(value, list | tuple):
                pairs.extend((str(key), _query_text(v)) for v in value)
            else:
                pairs.append((str(key), _query_text(value)))
        return pairs
    return [(str(k), _query_text(v)) for k, v in query]


def _query_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _coerce(raw: str, kind: Any, label: str, location: str) -> Any:
    """A query/path/header string as the type the contract declares (fails if it is not)."""
    try:
        if kind == "integer":
            return int(raw)
        if kind == "number":
            return float(raw)
    except ValueError:
        raise ContractViolation(
            f"{raw!r} is not a {kind}", operation=label, location=location
        ) from None
    if kind == "boolean":
        if raw not in ("true", "false"):
            raise ContractViolation(
                f"{raw!r} is not a boolean (true/false)", operation=label, location=location
            )
        return raw == "true"
    return raw


# -- custom resources --------------------------------------------------------------------


@functools.lru_cache(maxsize=32)
def _crd_validators(crd_path: str, strict: bool) -> dict[str, tuple[str, Any]]:
    """``apiVersion`` → (kind, compiled validator) for every served version of a CRD file."""
    loaded = _load_file(crd_path)
    docs = loaded if isinstance(loaded, list) else [loaded]
    result: dict[str, tuple[str, Any]] = {}
    for doc in docs:
        if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
            continue
        spec = doc["spec"]
        for version in spec.get("versions") or ():
            schema = copy.deepcopy((version.get("schema") or {}).get("openAPIV3Schema") or {})
            _SchemaPreparer(strict=strict, nullable=True, open_pointers=set()).schema(schema)
            api_version = f"{spec['group']}/{version['name']}"
            validator = jsonschema.Draft4Validator(schema, format_checker=_FORMAT_CHECKER)
            result[api_version] = (str(spec["names"]["kind"]), validator)
    if not result:
        raise ValueError(f"{crd_path}: no CustomResourceDefinition with a versioned schema")
    return result


def validate_against_crd(
    obj: Mapping[str, Any], crd_path: str | Path, *, strict: bool = True
) -> None:
    """Validate a custom resource against its CRD's ``openAPIV3Schema``.

    ``apiVersion`` and ``kind`` must name one of the CRD's versions. ``strict`` (default)
    rejects fields the schema does not list, like the API server's strict field validation;
    ``x-kubernetes-preserve-unknown-fields`` subtrees stay open. CEL rules
    (``x-kubernetes-validations``) are not evaluated.
    """
    validators = _crd_validators(str(Path(crd_path).resolve()), strict)
    api_version = str(obj.get("apiVersion"))
    kind = str(obj.get("kind"))
    label = f"{kind} {api_version} (CRD {Path(crd_path).name})"
    if api_version not in validators:
        raise ContractViolation(
            f"apiVersion must be one of {sorted(validators)}",
            operation=label,
            location="object",
            field="$.apiVersion",
        )
    expected_kind, validator = validators[api_version]
    if kind != expected_kind:
        raise ContractViolation(
            f"kind must be {expected_kind!r}", operation=label, location="object", field="$.kind"
        )
    name = (
        (obj.get("metadata") or {}).get("name") if isinstance(obj.get("metadata"), dict) else None
    )
    if not name and not (obj.get("metadata") or {}).get("generateName"):
        raise ContractViolation(
            "metadata.name is required", operation=label, location="object", field="$.metadata"
        )
    _schema_error(validator, dict(obj), operation=label, location="object")

"""Validation of request bodies the way the apiserver answers them.

Built-in kinds use the OpenAPI schemas shipped by ``kubernetes-validate``
(its "strict" variant, which closes every object with
``additionalProperties: false``). A real apiserver decodes a built-in object
into Go structs before validating it, so:

* a wrong JSON type is a decoding error: **400 BadRequest**
  (``... cannot be handled as a Deployment: json: cannot unmarshal ...``);
* an unknown field is dropped, reported in a ``Warning`` header
  (``fieldValidation=Warn``, the default), silently dropped (``Ignore``) or
  refused with **400** (``Strict``: ``strict decoding error: unknown field``);
* a missing required field is a validation error: **422 Invalid**.

Custom resources are checked against their CRD's structural
``openAPIV3Schema``: unknown fields are pruned unless
``x-kubernetes-preserve-unknown-fields`` (or refused with 400 under
``Strict``), defaults are applied, and type/enum/pattern/required/bounds
violations give **422 Invalid**. CEL rules (``x-kubernetes-validations``) are
not evaluated.
"""

from __future__ import annotations

import importlib.util
import json
import re
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from netweave.testing.k8s.errors import ApiError, invalid
from netweave.testing.k8s.patches import Keyer
from netweave.testing.k8s.util import JSONDict, clone

_JSON_TYPES = {
    dict: "object",
    list: "array",
    str: "string",
    bool: "bool",
    int: "number",
    float: "number",
}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return _JSON_TYPES.get(type(value), "value")


def _matches_type(value: Any, typ: str) -> bool:
    if typ == "object":
        return isinstance(value, dict)
    if typ == "array":
        return isinstance(value, list)
    if typ == "string":
        return isinstance(value, str)
    if typ == "boolean":
        return isinstance(value, bool)
    if typ == "integer":
        if isinstance(value, bool):
            return False
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if typ == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if typ == "null":
        return value is None
    return True


def _fmt_path(path: list[str | int]) -> str:
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + p
    return out


@dataclass
class Outcome:
    """What a validation pass found; ``unknown`` fields were already pruned."""

    unknown: list[str] = field(default_factory=list)
    type_errors: list[tuple[str, str]] = field(default_factory=list)  # (path, message)
    causes: list[tuple[str, str, str]] = field(default_factory=list)  # (reason, field, message)


# --- built-in kinds ------------------------------------------------------------

_DEFS_LOCK = threading.Lock()
_DEFS_CACHE: dict[str, tuple[dict[str, Any], dict[tuple[str, str], str]]] = {}


def _schema_dir(k8s_minor: str) -> str:
    # Locate the package without importing it: its __init__ pulls in jsonschema and
    # more (~0.3 s) and only its data files are needed.
    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("kubernetes-validate is not installed (netweave-core[testing])")
    base = Path(next(iter(spec.submodule_search_locations))) / "kubernetes-json-schema"
    names = sorted(
        (p.name for p in base.iterdir() if p.name.endswith("-local-strict")),
        key=lambda n: tuple(int(x) for x in n[1:].split("-")[0].split(".")[:2]),
    )
    want = tuple(int(x) for x in k8s_minor.split(".")[:2])
    chosen = names[0]
    for n in names:
        if tuple(int(x) for x in n[1:].split("-")[0].split(".")[:2]) <= want:
            chosen = n
    return str(base / chosen / "_definitions.json")


def builtin_definitions(k8s_minor: str) -> tuple[dict[str, Any], dict[tuple[str, str], str]]:
    """All definitions plus a (apiVersion, kind) -> definition name map, cached per process."""
    with _DEFS_LOCK:
        cached = _DEFS_CACHE.get(k8s_minor)
        if cached is not None:
            return cached
        with open(_schema_dir(k8s_minor), encoding="utf-8") as fh:
            defs: dict[str, Any] = json.load(fh)["$defs"]
        roots: dict[tuple[str, str], str] = {}
        for name, d in defs.items():
            for gvk in d.get("x-kubernetes-group-version-kind") or []:
                g, v, k = gvk.get("group", ""), gvk.get("version", ""), gvk.get("kind", "")
                roots[(f"{g}/{v}" if g else v, k)] = name
        _DEFS_CACHE[k8s_minor] = (defs, roots)
        return defs, roots


def _deref(schema: Any, defs: dict[str, Any]) -> tuple[Any, str | None]:
    """Follow ``$ref``s; also return the definition name (the Go struct) reached."""
    name = None
    # Refs are never chained more than a few deep in these schemas; bound it anyway.
    for _ in range(8):
        if not isinstance(schema, dict) or "$ref" not in schema:
            break
        ref = str(schema["$ref"])
        name = ref.rsplit("/", 1)[-1]
        schema = defs.get(name, {})
    return schema, name


def _go_type(schema: Any, defs: dict[str, Any]) -> str:
    schema, name = _deref(schema, defs)
    if name:
        short = name.rsplit(".", 1)[-1]
        if short == "IntOrString":
            return "intstr.IntOrString"
        if short == "Quantity":
            return "resource.Quantity"
        if short == "Time":
            return "v1.Time"
        return "v1." + short if "meta.v1" in name else short
    if not isinstance(schema, dict):
        return "interface {}"
    types = schema.get("type") or []
    types = [types] if isinstance(types, str) else types
    typ = next((t for t in types if t != "null"), "")
    fmt = schema.get("format")
    if typ == "integer":
        return str(fmt) if fmt in ("int32", "int64") else "int"
    if typ == "number":
        return "float64"
    if typ == "boolean":
        return "bool"
    if typ == "string":
        return "[]uint8" if fmt == "byte" else "string"
    if typ == "array":
        return "[]" + _go_type(schema.get("items", {}), defs)
    if typ == "object":
        ap = schema.get("additionalProperties")
        if isinstance(ap, dict):
            return "map[string]" + _go_type(ap, defs)
        return "struct"
    return "interface {}"


class BuiltinValidator:
    """Checks built-in objects against kubernetes-validate's schemas."""

    def __init__(self, k8s_minor: str) -> None:
        self.k8s_minor = k8s_minor

    def has_schema(self, api_version: str, kind: str) -> bool:
        _, roots = builtin_definitions(self.k8s_minor)
        return (api_version, kind) in roots

    def check(
        self, obj: JSONDict, api_version: str, kind: str, *, status_only: bool = False
    ) -> Outcome:
        defs, roots = builtin_definitions(self.k8s_minor)
        out = Outcome()
        root = roots.get((api_version, kind))
        if root is None:
            return out
        self._walk(obj, {"$ref": "#/$defs/" + root}, [], kind, defs, out, top=True)
        return out

    def _walk(
        self,
        value: Any,
        schema: Any,
        path: list[str | int],
        struct: str,
        defs: dict[str, Any],
        out: Outcome,
        top: bool = False,
    ) -> None:
        schema, name = _deref(schema, defs)
        if name:
            struct = name.rsplit(".", 1)[-1]
        if not isinstance(schema, dict) or value is None:
            return
        if "oneOf" in schema:
            if not any(self._type_ok(value, alt, defs) for alt in schema["oneOf"]):
                out.type_errors.append(
                    self._type_msg(value, path, struct, {"$ref": "#/$defs/" + (name or "")}, defs)
                )
            return
        if not self._type_ok(value, schema, defs):
            out.type_errors.append(self._type_msg(value, path, struct, schema, defs, name))
            return
        if isinstance(value, dict):
            props = schema.get("properties") or {}
            ap = schema.get("additionalProperties", None)
            for key in list(value):
                sub = value[key]
                if key in props:
                    if top and key in ("apiVersion", "kind"):
                        continue
                    self._walk(sub, props[key], [*path, key], struct, defs, out)
                elif isinstance(ap, dict):
                    self._walk(sub, ap, [*path, key], struct, defs, out)
                elif ap is False:
                    out.unknown.append(_fmt_path([*path, key]))
                    del value[key]
            for req in schema.get("required") or []:
                if req not in value:
                    out.causes.append(
                        ("FieldValueRequired", _fmt_path([*path, req]), "Required value")
                    )
        elif isinstance(value, list):
            items = schema.get("items")
            if items is not None:
                for i, item in enumerate(value):
                    self._walk(item, items, [*path, i], struct, defs, out)

    @staticmethod
    def _type_ok(value: Any, schema: Any, defs: dict[str, Any]) -> bool:
        schema, _ = _deref(schema, defs)
        if not isinstance(schema, dict) or value is None:
            return True
        if "oneOf" in schema:
            return any(BuiltinValidator._type_ok(value, alt, defs) for alt in schema["oneOf"])
        types = schema.get("type")
        if types is None:
            return True
        types = [types] if isinstance(types, str) else types
        return any(_matches_type(value, t) for t in types)

    @staticmethod
    def _type_msg(
        value: Any,
        path: list[str | int],
        struct: str,
        schema: Any,
        defs: dict[str, Any],
        name: str | None = None,
    ) -> tuple[str, str]:
        go = _go_type({"$ref": "#/$defs/" + name} if name else schema, defs)
        where = _fmt_path([p for p in path if isinstance(p, str)])
        msg = (
            f"json: cannot unmarshal {_json_type(value)} into Go struct field "
            f"{struct}.{where} of type {go}"
        )
        return _fmt_path(path), msg

    def keyer(self, api_version: str, kind: str, strategic: bool) -> Keyer | None:
        """A list-merge keyer for strategic merge (patch keys) or apply (list-map keys)."""
        _defs, roots = builtin_definitions(self.k8s_minor)
        root = roots.get((api_version, kind))
        if root is None:
            return None
        return _builtin_keyer(self.k8s_minor, root, strategic)


@lru_cache(maxsize=512)
def _builtin_keyer(k8s_minor: str, root: str, strategic: bool) -> Keyer:
    defs, _ = builtin_definitions(k8s_minor)

    @lru_cache(maxsize=4096)
    def lookup(path: tuple[str, ...]) -> str | tuple[str, ...] | None:
        node, _ = _deref({"$ref": "#/$defs/" + root}, defs)
        for part in path:
            if not isinstance(node, dict):
                return None
            types = node.get("type") or []
            if "array" in types:
                node, _ = _deref(node.get("items"), defs)
                if not isinstance(node, dict):
                    return None
            props = node.get("properties") or {}
            if part in props:
                node, _ = _deref(props[part], defs)
            elif isinstance(node.get("additionalProperties"), dict):
                node, _ = _deref(node["additionalProperties"], defs)
            else:
                return None
        if not isinstance(node, dict):
            return None
        if strategic:
            strategy = str(node.get("x-kubernetes-patch-strategy", ""))
            key = node.get("x-kubernetes-patch-merge-key")
            if "merge" in strategy.split(","):
                return str(key) if key else "set"
            return None
        list_type = node.get("x-kubernetes-list-type")
        if list_type == "set":
            return "set"
        if list_type == "map":
            keys = [str(k) for k in node.get("x-kubernetes-list-map-keys") or []]
            # Protocol defaults to TCP server-side; merging by the first key is close enough.
            return keys[0] if keys else None
        return None

    def keyer(path: tuple[str, ...], items: list[Any]) -> str | tuple[str, ...] | None:
        return lookup(path)

    return keyer


def builtin_errors(
    obj: JSONDict,
    kind: str,
    api_version: str,
    name: str,
    group: str,
    outcome: Outcome,
    field_validation: str,
) -> list[str]:
    """Raise the apiserver's error for an outcome; return warnings otherwise."""
    version = api_version.rpartition("/")[2]
    if outcome.type_errors:
        raise ApiError(
            400,
            f'{kind} in version "{version}" cannot be handled as a {kind}: '
            f"{outcome.type_errors[0][1]}",
        )
    warnings: list[str] = []
    if outcome.unknown:
        if field_validation == "Strict":
            fields = ", ".join(f'unknown field "{u}"' for u in outcome.unknown)
            raise ApiError(
                400,
                f'{kind} in version "{version}" cannot be handled as a {kind}: '
                f"strict decoding error: {fields}",
            )
        if field_validation != "Ignore":
            warnings = [f'unknown field "{u}"' for u in outcome.unknown]
    if outcome.causes:
        raise invalid(kind, group, name, outcome.causes)
    return warnings


# --- custom resources ------------------------------------------------------------


class StructuralValidator:
    """Prunes, defaults and validates objects against a CRD openAPIV3Schema."""

    def __init__(self, schema: JSONDict | None) -> None:
        self.schema = schema or {"type": "object", "x-kubernetes-preserve-unknown-fields": True}

    def check(self, obj: JSONDict, *, prune: bool = True) -> Outcome:
        out = Outcome()
        schema = self.schema
        props = schema.get("properties") or {}
        for key in list(obj):
            if key in ("apiVersion", "kind"):
                continue
            if key == "metadata":
                # ObjectMeta is validated by the apiserver itself, not by the CRD schema.
                continue
            if key in props:
                self._walk(obj, key, obj[key], props[key], [key], out, prune)
            elif schema.get("x-kubernetes-preserve-unknown-fields"):
                continue
            elif isinstance(schema.get("additionalProperties"), dict):
                self._walk(obj, key, obj[key], schema["additionalProperties"], [key], out, prune)
            elif prune:
                out.unknown.append(key)
                del obj[key]
        self._defaults(obj, schema)
        self._constraints(obj, schema, [], out, root=True)
        return out

    def _defaults(self, value: Any, schema: JSONDict) -> None:
        props = schema.get("properties") or {}
        if isinstance(value, dict):
            for key, sub in props.items():
                if key not in value and "default" in sub:
                    value[key] = clone(sub["default"])

    def _walk(
        self,
        parent: Any,
        key: str | int,
        value: Any,
        schema: JSONDict,
        path: list[str | int],
        out: Outcome,
        prune: bool,
    ) -> None:
        if value is None:
            if not schema.get("nullable"):
                # The apiserver prunes nulls of non-nullable fields before defaulting
                # (CRD docs, "Defaulting and Nullable"); only list items are errors.
                if isinstance(parent, dict):
                    if "default" in schema:
                        parent[key] = clone(schema["default"])
                    else:
                        del parent[key]
                    return
                self._type_error(value, schema, path, out)
            return
        if not self._type_matches(value, schema):
            self._type_error(value, schema, path, out)
            return
        if isinstance(value, dict):
            if schema.get("x-kubernetes-embedded-resource"):
                meta = value.get("metadata")
                if isinstance(meta, dict):
                    allowed = (
                        "name",
                        "namespace",
                        "labels",
                        "annotations",
                        "generateName",
                        "finalizers",
                    )
                    for mk in list(meta):
                        if mk not in allowed:
                            del meta[mk]
            props = schema.get("properties") or {}
            ap = schema.get("additionalProperties")
            preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
            embedded = bool(schema.get("x-kubernetes-embedded-resource"))
            for k in list(value):
                if k in props:
                    self._walk(value, k, value[k], props[k], [*path, k], out, prune)
                elif isinstance(ap, dict):
                    self._walk(value, k, value[k], ap, [*path, k], out, prune)
                elif (
                    ap is True or preserve or (embedded and k in ("apiVersion", "kind", "metadata"))
                ):
                    continue
                elif prune:
                    out.unknown.append(_fmt_path([*path, k]))
                    del value[k]
            self._defaults(value, schema)
        elif isinstance(value, list):
            items = schema.get("items")
            if isinstance(items, dict):
                for i, item in enumerate(value):
                    self._walk(value, i, item, items, [*path, i], out, prune)
        self._constraints(value, schema, path, out)

    @staticmethod
    def _type_matches(value: Any, schema: JSONDict) -> bool:
        if schema.get("x-kubernetes-int-or-string"):
            return isinstance(value, str) or _matches_type(value, "integer")
        typ = schema.get("type")
        if not typ:
            return True
        return _matches_type(value, str(typ))

    @staticmethod
    def _type_error(value: Any, schema: JSONDict, path: list[str | int], out: Outcome) -> None:
        actual = _oapi_type(value)
        where = _fmt_path(path)
        expected = (
            "integer,string"
            if schema.get("x-kubernetes-int-or-string")
            else str(schema.get("type"))
        )
        out.causes.append(
            (
                "FieldValueTypeInvalid",
                where,
                f'Invalid value: "{actual}": {where} in body must be of type '
                f'{expected}: "{actual}"',
            )
        )

    def _constraints(
        self, value: Any, schema: JSONDict, path: list[str | int], out: Outcome, root: bool = False
    ) -> None:
        where = _fmt_path(path)
        body = f"{where} in body" if where else "body"
        if isinstance(value, dict):
            for req in schema.get("required") or []:
                if req not in value:
                    if root and req in ("apiVersion", "kind", "metadata"):
                        continue
                    out.causes.append(
                        ("FieldValueRequired", _fmt_path([*path, req]), "Required value")
                    )
            if "maxProperties" in schema and len(value) > int(schema["maxProperties"]):
                out.causes.append(
                    (
                        "FieldValueTooMany",
                        where,
                        f"Too many: {len(value)}: must have at most "
                        f"{schema['maxProperties']} items",
                    )
                )
            if "minProperties" in schema and len(value) < int(schema["minProperties"]):
                out.causes.append(
                    (
                        "FieldValueInvalid",
                        where,
                        f"Invalid value: {len(value)}: {body} should have at least "
                        f"{schema['minProperties']} properties",
                    )
                )
        enum = schema.get("enum")
        if enum is not None and value not in enum:
            supported = ", ".join(json.dumps(e) for e in enum)
            out.causes.append(
                (
                    "FieldValueNotSupported",
                    where,
                    f"Unsupported value: {json.dumps(value)}: supported values: {supported}",
                )
            )
        if isinstance(value, str):
            pattern = schema.get("pattern")
            if pattern and not _compiled(str(pattern)).search(value):
                out.causes.append(
                    (
                        "FieldValueInvalid",
                        where,
                        f"Invalid value: {json.dumps(value)}: {body} should match '{pattern}'",
                    )
                )
            if "maxLength" in schema and len(value) > int(schema["maxLength"]):
                out.causes.append(
                    (
                        "FieldValueTooLong",
                        where,
                        f"Too long: may not be more than {schema['maxLength']} bytes",
                    )
                )
            if "minLength" in schema and len(value) < int(schema["minLength"]):
                out.causes.append(
                    (
                        "FieldValueInvalid",
                        where,
                        f"Invalid value: {json.dumps(value)}: {body} should be at least "
                        f"{schema['minLength']} chars long",
                    )
                )
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if "minimum" in schema:
                lo = schema["minimum"]
                bad = value <= lo if schema.get("exclusiveMinimum") else value < lo
                if bad:
                    rel = (
                        "greater than"
                        if schema.get("exclusiveMinimum")
                        else "greater than or equal to"
                    )
                    out.causes.append(
                        (
                            "FieldValueInvalid",
                            where,
                            f"Invalid value: {value}: {body} should be {rel} {lo}",
                        )
                    )
            if "maximum" in schema:
                hi = schema["maximum"]
                bad = value >= hi if schema.get("exclusiveMaximum") else value > hi
                if bad:
                    rel = "less than" if schema.get("exclusiveMaximum") else "less than or equal to"
                    out.causes.append(
                        (
                            "FieldValueInvalid",
                            where,
                            f"Invalid value: {value}: {body} should be {rel} {hi}",
                        )
                    )
        if isinstance(value, list):
            if "maxItems" in schema and len(value) > int(schema["maxItems"]):
                out.causes.append(
                    (
                        "FieldValueTooMany",
                        where,
                        f"Too many: {len(value)}: must have at most {schema['maxItems']} items",
                    )
                )
            if "minItems" in schema and len(value) < int(schema["minItems"]):
                out.causes.append(
                    (
                        "FieldValueInvalid",
                        where,
                        f"Invalid value: {len(value)}: {body} should have at least "
                        f"{schema['minItems']} items",
                    )
                )
        for alt_key in ("allOf",):
            for alt in schema.get(alt_key) or []:
                self._constraints(value, alt, path, out)
        if "anyOf" in schema or "oneOf" in schema:
            alts = schema.get("anyOf") or schema.get("oneOf") or []
            ok = 0
            for alt in alts:
                probe = Outcome()
                self._constraints(value, alt, path, probe)
                if not probe.causes:
                    ok += 1
            if ok == 0 or ("oneOf" in schema and ok > 1):
                which = "anyOf" if "anyOf" in schema else "oneOf"
                out.causes.append(
                    (
                        "FieldValueInvalid",
                        where,
                        f"Invalid value: {json.dumps(value)}: {body} must validate "
                        f"{'at least one' if which == 'anyOf' else 'one and only one'} "
                        f"schema ({which})",
                    )
                )


def _oapi_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error:
        return re.compile("")  # RE2 syntax Python lacks: do not reject objects for it


def custom_errors(
    kind: str, group: str, api_version: str, name: str, outcome: Outcome, field_validation: str
) -> list[str]:
    version = api_version.rpartition("/")[2]
    warnings: list[str] = []
    if outcome.unknown:
        if field_validation == "Strict":
            fields = ", ".join(f'unknown field "{u}"' for u in outcome.unknown)
            raise ApiError(
                400,
                f'{kind} in version "{version}" cannot be handled as a {kind}: '
                f"strict decoding error: {fields}",
            )
        if field_validation != "Ignore":
            warnings = [f'unknown field "{u}"' for u in outcome.unknown]
    if outcome.causes:
        raise invalid(kind, group, name, outcome.causes)
    return warnings

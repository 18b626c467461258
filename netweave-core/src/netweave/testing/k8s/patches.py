"""JSON patch, merge patch, strategic merge patch and server-side apply merging.

Strategic merge and apply are approximations of the apiserver's algorithms:
lists of built-in kinds merge by the patch merge keys of the upstream API
types (``name`` for containers, ``mountPath`` for volume mounts, ...);
custom resources use the CRD's ``x-kubernetes-list-type`` markers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from netweave.testing.k8s.errors import ApiError
from netweave.testing.k8s.util import JSONDict, clone

# A keyer says how the list at a field path merges: a merge key name, "set"
# (primitive union), or None (atomic: replace).
Keyer = Callable[[tuple[str, ...], list[Any]], "str | tuple[str, ...] | None"]

_NAME_KEYED = {
    "containers",
    "initContainers",
    "ephemeralContainers",
    "volumes",
    "env",
    "imagePullSecrets",
    "resourceClaims",
    "schedulingGates",
}
_SET_LISTS = {"finalizers"}


def builtin_keyer(path: tuple[str, ...], items: list[Any]) -> str | tuple[str, ...] | None:
    """Patch merge keys of the built-in API types, looked up by field name."""
    if not path:
        return None
    name = path[-1]
    if name in _NAME_KEYED:
        return "name"
    if name == "volumeMounts":
        return "mountPath"
    if name == "volumeDevices":
        return "devicePath"
    if name == "ports":
        if any(isinstance(i, dict) and "containerPort" in i for i in items):
            return "containerPort"
        return "port"
    if name == "conditions":
        return "type"
    if name == "ownerReferences":
        return "uid"
    if name == "hostAliases":
        return "ip"
    if name == "topologySpreadConstraints":
        return "topologyKey"
    if name in _SET_LISTS:
        return "set"
    return None


# --- RFC 7386 merge patch ----------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return clone(patch)
    out: JSONDict = clone(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


# --- RFC 6902 JSON patch -------------------------------------------------------


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise ApiError(422, f'invalid JSON pointer "{path}"')
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, parts: list[str]) -> Any:
    cur = doc
    for p in parts:
        if isinstance(cur, dict) and p in cur:
            cur = cur[p]
        elif isinstance(cur, list) and p.isdigit() and int(p) < len(cur):
            cur = cur[int(p)]
        else:
            raise ApiError(422, f"doc is missing path: /{'/'.join(parts)}")
    return cur


def _add(doc: Any, parts: list[str], value: Any, replace: bool) -> Any:
    if not parts:
        return value
    parent = _walk(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, dict):
        if replace and last not in parent:
            raise ApiError(
                422, f"replace operation does not apply: doc is missing key: /{'/'.join(parts)}"
            )
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            if replace:
                raise ApiError(422, "replace operation does not apply: index '-' ")
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent) - (1 if replace else 0):
            if replace:
                parent[int(last)] = value
            else:
                parent.insert(int(last), value)
        else:
            raise ApiError(422, f"index out of range: /{'/'.join(parts)}")
    else:
        raise ApiError(422, f"doc is missing path: /{'/'.join(parts)}")
    return doc


def _remove(doc: Any, parts: list[str]) -> Any:
    if not parts:
        raise ApiError(422, "cannot remove the document root")
    parent = _walk(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent.pop(int(last))
    raise ApiError(422, f"remove operation does not apply: doc is missing path: /{'/'.join(parts)}")


def json_patch(target: Any, ops: Any) -> Any:
    if not isinstance(ops, list):
        kind = "object" if isinstance(ops, dict) else "value"
        raise ApiError(400, f"json: cannot unmarshal {kind} into Go value of type jsonpatch.Patch")
    doc = clone(target)
    for op in ops:
        if not isinstance(op, dict):
            raise ApiError(
                400, "json: cannot unmarshal operation into Go value of type jsonpatch.Operation"
            )
        name = op.get("op")
        parts = _pointer(str(op.get("path", "")))
        if name == "add":
            doc = _add(doc, parts, clone(op.get("value")), replace=False)
        elif name == "replace":
            doc = _add(doc, parts, clone(op.get("value")), replace=True)
        elif name == "remove":
            _remove(doc, parts)
        elif name == "test":
            if _walk(doc, parts) != op.get("value"):
                raise ApiError(422, f"testing value /{'/'.join(parts)} failed: test failed")
        elif name in ("move", "copy"):
            src = _pointer(str(op.get("from", "")))
            value = clone(_walk(doc, src))
            if name == "move":
                _remove(doc, src)
            doc = _add(doc, parts, value, replace=False)
        else:
            raise ApiError(422, f"Unexpected kind: {name}")
    return doc


# --- strategic merge patch ------------------------------------------------------


def _item_key(item: Any, key: str | tuple[str, ...]) -> Any:
    if not isinstance(item, dict):
        return None
    if isinstance(key, tuple):
        return tuple(item.get(k) for k in key)
    return item.get(key)


def strategic_merge(
    target: Any, patch: Any, keyer: Keyer = builtin_keyer, path: tuple[str, ...] = ()
) -> Any:
    """Apply a strategic merge patch (dict) to ``target``."""
    if not isinstance(patch, dict):
        return clone(patch)
    directive = patch.get("$patch")
    if directive == "delete":
        return None
    body = {k: v for k, v in patch.items() if k != "$patch"}
    if directive == "replace":
        return _strip_directives(body)
    out: JSONDict = clone(target) if isinstance(target, dict) else {}
    retain = body.pop("$retainKeys", None)
    for k, v in body.items():
        if k.startswith("$setElementOrder/"):
            continue  # ordering hints only
        if k.startswith("$deleteFromPrimitiveList/"):
            field = k.split("/", 1)[1]
            cur = out.get(field)
            if isinstance(cur, list) and isinstance(v, list):
                out[field] = [x for x in cur if x not in v]
            continue
        if v is None:
            out.pop(k, None)
            continue
        sub = (*path, k)
        if isinstance(v, list):
            out[k] = _merge_list(out.get(k), v, keyer, sub)
        elif isinstance(v, dict):
            merged = strategic_merge(out.get(k), v, keyer, sub)
            if merged is None:
                out.pop(k, None)
            else:
                out[k] = merged
        else:
            out[k] = v
    if isinstance(retain, list):
        for k in list(out):
            if k not in retain:
                del out[k]
    return out


def _strip_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return value


def _merge_list(current: Any, patch: list[Any], keyer: Keyer, path: tuple[str, ...]) -> list[Any]:
    if any(isinstance(i, dict) and i.get("$patch") == "replace" and len(i) == 1 for i in patch):
        return [_strip_directives(i) for i in patch if not (isinstance(i, dict) and "$patch" in i)]
    cur = clone(current) if isinstance(current, list) else []
    key = keyer(path, patch + cur)
    if key == "set":
        out = list(cur)
        for item in patch:
            if item not in out:
                out.append(item)
        return out
    if key is None or not all(isinstance(i, dict) for i in patch):
        return [_strip_directives(i) for i in patch]
    for item in patch:
        k = _item_key(item, key)
        idx = next((n for n, c in enumerate(cur) if _item_key(c, key) == k), None)
        if item.get("$patch") == "delete":
            if idx is not None:
                cur.pop(idx)
            continue
        if idx is None:
            cur.append(_strip_directives(item))
        else:
            cur[idx] = strategic_merge(cur[idx], item, keyer, path)
    return cur


# --- server-side apply ------------------------------------------------------------


def apply_merge(live: Any, applied: Any, keyer: Keyer, path: tuple[str, ...] = ()) -> Any:
    """Merge an applied configuration into the live object (no directives)."""
    if not isinstance(applied, dict) or not isinstance(live, dict):
        return clone(applied)
    out = clone(live)
    for k, v in applied.items():
        sub = (*path, k)
        if isinstance(v, dict):
            out[k] = apply_merge(out.get(k), v, keyer, sub)
        elif isinstance(v, list):
            out[k] = _apply_list(out.get(k), v, keyer, sub)
        else:
            out[k] = clone(v)
    return out


def _apply_list(current: Any, applied: list[Any], keyer: Keyer, path: tuple[str, ...]) -> list[Any]:
    cur = clone(current) if isinstance(current, list) else []
    key = keyer(path, applied + cur)
    if key == "set":
        out = list(cur)
        for item in applied:
            if item not in out:
                out.append(clone(item))
        return out
    if key is None or not all(isinstance(i, dict) for i in applied):
        return [clone(i) for i in applied]
    for item in applied:
        k = _item_key(item, key)
        idx = next((n for n, c in enumerate(cur) if _item_key(c, key) == k), None)
        if idx is None:
            cur.append(clone(item))
        else:
            cur[idx] = apply_merge(cur[idx], item, keyer, path)
    return cur


def schema_keyer(schema: JSONDict | None) -> Keyer:
    """A keyer for custom resources reading ``x-kubernetes-list-*`` markers."""

    def keyer(path: tuple[str, ...], items: list[Any]) -> str | tuple[str, ...] | None:
        node: Any = schema
        for part in path:
            if not isinstance(node, dict):
                return None
            if node.get("type") == "array":
                node = node.get("items")
                if not isinstance(node, dict):
                    return None
            props = node.get("properties")
            if isinstance(props, dict) and part in props:
                node = props[part]
            elif isinstance(node.get("additionalProperties"), dict):
                node = node["additionalProperties"]
            else:
                return None
        if not isinstance(node, dict):
            return None
        list_type = node.get("x-kubernetes-list-type")
        if list_type == "set":
            return "set"
        if list_type == "map":
            keys = node.get("x-kubernetes-list-map-keys") or []
            if len(keys) == 1:
                return str(keys[0])
            if keys:
                return tuple(str(k) for k in keys)
        return None

    return keyer

"""Field ownership for server-side apply (``metadata.managedFields``).

A simplified model of the apiserver's structured-merge-diff bookkeeping:

* every write records which fields its field manager set: ``Apply`` entries hold
  exactly the fields of the last applied configuration, ``Update`` entries the
  fields an update (create, PUT, non-apply PATCH) changed, taken over from other
  managers;
* an apply without ``force`` that would change a field another manager owns is a
  409 Conflict (``Apply failed with 1 conflict: conflict with "kubectl" ...``);
  with ``force`` the field changes hands;
* fields a manager stops applying are removed unless another manager owns them.

Field paths use the FieldsV1 notation: ``f:<field>``, ``k:<json keys>`` for
items of associative lists, ``v:<json value>`` for set items, ``.`` for an item
itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from netweave.testing.k8s.errors import ApiError
from netweave.testing.k8s.patches import Keyer
from netweave.testing.k8s.util import JSONDict, now_rfc3339

FieldPath = tuple[str, ...]
_TRACKED_META = ("labels", "annotations", "finalizers", "ownerReferences")


@dataclass
class Entry:
    manager: str
    operation: str  # "Apply" or "Update"
    subresource: str
    api_version: str
    fields: set[FieldPath] = field(default_factory=set)
    time: str = field(default_factory=now_rfc3339)

    @property
    def ident(self) -> tuple[str, str, str]:
        return (self.manager, self.operation, self.subresource)


def _item_key(item: JSONDict, key: str | tuple[str, ...]) -> str:
    names = key if isinstance(key, tuple) else (key,)
    return "k:" + json.dumps({n: item.get(n) for n in names}, sort_keys=True, separators=(",", ":"))


def field_set(obj: JSONDict, keyer: Keyer, *, status: bool | None) -> set[FieldPath]:
    """Leaf field paths set in ``obj``.

    ``status`` True: only ``status``; False: everything but ``status``; None: all.
    """
    out: set[FieldPath] = set()

    def walk(value: Any, fp: FieldPath, names: tuple[str, ...]) -> None:
        if isinstance(value, dict) and value:
            for k, sub in value.items():
                walk(sub, (*fp, f"f:{k}"), (*names, k))
        elif isinstance(value, list) and value:
            key = keyer(names, value)
            if key == "set":
                for item in value:
                    out.add((*fp, "v:" + json.dumps(item, sort_keys=True, separators=(",", ":"))))
            elif key is not None and all(isinstance(i, dict) for i in value):
                for item in value:
                    kf = _item_key(item, key)
                    out.add((*fp, kf, "."))
                    for k, sub in item.items():
                        walk(sub, (*fp, kf, f"f:{k}"), (*names, k))
            else:
                out.add(fp)
        else:
            out.add(fp)

    for k, v in obj.items():
        if k in ("apiVersion", "kind"):
            continue
        if status is True and k != "status":
            continue
        if status is False and k == "status":
            continue
        if k == "metadata":
            if isinstance(v, dict):
                for mk in _TRACKED_META:
                    if mk in v and v[mk] is not None:
                        walk(v[mk], ("f:metadata", f"f:{mk}"), ("metadata", mk))
            continue
        walk(v, (f"f:{k}",), (k,))
    return out


_MISSING = object()


def value_at(obj: Any, path: FieldPath) -> Any:
    cur = obj
    for part in path:
        if part == ".":
            continue
        if part.startswith("f:"):
            if not isinstance(cur, dict) or part[2:] not in cur:
                return _MISSING
            cur = cur[part[2:]]
        elif part.startswith("k:"):
            want = json.loads(part[2:])
            if not isinstance(cur, list):
                return _MISSING
            cur = next(
                (
                    i
                    for i in cur
                    if isinstance(i, dict) and all(i.get(k) == v for k, v in want.items())
                ),
                _MISSING,
            )
            if cur is _MISSING:
                return _MISSING
        elif part.startswith("v:"):
            want = json.loads(part[2:])
            if not isinstance(cur, list) or want not in cur:
                return _MISSING
            cur = want
    return cur


def remove_path(obj: Any, path: FieldPath) -> None:
    """Delete the field (or list item) at ``path``; missing paths are ignored."""
    if path and path[-1] == ".":
        path = path[:-1]
    if not path:
        return
    parent = value_at(obj, path[:-1])
    last = path[-1]
    if last.startswith("f:") and isinstance(parent, dict):
        parent.pop(last[2:], None)
    elif last.startswith("k:") and isinstance(parent, list):
        want = json.loads(last[2:])
        parent[:] = [
            i
            for i in parent
            if not (isinstance(i, dict) and all(i.get(k) == v for k, v in want.items()))
        ]
    elif last.startswith("v:") and isinstance(parent, list):
        want = json.loads(last[2:])
        parent[:] = [i for i in parent if i != want]


def _dotted(path: FieldPath) -> str:
    out = ""
    for p in path:
        if p.startswith("f:"):
            out += "." + p[2:]
        elif p.startswith(("k:", "v:")):
            out += "[" + p[2:] + "]"
    return out


def to_fields_v1(paths: set[FieldPath]) -> JSONDict:
    tree: JSONDict = {}
    for path in sorted(paths):
        node = tree
        for part in path:
            node = node.setdefault(part, {})
    return tree


def render(entries: list[Entry]) -> list[JSONDict]:
    out = []
    for e in entries:
        if not e.fields:
            continue
        item: JSONDict = {
            "manager": e.manager,
            "operation": e.operation,
            "apiVersion": e.api_version,
            "time": e.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": to_fields_v1(e.fields),
        }
        if e.subresource:
            item["subresource"] = e.subresource
        out.append(item)
    return out


class Ownership:
    """The managers of one object."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []

    def _entry(self, manager: str, operation: str, subresource: str, api_version: str) -> Entry:
        for e in self.entries:
            if e.ident == (manager, operation, subresource):
                e.api_version = api_version
                return e
        e = Entry(manager, operation, subresource, api_version)
        self.entries.append(e)
        return e

    def record_update(
        self,
        manager: str,
        subresource: str,
        api_version: str,
        old: JSONDict | None,
        new: JSONDict,
        keyer: Keyer,
    ) -> None:
        """An update by ``manager``: it takes over every field whose value changed."""
        status = None if not subresource else True
        new_fields = field_set(new, keyer, status=status)
        if old is None:
            changed = new_fields
            gone: set[FieldPath] = set()
        else:
            old_fields = field_set(old, keyer, status=status)
            changed = {p for p in new_fields if value_at(old, p) != value_at(new, p)}
            gone = old_fields - new_fields
        if not changed and not gone:
            return
        for e in self.entries:
            e.fields -= changed | gone
        entry = self._entry(manager, "Update", subresource, api_version)
        entry.fields |= changed
        entry.time = now_rfc3339()
        self.entries = [e for e in self.entries if e.fields]

    def apply(
        self,
        manager: str,
        subresource: str,
        api_version: str,
        live: JSONDict,
        applied: JSONDict,
        keyer: Keyer,
        force: bool,
    ) -> set[FieldPath]:
        """Check conflicts and take ownership; return fields to remove from ``live``."""
        status = bool(subresource)
        wanted = field_set(applied, keyer, status=status)
        conflicts: list[tuple[str, FieldPath]] = []
        for e in self.entries:
            if e.manager == manager:
                continue
            for p in sorted(e.fields & wanted):
                if p[-1] != "." and value_at(live, p) != value_at(applied, p):
                    conflicts.append((e.manager, p))
        if conflicts and not force:
            raise _conflict_error(conflicts, api_version)
        if force:
            for e in self.entries:
                if e.manager != manager:
                    e.fields -= {p for _, p in conflicts}
        mine = self._entry(manager, "Apply", subresource, api_version)
        dropped = mine.fields - wanted
        mine.fields = set(wanted)
        mine.time = now_rfc3339()
        others: set[FieldPath] = set()
        for e in self.entries:
            if e is not mine:
                others |= e.fields
        self.entries = [e for e in self.entries if e.fields]
        return {p for p in dropped if p not in others}


def _conflict_error(conflicts: list[tuple[str, FieldPath]], api_version: str) -> ApiError:
    lines = [f'conflict with "{m}" using {api_version}: {_dotted(p)}' for m, p in conflicts]
    n = len(lines)
    head = f"Apply failed with {n} conflict{'s' if n > 1 else ''}: "
    message = head + lines[0] if n == 1 else head + "\n".join(["", *lines])
    causes = [
        {
            "reason": "FieldManagerConflict",
            "message": f'conflict with "{m}" using {api_version}',
            "field": _dotted(p),
        }
        for m, p in conflicts
    ]
    return ApiError(409, message, reason="Conflict", details={"causes": causes})


def default_manager(user_agent: str) -> str:
    """The apiserver's default field manager: the user agent up to the first '/'."""
    return (user_agent.split("/", 1)[0] or "unknown")[:128]

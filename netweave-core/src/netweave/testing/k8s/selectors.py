"""Label and field selectors, parsed like the apiserver parses them."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from netweave.testing.k8s.errors import bad_request
from netweave.testing.k8s.util import JSONDict

_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_KEY_RE = re.compile(rf"^{_KEY}$")
_VALUE_RE = re.compile(rf"^{_VALUE}$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        has = self.key in labels
        if self.op == "exists":
            return has
        if self.op == "!":
            return not has
        if self.op == "=":
            return has and labels[self.key] == self.values[0]
        if self.op == "!=":
            return not has or labels[self.key] != self.values[0]
        if self.op == "in":
            return has and labels[self.key] in self.values
        if self.op == "notin":
            return not has or labels[self.key] not in self.values
        if self.op in ("gt", "lt"):
            try:
                val = int(labels[self.key]) if has else None
            except ValueError:
                return False
            if val is None:
                return False
            bound = int(self.values[0])
            return val > bound if self.op == "gt" else val < bound
        return False


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside parentheses (``in (a,b)`` sets)."""
    parts: list[str] = []
    depth = 0
    cur: list[str] = []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


_SET_RE = re.compile(rf"^({_KEY})\s+(in|notin)\s*\((.*)\)$")


def parse_label_selector(text: str | None) -> list[Requirement]:
    if not text:
        return []
    reqs: list[Requirement] = []
    for part in _split_top_level(text):
        m = _SET_RE.match(part)
        if m:
            values = tuple(v.strip() for v in m.group(4).split(",") if v.strip())
            reqs.append(Requirement(m.group(1), m.group(3), values))
            continue
        for op in ("!=", "==", "=", ">", "<"):
            if op in part:
                key, _, value = part.partition(op)
                key, value = key.strip(), value.strip()
                norm = {"==": "=", ">": "gt", "<": "lt"}.get(op, op)
                _check(key, value, text)
                reqs.append(Requirement(key, norm, (value,)))
                break
        else:
            if part.startswith("!"):
                key = part[1:].strip()
                _check(key, "", text)
                reqs.append(Requirement(key, "!"))
            else:
                _check(part, "", text)
                reqs.append(Requirement(part, "exists"))
    return reqs


def _check(key: str, value: str, text: str) -> None:
    if not _KEY_RE.match(key) or not _VALUE_RE.match(value):
        raise bad_request(f'unable to parse requirement: invalid label selector "{text}"')


def labels_match(reqs: list[Requirement], obj: JSONDict) -> bool:
    if not reqs:
        return True
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return all(r.matches(labels) for r in reqs)


def selector_from_label_selector(sel: JSONDict | None) -> list[Requirement] | None:
    """Requirements for a ``metav1.LabelSelector``; None selects nothing."""
    if sel is None:
        return None
    reqs: list[Requirement] = []
    for k, v in (sel.get("matchLabels") or {}).items():
        reqs.append(Requirement(k, "=", (str(v),)))
    for expr in sel.get("matchExpressions") or []:
        op = str(expr.get("operator", ""))
        key = str(expr.get("key", ""))
        values = tuple(str(v) for v in expr.get("values") or [])
        mapped = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}.get(op)
        if mapped is None:
            return None
        reqs.append(Requirement(key, mapped, values))
    return reqs


def selector_string(sel: JSONDict | None) -> str:
    """Render a LabelSelector as the string form used in ``status.selector``."""
    reqs = selector_from_label_selector(sel) or []
    out: list[str] = []
    for r in reqs:
        if r.op == "=":
            out.append(f"{r.key}={r.values[0]}")
        elif r.op in ("in", "notin"):
            out.append(f"{r.key} {r.op} ({','.join(r.values)})")
        elif r.op == "exists":
            out.append(r.key)
        elif r.op == "!":
            out.append(f"!{r.key}")
    return ",".join(out)


FieldPredicate = Callable[[JSONDict], bool]


def parse_field_selector(text: str | None) -> list[tuple[list[str], str, str]]:
    """Parse ``a.b=c,d!=e`` into (path, op, value) triples."""
    if not text:
        return []
    out: list[tuple[list[str], str, str]] = []
    for part in _split_top_level(text):
        for op in ("!=", "==", "="):
            if op in part:
                key, _, value = part.partition(op)
                out.append((key.strip().split("."), "!=" if op == "!=" else "=", value.strip()))
                break
        else:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
    return out


def _field_value(obj: Any, path: list[str]) -> str:
    cur = obj
    for p in path:
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(p)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def fields_match(sel: list[tuple[list[str], str, str]], obj: JSONDict) -> bool:
    for path, op, value in sel:
        actual = _field_value(obj, path)
        if op == "=" and actual != value:
            return False
        if op == "!=" and actual == value:
            return False
    return True

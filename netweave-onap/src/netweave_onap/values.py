"""Helm values helpers: merge, and the flat ``key.path=value`` form ONAP passes around."""

from __future__ import annotations

import re
from typing import Any

from netweave.adapters.values import merge_values as deep_merge

_INDEX = re.compile(r"^(?P<key>.*?)\[(?P<index>\d+)\]$")
#: Longest list index accepted when rebuilding values (a typo must not allocate gigabytes).
_MAX_INDEX = 10_000


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


def _escape(key: str) -> str:
    return key.replace("\\", "\\\\").replace(".", "\\.").replace("[", "\\[")


def flatten(values: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested values → ``{"image.tag": "1.2", "ports[0]": "80"}`` (Helm ``--set`` paths)."""
    flat: dict[str, str] = {}
    for key, value in values.items():
        path = f"{prefix}{_escape(str(key))}"
        _flatten_value(value, path, flat)
    return flat


def _flatten_value(value: Any, path: str, flat: dict[str, str]) -> None:
    if isinstance(value, dict):
        if not value:
            flat[path] = "{}"
        flat.update(flatten(value, path + "."))
    elif isinstance(value, list):
        if not value:
            flat[path] = "[]"
        for index, item in enumerate(value):
            _flatten_value(item, f"{path}[{index}]", flat)
    else:
        flat[path] = _scalar(value)


def _split(path: str) -> list[str]:
    parts: list[str] = []
    current = ""
    escaped = False
    for char in path:
        if escaped:
            current += char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ".":
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


def unflatten(flat: dict[str, str]) -> dict[str, Any]:
    """The inverse of :func:`flatten`; leaf values stay strings (types are not recoverable)."""
    root: dict[str, Any] = {}
    for path, value in flat.items():
        node: Any = root
        parts = _split(path)
        for position, part in enumerate(parts):
            last = position == len(parts) - 1
            leaf: Any = value
            if value == "{}":
                leaf = {}
            elif value == "[]":
                leaf = []
            match = _INDEX.match(part)
            if match and int(match.group("index")) <= _MAX_INDEX:
                key, index = match.group("key"), int(match.group("index"))
                items = node.setdefault(key, [])
                if not isinstance(items, list):
                    break
                while len(items) <= index:
                    items.append(None)
                if last:
                    items[index] = leaf
                else:
                    if not isinstance(items[index], dict):
                        items[index] = {}
                    node = items[index]
            elif last:
                node[part] = leaf
            else:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    break
                node = child
    return root


__all__ = ["deep_merge", "flatten", "unflatten"]

"""Deployment values: one merge rule for the gateway and every adapter.

An update in ``merge`` mode lays the request's values over the deployment's current ones the
way Helm coalesces values files: mappings merge key by key, anything else (a list, a scalar,
``null``) replaces what was there. A ``null`` is kept, not dropped: it reaches the backend,
where Helm removes that key from the chart's defaults (``--set key=null``), so a user can
switch off a default; to return to the chart's default, update in ``replace`` mode without the
key. The result shares no mutable object with either input.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any


def merge_values(base: Mapping[str, Any], change: Mapping[str, Any]) -> dict[str, Any]:
    """``change`` over ``base`` by the rule above; neither input is modified."""
    merged: dict[str, Any] = copy.deepcopy(dict(base))
    for key, value in change.items():
        current = merged.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            merged[key] = merge_values(current, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def values_contain(values: Mapping[str, Any], expected: Mapping[str, Any]) -> bool:
    """Every key of ``expected`` (recursively) is in ``values`` with the same value: whether
    a backend holds the values an operation asked for."""
    for key, want in expected.items():
        have = values.get(key)
        if isinstance(want, Mapping):
            if not isinstance(have, Mapping) or not values_contain(have, want):
                return False
        elif have != want:
            return False
    return True


__all__ = ["merge_values", "values_contain"]

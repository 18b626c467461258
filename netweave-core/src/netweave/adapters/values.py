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


__all__ = ["merge_values"]

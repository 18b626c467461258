"""Desired vs live Kubernetes objects: what differs, and a unified diff to read it.

The desired object is what was applied (a rendered manifest); the live one is what the API
server holds, with everything the server and controllers add (defaults, ``status``, ids,
managed fields). So only what the desired object sets is compared: the live object is
*projected* onto the desired one's shape (its keys, its list lengths) and the two are compared
there. An edited field, a removed label or a changed list shows; a defaulted field does not.
``metadata`` is compared on ``labels`` and ``annotations`` only (the rest is identity).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

import yaml

_META_KEYS = ("labels", "annotations")
_ABSENT = object()


def _same_scalar(want: Any, have: Any) -> bool:
    if want == have:
        return True
    # The API server keeps ints as ints, but a manifest may quote them (and the reverse).
    if isinstance(want, (int, float, str)) and isinstance(have, (int, float, str)):
        return str(want) == str(have)
    return False


def project(desired: Any, live: Any) -> Any:
    """``live`` restricted to the shape of ``desired`` (missing parts stay missing)."""
    if isinstance(desired, Mapping):
        if not isinstance(live, Mapping):
            return live
        return {k: project(v, live[k]) for k, v in desired.items() if k in live}
    if isinstance(desired, list):
        if not isinstance(live, list):
            return live
        return [project(d, lv) for d, lv in zip(desired, live, strict=False)] + live[len(desired) :]
    return live


def _differences(desired: Any, live: Any, path: str, out: list[str]) -> None:
    if isinstance(desired, Mapping):
        if not isinstance(live, Mapping):
            out.append(path or ".")
            return
        for key, want in desired.items():
            if want is None:
                continue  # "unset" in a manifest: nothing to compare
            if key not in live:
                out.append(f"{path}.{key}")
                continue
            _differences(want, live[key], f"{path}.{key}", out)
        return
    if isinstance(desired, list):
        if not isinstance(live, list) or len(live) != len(desired):
            out.append(path)
            return
        for index, (want, have) in enumerate(zip(desired, live, strict=True)):
            _differences(want, have, f"{path}[{index}]", out)
        return
    if not _same_scalar(desired, live):
        out.append(path)


def comparable(obj: Mapping[str, Any]) -> dict[str, Any]:
    """What of an object is compared: everything but ``status`` and, of ``metadata``, only
    labels and annotations."""
    out = {k: v for k, v in obj.items() if k not in ("status", "metadata")}
    meta = obj.get("metadata")
    if isinstance(meta, Mapping):
        kept = {k: meta[k] for k in _META_KEYS if meta.get(k)}
        if kept:
            out["metadata"] = kept
    return out


def differences(desired: Mapping[str, Any], live: Mapping[str, Any]) -> list[str]:
    """The paths (``.spec.replicas``) where ``live`` does not hold what ``desired`` sets."""
    found: list[str] = []
    _differences(comparable(desired), live, "", found)
    return found


class _PlainDumper(yaml.SafeDumper):
    """Writes a value shared between two places (a manifest's YAML anchor and alias, once
    loaded) in full at both: the live object the API returns never shares, and an ``&id001``
    on one side only would show an identical object as modified."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _yaml(obj: Any) -> list[str]:
    if obj is None:
        return []
    text = yaml.dump(obj, Dumper=_PlainDumper, sort_keys=True, default_flow_style=False)
    return text.splitlines(keepends=True)


def unified(
    desired: Mapping[str, Any] | None,
    live: Mapping[str, Any] | None,
    name: str,
    *,
    live_first: bool = False,
) -> str:
    """A unified diff from the desired object to the live one (projected onto the desired
    shape, so only what the manifest sets shows); ``""`` when they agree. ``live_first``:
    from the live object to the desired one (what applying it would change)."""
    want = comparable(desired) if desired is not None else None
    have: Any = None
    if live is not None:
        have = project(want, live) if want is not None else comparable(live)
    if live_first:
        lines = difflib.unified_diff(
            _yaml(have), _yaml(want), fromfile=f"live/{name}", tofile=f"new/{name}"
        )
    else:
        lines = difflib.unified_diff(
            _yaml(want), _yaml(have), fromfile=f"desired/{name}", tofile=f"live/{name}"
        )
    return "".join(lines)


__all__ = ["comparable", "differences", "project", "unified"]

"""The no-silent-override guard: a kit test may be replaced or skipped only with a reason.

A kit helper (``settle``, ``expect_error`` …) or a kit fixture (``started_adapter``,
``namespace`` …) counts as a test here: replacing one could make tests pass weaker, so only the
fixtures and hooks documented as the adapter's (:data:`ADAPTER_FIXTURES`,
:data:`ADAPTER_HOOKS`) may be overridden without :func:`kit_override`.

Checked twice: at collection (``pytest_collection_modifyitems`` in netweave's pytest plugin), so
a whole class cannot dodge it, and by a kit test, so the failure shows in the adapter's own run.
The plugin also fails, when backends are required (CI), any skip of a kit test that is not one
of the kit's own (see :data:`KIT_SKIP_PREFIX`): a fixture that skips for a missing component
must go through :func:`netweave.testing.require_backend`.
"""

from __future__ import annotations

import inspect
from typing import Any

from netweave.testing.kit.base import (
    ADAPTER_FIXTURES,
    ADAPTER_HOOKS,
    OVERRIDE_ATTR,
    AdapterFixtures,
)


def _kit_classes(cls: type) -> list[type]:
    return [
        base
        for base in cls.__mro__
        if base.__module__.startswith("netweave.testing.kit") and issubclass(base, AdapterFixtures)
    ]


def _skip_marks_without_reason(obj: Any) -> list[str]:
    bad = []
    for mark in getattr(obj, "pytestmark", []) or []:
        name = getattr(mark, "name", "")
        if name in {"skip", "skipif", "xfail"}:
            reason = mark.kwargs.get("reason") or (
                mark.args[0] if name == "skip" and mark.args else None
            )
            if name == "skipif" and len(mark.args) < 1:
                reason = None
            if not (isinstance(reason, str) and reason.strip()):
                bad.append(name)
    return bad


def check_class(cls: type) -> list[str]:
    """Problems with how ``cls`` (an adapter's kit test class) treats the kit's tests."""
    problems: list[str] = []
    kit_tests: dict[str, Any] = {}
    for base in reversed(_kit_classes(cls)):
        for name, value in vars(base).items():
            if name.startswith("test_") and inspect.isfunction(value):
                kit_tests[name] = value
    for name, original in kit_tests.items():
        current = inspect.getattr_static(cls, name, None)
        if current is None or not callable(current):
            problems.append(f"{cls.__name__}.{name}: kit test removed (set to {current!r})")
            continue
        if current is not original and not getattr(current, OVERRIDE_ATTR, None):
            problems.append(
                f"{cls.__name__}.{name}: kit test overridden without a reason; decorate the "
                "override with @netweave.testing.kit.kit_override(reason=...)"
            )
        for mark in _skip_marks_without_reason(current):
            problems.append(f"{cls.__name__}.{name}: @{mark} without a reason")
    problems.extend(_helper_problems(cls))
    for mark in _skip_marks_without_reason(cls):
        problems.append(f"{cls.__name__}: class-level @{mark} without a reason")
    return problems


def _owner(cls: type, name: str) -> type | None:
    return next((base for base in cls.__mro__ if name in vars(base)), None)


def _helper_problems(cls: type) -> list[str]:
    """Kit helpers and fixtures replaced by the adapter's class (or a class between)."""
    kit = _kit_classes(cls)
    names = {
        name
        for base in kit
        for name in vars(base)
        if not name.startswith("__") and not name.startswith("test_")
    }
    problems = []
    for name in sorted(names - ADAPTER_FIXTURES - ADAPTER_HOOKS):
        owner = _owner(cls, name)
        if owner is None or owner in kit:
            continue
        if getattr(vars(owner)[name], OVERRIDE_ATTR, None):
            continue
        what = "fixture" if _is_fixture(vars(owner)[name]) else "helper"
        problems.append(
            f"{cls.__name__}.{name}: kit {what} overridden (in {owner.__name__}); only the "
            f"adapter's fixtures ({', '.join(sorted(ADAPTER_FIXTURES))}) and hooks may be, or "
            "decorate the override with @netweave.testing.kit.kit_override(reason=...)"
        )
    return problems


def _is_fixture(value: Any) -> bool:
    return type(value).__name__ == "FixtureFunctionDefinition" or hasattr(
        value, "_pytestfixturefunction"
    )


class NoSilentOverrideTests(AdapterFixtures):
    def test_no_kit_test_overridden_or_skipped_without_reason(self) -> None:
        problems = check_class(type(self))
        assert not problems, "conformance kit guard:\n  " + "\n  ".join(problems)

"""The no-silent-override guard: a kit test may be replaced or skipped only with a reason.

Checked twice: at collection (``pytest_collection_modifyitems`` in netweave's pytest plugin), so
a whole class cannot dodge it, and by a kit test, so the failure shows in the adapter's own run.
"""

from __future__ import annotations

import inspect
from typing import Any

from netweave.testing.kit.base import OVERRIDE_ATTR, AdapterFixtures


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
    for mark in _skip_marks_without_reason(cls):
        problems.append(f"{cls.__name__}: class-level @{mark} without a reason")
    return problems


class NoSilentOverrideTests(AdapterFixtures):
    def test_no_kit_test_overridden_or_skipped_without_reason(self) -> None:
        problems = check_class(type(self))
        assert not problems, "conformance kit guard:\n  " + "\n  ".join(problems)

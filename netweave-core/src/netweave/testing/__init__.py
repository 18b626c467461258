"""Test support for netweave and for adapter distributions (the conformance kit lives here).

Importing this package must stay cheap: it is imported by the ``pytest11`` plugin in every
pytest run of every project that has netweave-core installed. Heavy helpers live in submodules
(``netweave.testing.k8s`` …) and are imported by the tests that need them.
"""

from __future__ import annotations

import os
from typing import NoReturn

#: When set to ``1`` (CI does), a test that would be skipped for a missing component fails.
REQUIRE_BACKENDS_ENV = "NETWEAVE_REQUIRE_BACKENDS"


def backends_required() -> bool:
    return os.environ.get(REQUIRE_BACKENDS_ENV) == "1"


def require_backend(reason: str) -> NoReturn:
    """Skip the running test because a component is missing — or fail it under CI.

    Call it where a test would otherwise ``pytest.skip``: a developer machine without, say,
    PostgreSQL skips with ``reason``; with ``NETWEAVE_REQUIRE_BACKENDS=1`` the same test fails,
    so a green CI run cannot hide a missing component.
    """
    import pytest  # only ever called from inside a test run

    if backends_required():
        pytest.fail(f"{reason} ({REQUIRE_BACKENDS_ENV}=1: missing components fail)", pytrace=False)
    pytest.skip(reason)


__all__ = ["REQUIRE_BACKENDS_ENV", "backends_required", "require_backend"]

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI reads NETWEAVE_* from the environment; tests start from none of them."""
    for name in list(os.environ):
        if name.startswith("NETWEAVE_") and name != "NETWEAVE_REQUIRE_BACKENDS":
            monkeypatch.delenv(name)

"""netweave's pytest plugin (``pytest11`` entry point ``netweave``).

Loaded into every pytest run where netweave-core is installed, so it imports nothing heavy at
module level: fixtures import what they need when they run.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from netweave.testing import require_backend

if TYPE_CHECKING:
    from netweave.config import Settings


@pytest.fixture
def netweave_data_dir(tmp_path: Path) -> Path:
    """An empty gateway data directory for one test."""
    data_dir = tmp_path / "netweave-data"
    data_dir.mkdir()
    return data_dir


@pytest.fixture
def netweave_settings(netweave_data_dir: Path) -> Settings:
    """Gateway settings with embedded defaults and a temporary data directory.

    No configuration file and no adapters: tests add ``plugins.dms`` entries with
    ``settings.model_copy(update=…)`` or build their own registry.
    """
    from netweave.config import Settings

    return Settings(data_dir=netweave_data_dir)


__all__ = ["netweave_data_dir", "netweave_settings", "require_backend"]

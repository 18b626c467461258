"""Shared fixtures for the API and operations tests (``tests/support`` holds the helpers)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support.gateway import Gateway, running_gateway
from support.memory_adapter import MemoryAdapter


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Gateway]:
    """A gateway with one memory adapter instance, ``mem`` (the default)."""
    async with running_gateway(tmp_path, adapters=[MemoryAdapter("mem")]) as gateway:
        yield gateway


@pytest.fixture
async def gw2(tmp_path: Path) -> AsyncIterator[Gateway]:
    """Two memory adapter instances, ``east`` (default) and ``west``: ownership routing."""
    async with running_gateway(
        tmp_path, adapters=[MemoryAdapter("east"), MemoryAdapter("west")], default="east"
    ) as gateway:
        yield gateway

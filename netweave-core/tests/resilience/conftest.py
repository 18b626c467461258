from __future__ import annotations

from collections.abc import Iterator

import pytest
from resilience_support import pg_database


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for the gateway(s) and the slow adapter's counters."""
    with pg_database("nw_resil") as url:
        yield url

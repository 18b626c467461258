"""Chart archives are inspected by core's one safe inspector (:mod:`netweave.adapters.charts`:
limits on entries, sizes and ratio, no links, devices or path traversal, schema references kept
inside the chart) with this instance's ``limits`` section (``config.ArchiveLimits``).
"""

from __future__ import annotations

from netweave.adapters.charts import (
    MAX_NESTED_ARCHIVES,
    ArchiveFacts,
    NoAliasLoader,
    check_schema_references,
    inspect_archive,
    refuse,
    safe_extract,
)

__all__ = [
    "MAX_NESTED_ARCHIVES",
    "ArchiveFacts",
    "NoAliasLoader",
    "check_schema_references",
    "inspect_archive",
    "refuse",
    "safe_extract",
]

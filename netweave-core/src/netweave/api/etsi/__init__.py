"""The standard face: ETSI GS NFV-SOL 003 VNF lifecycle management (``/vnflcm/v2`` and
``/vnflcm/v1``) with SOL013 conventions, over the native services. See docs/etsi.md."""

from __future__ import annotations

from typing import Any

from netweave.api.etsi.vnflcm import api_versions_handlers, vnflcm_controller


def etsi_handlers() -> list[Any]:
    """Route handlers of the standard face, mounted beside the native ones (same auth)."""
    return [*api_versions_handlers(), vnflcm_controller(2), vnflcm_controller(1)]


__all__ = ["etsi_handlers"]

"""A netweave hook plugin for the API benchmark: a bare Litestar handler on the same server.

It returns the same ``DeploymentPackage`` model, built once, with no auth, store or adapter —
the ceiling the gateway's ``GET nfDeploymentDescriptors/{id}`` is measured against (P1) — and
``/bench/spin``, a handler of a chosen CPU cost (the latency floor for a page of that cost).
Mounted through ``netweave_app_init``, the product's own extension point.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from litestar import Response, get
from netweave import hookimpl
from netweave.models import DeploymentPackage, PackageState

_NOW = datetime(2026, 1, 1, tzinfo=UTC)
SAMPLE = DeploymentPackage(
    package_id="bench-05000-1.0.0",
    name="bench-05000",
    artifact_name="bench-05000-1.0.0.tgz",
    artifact_version="1.0.0",
    package_type="helm",
    state=PackageState.AVAILABLE,
    adapter="helm-local",
    checksum="sha256:" + "0" * 64,
    created_at=_NOW,
    updated_at=_NOW,
    extensions={"chartVersion": "1.0.0", "appVersion": "1.0"},
)


@get("/bench/bare", include_in_schema=False, sync_to_thread=False)
def bare() -> DeploymentPackage:
    return SAMPLE


#: The longest ``/bench/spin`` burns (a bounded loop, whatever the query asks).
MAX_SPIN_US = 20_000


@get("/bench/spin", include_in_schema=False, sync_to_thread=False)
def spin(us: int = 0, k: int = 0) -> Response[bytes]:
    """Burns ``us`` microseconds of CPU on the event loop, then answers a small body: a
    handler of a known cost, so a bench can print what p99 this server gives a request of the
    measured page's cost — the floor no implementation of that page can go under. ``k`` is
    ignored (rotating keys)."""
    # CPU time, not wall time: under a neighbour's load the handler still costs what it says.
    end = time.thread_time() + min(max(us, 0), MAX_SPIN_US) / 1e6
    while time.thread_time() < end:
        pass
    return Response(b'{"spun":true}', media_type="application/json")


@hookimpl
def netweave_app_init(app_config: Any, adapters: dict[str, Any]) -> list[Any]:
    return [bare, spin]

"""``/o2dms/v1/adapters``: the configured adapter instances and their health."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency

from netweave.adapters import AdapterHealth, DMSAdapter
from netweave.api.common import API_PREFIX
from netweave.api.schemas import AdapterHealthView, AdapterList, AdapterView
from netweave.services import Services

#: A health check slower than this reports unhealthy instead of holding the listing.
HEALTH_TIMEOUT = 5.0


async def adapter_health(adapter: DMSAdapter, start_errors: dict[str, str]) -> AdapterHealth:
    if adapter.name in start_errors:
        return AdapterHealth(healthy=False, message=f"start failed: {start_errors[adapter.name]}")
    try:
        return await asyncio.wait_for(adapter.health(), HEALTH_TIMEOUT)
    except TimeoutError:
        return AdapterHealth(healthy=False, message=f"health check took over {HEALTH_TIMEOUT} s")


class AdapterController(Controller):
    path = f"{API_PREFIX}/adapters"
    tags = ["adapters"]

    @get(operation_id="ListAdapters", summary="Configured adapter instances with their health")
    async def list_adapters(
        self, request: Request[Any, Any, Any], services: NamedDependency[Services]
    ) -> AdapterList:
        registry = services.registry
        start_errors: dict[str, str] = request.app.state.adapter_start_errors
        adapters = list(registry.adapters.values())
        healths = await asyncio.gather(*(adapter_health(a, start_errors) for a in adapters))
        items = []
        for adapter, health in zip(adapters, healths, strict=True):
            info = adapter.instance_info()
            items.append(
                AdapterView(
                    name=adapter.name,
                    type=info.type,
                    distribution=info.distribution,
                    version=info.version,
                    contract_version=info.contract_version,
                    capabilities=sorted(c.value for c in info.capabilities),
                    package_types=sorted(info.package_types),
                    default=adapter.name == registry.default_name,
                    health=AdapterHealthView(
                        healthy=health.healthy, message=health.message, details=health.details
                    ),
                )
            )
        return AdapterList(items=items, total=len(items))

"""The real gateway in-process for tests: the Litestar app, the real SQL store, given adapters.

Used by the conformance kit's HTTP tests and by netweave's own API tests::

    async with running_gateway(tmp_path, adapters=[my_adapter]) as gw:
        response = await gw.post("/o2dms/v1/nfDeployments", json={...})
        operation = await gw.wait_operation(gw.operation_id(response))

An adapter distribution's end-to-end tests load it as ``netweave serve`` does instead, through
its entry point from ``plugins.dms`` (no ``adapters``)::

    settings = gateway_settings(tmp_path / "data", dms=[{"name": "argo", "type": "argocd",
                                                         "config": {...}}])
    async with running_gateway(tmp_path, settings=settings) as gw: ...

``gw.client`` speaks HTTP to the ASGI app (lifespan included, so adapters are started and the
operation worker runs); requests carry a valid bearer token unless ``headers`` say otherwise.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pluggy
from litestar import Litestar
from litestar.testing import AsyncTestClient
from pydantic import SecretStr

from netweave.adapters import DMSAdapter
from netweave.api.app import create_app
from netweave.api.plugin import NetweaveCore
from netweave.config import (
    ApiSettings,
    OperationSettings,
    PluginSettings,
    ReconcileSettings,
    Settings,
)
from netweave.config.loading import register_adapter_hooks
from netweave.config.plugins import make_plugin_manager
from netweave.config.registry import AdapterRegistry
from netweave.models.paths import API_PREFIX
from netweave.store.sql import SqlStore, create_store

TOKEN = "netweave-test-token-" + "x" * 32
TERMINAL_OPERATION_STATES = frozenset({"COMPLETED", "FAILED_TEMP", "FAILED", "ROLLED_BACK"})


@dataclass
class GatewayClient:
    app: Litestar
    client: AsyncTestClient[Litestar]
    store: SqlStore
    registry: AdapterRegistry
    plugin_manager: pluggy.PluginManager
    settings: Settings
    headers: dict[str, str] = field(default_factory=lambda: {"Authorization": f"Bearer {TOKEN}"})

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return await self.client.request(method, url, headers=headers, **kwargs)

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", url, **kwargs)

    async def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PUT", url, **kwargs)

    async def patch(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PATCH", url, **kwargs)

    async def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("DELETE", url, **kwargs)

    @staticmethod
    def operation_id(response: httpx.Response) -> str:
        """The operation a 201/202 answer points at (``Link rel=operation`` or ``Location``)."""
        link = str(response.headers.get("link", ""))
        if "/operations/" in link:
            return link.split("/operations/")[1].split(">")[0]
        location = str(response.headers.get("location", ""))
        if "/operations/" in location:
            return location.rsplit("/", 1)[1]
        raise AssertionError(f"no operation link in {dict(response.headers)}")

    async def wait(self, response: httpx.Response, wait_seconds: float = 30.0) -> dict[str, Any]:
        """Wait for the operation a 201/202 answer points at; return it once terminal."""
        return await self.wait_operation(self.operation_id(response), wait_seconds=wait_seconds)

    async def wait_operation(
        self,
        operation_id: str,
        states: frozenset[str] = TERMINAL_OPERATION_STATES,
        wait_seconds: float = 30.0,
    ) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        body: dict[str, Any] = {}
        while loop.time() < deadline:
            response = await self.get(f"{API_PREFIX}/operations/{operation_id}")
            assert response.status_code == 200, response.text
            body = response.json()
            if body["state"] in states:
                return body
            await asyncio.sleep(0.02)
        raise AssertionError(f"operation {operation_id} stayed {body.get('state')}")


def gateway_settings(
    data_dir: Path,
    *,
    token: str | None = TOKEN,
    dms: Sequence[Mapping[str, Any]] = (),
    reconcile: ReconcileSettings | None = None,
    **api: Any,
) -> Settings:
    """Settings for a test gateway: a known token, a fast operation worker, and the
    ``plugins.dms`` entries (as in the YAML file) when adapters are to be loaded by type.
    The reconciler is off unless ``reconcile`` is given (a test that changes a backend behind
    the gateway's back decides when the gateway looks)."""
    return Settings(
        data_dir=data_dir,
        api=ApiSettings(token=SecretStr(token) if token else None, **api),
        operations=OperationSettings(poll_interval=0.02, lease_seconds=5.0, max_attempts=2),
        plugins=PluginSettings.model_validate({"dms": list(dms)}),
        reconcile=reconcile or ReconcileSettings(enabled=False),
    )


def instance_settings(
    tmp_path: Path, adapter_type: str, config: Mapping[str, Any], *, name: str | None = None
) -> Settings:
    """:func:`gateway_settings` with one adapter instance (the default) of ``adapter_type``
    configured with ``config``, as a ``plugins.dms`` entry of the YAML file would."""
    entry = {"name": name or adapter_type, "type": adapter_type, "default": True, "config": config}
    return gateway_settings(tmp_path / "data", dms=[entry])


_Client = TypeVar("_Client", bound=GatewayClient)


@asynccontextmanager
async def running_gateway(
    tmp_path: Path,
    *,
    adapters: Sequence[DMSAdapter] | None = None,
    default: str | None = None,
    settings: Settings | None = None,
    store_url: str | None = None,
    plugin_manager: pluggy.PluginManager | None = None,
    client_class: type[_Client] = GatewayClient,  # type: ignore[assignment]
) -> AsyncIterator[_Client]:
    """The app builds its own store from the URL in its lifespan. ``AsyncTestClient`` runs the
    app in another event loop (a blocking portal), so the test gets a *second* store on the same
    database, bound to the test's loop — like a second replica would be.

    ``adapters=None``: the app loads them from ``settings.plugins.dms`` through the
    ``netweave.adapters`` entry points, exactly as ``netweave serve`` does."""
    settings = settings or gateway_settings(tmp_path / "data")
    url = store_url or f"sqlite:///{tmp_path / 'netweave.db'}"
    settings.store.url = SecretStr(url)
    if adapters is None:
        app = create_app(settings, plugin_manager=plugin_manager)
        core = app.plugins.get(NetweaveCore)
        assert core.registry is not None
        assert core.plugin_manager is not None
        registry, pm = core.registry, core.plugin_manager
    else:
        registry = AdapterRegistry({a.name: a for a in adapters}, default=default)
        pm = plugin_manager or make_plugin_manager()
        # As the loader does: an adapter's hooks (routes it mounts, events) are part of it.
        problems = register_adapter_hooks(pm, {type(a) for a in adapters})
        assert not problems, problems
        app = create_app(settings, registry=registry, plugin_manager=pm)
    token = settings.api.token.get_secret_value() if settings.api.token else None
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    store = create_store(url)
    try:
        async with AsyncTestClient(app, base_url="http://127.0.0.1") as client:
            yield client_class(
                app=app,
                client=client,
                store=store,
                registry=registry,
                plugin_manager=pm,
                settings=settings,
                headers=headers,
            )
    finally:
        await store.close()


__all__ = [
    "TERMINAL_OPERATION_STATES",
    "TOKEN",
    "GatewayClient",
    "gateway_settings",
    "instance_settings",
    "running_gateway",
]

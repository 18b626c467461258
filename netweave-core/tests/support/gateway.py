"""A gateway running in-process for tests: the real app, the real SqlStore, memory adapters.

``async with running_gateway(tmp_path, adapters=[...]) as gw:`` gives ``gw.client`` (an
``AsyncTestClient`` speaking HTTP to the ASGI app, lifespan included), ``gw.store``,
``gw.adapters`` by name and helpers to wait for operations.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy
from litestar import Litestar
from netweave.adapters import DMSAdapter
from netweave.api.app import create_app
from netweave.config import (
    ApiSettings,
    NotificationSettings,
    OperationSettings,
    ReconcileSettings,
    Settings,
)
from netweave.config.plugins import make_plugin_manager
from netweave.config.registry import AdapterRegistry
from netweave.store.sql import SqlStore, create_store
from netweave.testing.gateway import GatewayClient
from netweave.testing.gateway import running_gateway as kit_gateway
from pydantic import SecretStr

from support.memory_adapter import MemoryAdapter

TOKEN = "test-token-" + "x" * 32
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TERMINAL = frozenset({"COMPLETED", "FAILED_TEMP", "FAILED"})


@dataclass
class Gateway(GatewayClient):
    """The kit's in-process gateway plus helpers for memory-adapter tests."""

    adapters: dict[str, MemoryAdapter] = field(default_factory=dict)

    @property
    def memory(self) -> MemoryAdapter:
        return next(iter(self.adapters.values()))

    async def wait_operation(
        self, operation_id: str, states: frozenset[str] = TERMINAL, wait_seconds: float = 10.0
    ) -> dict[str, Any]:
        return await super().wait_operation(operation_id, states, wait_seconds)

    async def register_package(
        self, name: str = "app", version: str = "1.0.0", adapter: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": name,
            "artifactVersion": version,
            "packageUri": f"oci://registry.example/{name}:{version}",
        }
        if adapter is not None:
            body["adapter"] = adapter
        response = await self.post("/o2dms/v1/nfDeploymentDescriptors", json=body)
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    async def deploy(
        self, package_id: str, name: str = "web", values: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Create a deployment and wait for its operation; returns (deployment, operation)."""
        response = await self.post(
            "/o2dms/v1/nfDeployments",
            json={"name": name, "packageId": package_id, "values": values or {}},
        )
        assert response.status_code == 201, response.text
        operation_id = response.headers["link"].split("/operations/")[1].split(">")[0]
        operation = await self.wait_operation(operation_id)
        deployment = response.json()
        return deployment, operation


def make_settings(data_dir: Path, *, token: str | None = TOKEN, **api: Any) -> Settings:
    return Settings(
        data_dir=data_dir,
        api=ApiSettings(token=SecretStr(token) if token else None, **api),
        operations=OperationSettings(poll_interval=0.02, lease_seconds=5.0, max_attempts=2),
        # Callbacks on 127.0.0.1 are allowed and not tested on create, so API tests can store
        # subscriptions without a subscriber; tests/notifications turns both back on.
        notifications=NotificationSettings(
            allowed_cidrs=["127.0.0.0/8"],
            test_callback=False,
            poll_interval=0.05,
            settle_seconds=0.05,
            backoff_base=0.05,
            backoff_max=0.5,
            max_attempts=3,
            timeout=2.0,
        ),
        # Off unless a test turns it on: a test that changes a backend decides when the
        # gateway looks (tests/health).
        reconcile=ReconcileSettings(enabled=False),
    )


@asynccontextmanager
async def running_gateway(
    tmp_path: Path,
    *,
    adapters: Sequence[DMSAdapter] | None = None,
    default: str | None = None,
    settings: Settings | None = None,
    store_url: str | None = None,
    plugin_manager: pluggy.PluginManager | None = None,
) -> AsyncIterator[Gateway]:
    """``netweave.testing.gateway.running_gateway`` with a memory adapter by default and the
    API tests' settings."""
    adapter_list = list(adapters) if adapters is not None else [MemoryAdapter("mem")]
    async with kit_gateway(
        tmp_path,
        adapters=adapter_list,
        default=default,
        settings=settings or make_settings(tmp_path / "data"),
        store_url=store_url,
        plugin_manager=plugin_manager,
        client_class=Gateway,
    ) as gw:
        gw.adapters = {a.name: a for a in adapter_list if isinstance(a, MemoryAdapter)}
        yield gw


@asynccontextmanager
async def served(app: Litestar) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port (for real streaming); yields the URL.

    The app's lifespan runs inside uvicorn, so use this instead of ``running_gateway``'s client.
    """
    import socket

    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_config=None, lifespan="on", access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(500):
            if server.started:
                break
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("uvicorn did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


@asynccontextmanager
async def served_gateway(
    tmp_path: Path,
    *,
    adapters: Sequence[DMSAdapter] | None = None,
    settings: Settings | None = None,
) -> AsyncIterator[tuple[str, dict[str, MemoryAdapter], SqlStore]]:
    adapter_list = list(adapters) if adapters is not None else [MemoryAdapter("mem")]
    registry = AdapterRegistry({a.name: a for a in adapter_list})
    settings = settings or make_settings(tmp_path / "data")
    url = f"sqlite:///{tmp_path / 'netweave.db'}"
    settings.store.url = SecretStr(url)
    app = create_app(settings, registry=registry, plugin_manager=make_plugin_manager())
    store = create_store(url)
    try:
        async with served(app) as base_url:
            yield base_url, {a.name: a for a in adapter_list if isinstance(a, MemoryAdapter)}, store
    finally:
        await store.close()

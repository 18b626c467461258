"""create_app without injected parts (what ``netweave serve`` does) and adapter-mounted routes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from litestar import get
from litestar.testing import AsyncTestClient
from netweave.api.app import create_app
from netweave.config import Settings
from netweave.config.plugins import make_plugin_manager
from netweave.config.registry import AdapterRegistry
from netweave.hookspecs import hookimpl
from support.gateway import AUTH, make_settings, running_gateway
from support.memory_adapter import MemoryAdapter
from support.problems import assert_problem


async def test_create_app_builds_store_registry_and_plugins_from_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(data_dir=tmp_path / "data")  # embedded defaults, no adapters
    app = create_app(settings)
    async with AsyncTestClient(app, base_url="http://127.0.0.1") as client:
        out = capsys.readouterr().out
        token = out.split("NETWEAVE_API_TOKEN=", 1)[1].split()[0]
        headers = {"Authorization": f"Bearer {token}"}
        assert (await client.get("/readyz")).status_code == 200
        adapters = (await client.get("/o2dms/v1/adapters", headers=headers)).json()
        assert adapters == {"items": [], "total": 0}
        # with no adapter, a package cannot be placed: a 422 naming the field, not a 500
        response = await client.post(
            "/o2dms/v1/nfDeploymentDescriptors",
            headers=headers,
            json={"name": "app", "artifactVersion": "1", "packageUri": "oci://x/app"},
        )
        assert_problem(response, 422, "adapter")
    # the SQLite store was created in the data directory
    assert (tmp_path / "data" / "netweave.db").exists()


class ChartsPlugin:
    @hookimpl
    def netweave_app_init(self, app_config: Any, adapters: dict[str, Any]) -> list[Any]:
        names = sorted(adapters)

        @get("/charts/index.yaml", media_type="text/yaml", sync_to_thread=False)
        def index() -> str:
            return f"apiVersion: v1\n# adapters: {names}\n"

        return [index]


async def test_adapters_mount_routes_through_app_init(tmp_path: Path) -> None:
    pm = make_plugin_manager()
    pm.register(ChartsPlugin())
    async with running_gateway(tmp_path, plugin_manager=pm) as gw:
        response = await gw.client.get("/charts/index.yaml")  # open, like a Helm repository
        assert response.status_code == 200
        assert "['mem']" in response.text


async def test_adapter_start_failure_does_not_stop_the_gateway(tmp_path: Path) -> None:
    broken = MemoryAdapter("broken")
    broken.start_error = RuntimeError("kubeconfig unreadable")
    settings = make_settings(tmp_path / "data")
    app = create_app(
        settings,
        registry=AdapterRegistry({"broken": broken}),
        plugin_manager=make_plugin_manager(),
    )
    async with AsyncTestClient(app, base_url="http://127.0.0.1") as client:
        body = (await client.get("/o2dms/v1/adapters", headers=AUTH)).json()
        assert body["items"][0]["health"]["healthy"] is False
        assert (await client.get("/readyz")).status_code == 200


async def test_operation_tasks_honour_idempotency_keys(tmp_path: Path) -> None:
    from netweave.errors import InvalidInput

    async with running_gateway(tmp_path) as gw:
        await gw.register_package("app", "1.0.0")
        gw.memory.fail("create_deployment", InvalidInput("bad values"))
        response = await gw.post(
            "/o2dms/v1/nfDeployments", json={"name": "web", "packageId": "app-1.0.0"}
        )
        operation_id = response.headers["link"].split("/operations/")[1].split(">")[0]
        await gw.wait_operation(operation_id)
        url = f"/o2dms/v1/operations/{operation_id}/retry"
        first = await gw.post(url, headers={"Idempotency-Key": "retry-1"})
        assert first.status_code == 202, first.text
        await gw.wait_operation(operation_id)
        again = await gw.post(url, headers={"Idempotency-Key": "retry-1"})
        assert again.status_code == 202  # the first answer, not a 409 for COMPLETED
        assert again.json() == first.json()
        assert len(gw.memory.calls_to("create_deployment")) == 2

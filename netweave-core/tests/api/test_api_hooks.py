"""pluggy hooks from the data path: validation before storing, events after commit."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from netweave.adapters import DMSAdapter, PackageUpload
from netweave.config.plugins import make_plugin_manager
from netweave.errors import InvalidInput
from netweave.hookspecs import hookimpl
from support.gateway import running_gateway
from support.problems import assert_problem

BASE = "/o2dms/v1/nfDeployments"


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    @hookimpl
    def netweave_package_event(self, event_type: str, package: dict[str, Any]) -> None:
        self.events.append((event_type, package["packageId"]))

    @hookimpl
    async def netweave_deployment_event(self, event_type: str, deployment: dict[str, Any]) -> None:
        await asyncio.sleep(0)
        self.events.append((event_type, deployment["status"]))

    @hookimpl
    def netweave_operation_event(self, operation: Any, previous_state: str | None) -> None:
        self.events.append(("op", f"{previous_state}->{operation.state.value}"))


class Broken:
    @hookimpl
    def netweave_package_event(self, event_type: str, package: dict[str, Any]) -> None:
        raise RuntimeError("plugin bug")

    @hookimpl
    async def netweave_deployment_event(self, event_type: str, deployment: dict[str, Any]) -> None:
        await asyncio.sleep(30)  # far beyond the hook timeout

    @hookimpl
    def netweave_validate_deployment(self, request: Any, adapter: DMSAdapter) -> None:
        if request.namespace == "forbidden":
            raise InvalidInput("namespace forbidden by policy", details={"field": "namespace"})


class Crashing:
    @hookimpl
    def netweave_validate_package(self, upload: Any, adapter: DMSAdapter) -> None:
        raise RuntimeError("secret internals: password=hunter2")


async def test_events_are_fired_after_commit(tmp_path: Path) -> None:
    pm = make_plugin_manager()
    recorder = Recorder()
    pm.register(recorder)
    async with running_gateway(tmp_path, plugin_manager=pm) as gw:
        await gw.register_package("app", "1.0.0")
        deployment, _ = await gw.deploy("app-1.0.0")
        response = await gw.delete(f"{BASE}/{deployment['deploymentId']}")
        await gw.wait_operation(response.json()["operationId"])
    events = recorder.events
    assert events[0] == ("PackageUploaded", "app-1.0.0")
    assert ("DeploymentCreated", "PENDING") in events
    assert ("op", "None->STARTING") in events
    assert ("op", "STARTING->PROCESSING") in events
    assert ("op", "PROCESSING->COMPLETED") in events
    assert ("DeploymentChanged", "DEPLOYED") in events
    assert ("DeploymentDeleted", "DELETED") in events
    assert events.index(("DeploymentCreated", "PENDING")) < events.index(
        ("DeploymentChanged", "DEPLOYED")
    )


async def test_hook_failures_never_fail_the_request(tmp_path: Path) -> None:
    pm = make_plugin_manager()
    pm.register(Broken())
    async with running_gateway(tmp_path, plugin_manager=pm) as gw:
        gw.app.state.services.hooks._timeout = 0.05
        await gw.register_package("app", "1.0.0")
        _, operation = await gw.deploy("app-1.0.0")
        assert operation["state"] == "COMPLETED"
        response = await gw.post(
            BASE, json={"name": "x", "packageId": "app-1.0.0", "namespace": "forbidden"}
        )
        assert_problem(response, 400, "namespace")
        assert (await gw.store.list_deployments()).total == 1


async def test_unexpected_exception_is_a_500_without_internals(tmp_path: Path) -> None:
    pm = make_plugin_manager()
    pm.register(Crashing())
    async with running_gateway(tmp_path, plugin_manager=pm) as gw:
        response = await gw.post(
            "/o2dms/v1/nfDeploymentDescriptors",
            json={"name": "app", "artifactVersion": "1", "packageUri": "oci://x/app"},
        )
        body = assert_problem(response, 500)
        assert "hunter2" not in response.text
        assert "RuntimeError" not in response.text
        assert body["error"] == "InternalError"
        assert (await gw.store.list_packages()).total == 0


class Witness:
    """Records what the validation hooks are given."""

    def __init__(self) -> None:
        self.packages: list[tuple[DMSAdapter, str | None]] = []
        self.deployments: list[DMSAdapter] = []

    @hookimpl
    def netweave_validate_package(self, upload: PackageUpload, adapter: DMSAdapter) -> None:
        self.packages.append((adapter, upload.package_id))

    @hookimpl
    def netweave_validate_deployment(self, request: Any, adapter: DMSAdapter) -> None:
        self.deployments.append(adapter)


async def test_validation_hooks_get_the_adapter_and_the_package_id_the_gateway_gives(
    tmp_path: Path,
) -> None:
    from support.memory_adapter import MemoryAdapter

    witness = Witness()
    pm = make_plugin_manager()
    pm.register(witness)
    east = MemoryAdapter("east")
    async with running_gateway(tmp_path, adapters=[east], plugin_manager=pm) as gw:
        first = await gw.register_package("a-b", "1")
        # Reads as "a-b-1" too: the gateway gives it a suffixed id, and says so before the
        # adapter is called (never rebuilt from name and version).
        second = await gw.register_package("a", "b-1")
        assert first["packageId"] == "a-b-1"
        assert second["packageId"] not in {"a-b-1", first["packageId"]}
        await gw.deploy(second["packageId"])
    assert [(a, pid) for a, pid in witness.packages] == [
        (east, "a-b-1"),
        (east, second["packageId"]),
    ]
    assert witness.deployments == [east]


class Selector:
    @hookimpl
    def netweave_select_adapter(
        self, kind: str, payload: dict[str, Any], candidates: list[str]
    ) -> str | None:
        if kind == "package" and payload["name"].startswith("west-"):
            return "west"
        return None


async def test_select_adapter_hook_places_unnamed_packages(tmp_path: Path) -> None:
    from support.memory_adapter import MemoryAdapter

    pm = make_plugin_manager()
    pm.register(Selector())
    async with running_gateway(
        tmp_path,
        adapters=[MemoryAdapter("east"), MemoryAdapter("west")],
        default="east",
        plugin_manager=pm,
    ) as gw:
        assert (await gw.register_package("west-app", "1.0.0"))["adapter"] == "west"
        assert (await gw.register_package("other", "1.0.0"))["adapter"] == "east"
        # an explicit adapter wins over the hook
        assert (await gw.register_package("west-b", "1.0.0", adapter="east"))["adapter"] == "east"


async def test_events_nobody_listens_to_are_never_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No subscription and no plugin listening: a deployment's life builds none of its events'
    wire forms (most of an event's cost); a plugin listening gets every one (test above)."""
    import netweave.operations.events as events_module

    built: list[str] = []

    def counting(convert: Any) -> Any:
        def wrapper(record: Any) -> Any:
            built.append(convert.__name__)
            return convert(record)

        return wrapper

    monkeypatch.setattr(
        events_module, "deployment_to_wire", counting(events_module.deployment_to_wire)
    )
    monkeypatch.setattr(
        events_module, "operation_to_wire", counting(events_module.operation_to_wire)
    )
    pm = make_plugin_manager()
    async with running_gateway(tmp_path, plugin_manager=pm) as gw:
        await gw.register_package("app", "1.0.0")
        deployment, operation = await gw.deploy("app-1.0.0")
        assert operation["state"] == "COMPLETED"
        assert built == []
        pm_recorder = Recorder()
        pm.register(pm_recorder)
        response = await gw.delete(f"{BASE}/{deployment['deploymentId']}")
        await gw.wait_operation(response.json()["operationId"])
    assert "operation_to_wire" in built  # a listener now: built for it
    assert ("op", "PROCESSING->COMPLETED") in pm_recorder.events

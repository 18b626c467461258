"""backend: so — SDC model references and macro service instances through the adapter's public
methods, against the SO emulator (every request validated against so-swagger.json)."""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from netweave.adapters import (
    Capability,
    DeploymentChange,
    DeploymentSpec,
    OperationContext,
    PackageInfo,
    PackageUpload,
)
from netweave.errors import (
    BackendError,
    BackendUnavailable,
    Conflict,
    InvalidInput,
    NotFound,
    Unsupported,
)
from netweave.models import DeploymentStatus
from netweave.testing.contracts import ContractViolation
from netweave_onap import OnapAdapter, SoBackend
from onap_emulators.samples import MODEL, shared_dir
from onap_emulators.so import SoEmulator, load_validator

_n = 0
SERVICES = "/onap/so/infra/serviceInstantiation/v7/serviceInstances"


def ctx(key: str | None = None) -> OperationContext:
    global _n
    _n += 1
    return OperationContext(operation_id=f"op-{_n}", idempotency_key=key or f"so-op-{_n}:0")


def registration(**overrides: Any) -> PackageUpload:
    fields: dict[str, Any] = {
        "name": "cu-service",
        "version": "2.0",
        "package_type": "sdc-service",
        "package_uri": "sdc:services/beb1259e-dad8-4ee0-a40e-1af20f775d54",
        "source": copy.deepcopy(MODEL),
    }
    fields.update(overrides)
    return PackageUpload(**fields)


def spec(package: PackageInfo, name: str = "cu-1", values: dict | None = None) -> DeploymentSpec:
    return DeploymentSpec(
        deployment_id=f"dep-{name}",
        name=name,
        namespace="ran",
        package=package,
        values=values if values is not None else {"replicaCount": "2", "image": {"tag": "1.0"}},
    )


def posts(backend: SoEmulator) -> list[dict[str, str]]:
    return [h for (m, p, h) in backend.calls if m == "POST" and p == SERVICES]


async def test_mode_class_and_capabilities(so_adapter: OnapAdapter) -> None:
    assert type(so_adapter) is OnapAdapter
    assert isinstance(so_adapter.backend, SoBackend)
    caps = so_adapter.capabilities
    assert Capability.DEPLOYMENT_LIFECYCLE in caps
    assert Capability.ROLLBACK not in caps
    assert Capability.DEPLOYMENT_UPDATE not in caps
    assert Capability.PACKAGE_LISTING not in caps
    assert caps >= OnapAdapter.CAPABILITIES
    assert so_adapter.instance_info().capabilities == caps
    assert (await so_adapter.health()).healthy
    with pytest.raises(Unsupported):
        await so_adapter.rollback_deployment("x", 0, ctx())


async def test_package_registration(so_adapter: OnapAdapter) -> None:
    info = await so_adapter.upload_package(registration())
    assert (info.name, info.version, info.package_type) == ("cu-service", "2.0", "sdc-service")
    assert (
        info.extensions["sdcModel"]["service"]["modelVersionId"]
        == MODEL["service"]["modelVersionId"]
    )
    got = await so_adapter.get_package(info.backend_ref)
    assert (got.backend_ref, got.name, got.package_uri) == (
        info.backend_ref,
        "cu-service",
        "sdc:services/beb1259e-dad8-4ee0-a40e-1af20f775d54",
    )
    assert got.extensions == info.extensions
    with pytest.raises(Unsupported, match="catalogue"):
        await so_adapter.list_packages()
    await so_adapter.delete_package(info.backend_ref)
    with pytest.raises(NotFound):
        await so_adapter.get_package("netweave-kit-missing:0.0.0")
    with pytest.raises(NotFound):
        await so_adapter.delete_package("sdc-service:bm90LWpzb24")


async def test_package_registration_rejects_archives_and_bad_models(
    so_adapter: OnapAdapter, tmp_path: Path
) -> None:
    archive = tmp_path / "cu.tgz"
    archive.write_bytes(b"\x1f\x8b")
    with pytest.raises(InvalidInput, match="SDC"):
        await so_adapter.upload_package(registration(archive=archive, package_uri=None))
    broken = copy.deepcopy(MODEL)
    del broken["vnfs"][0]["vfModules"]
    with pytest.raises(InvalidInput, match="source"):
        await so_adapter.upload_package(registration(source=broken))
    with pytest.raises(InvalidInput, match="package types"):
        await so_adapter.upload_package(registration(package_type="helm"))


async def test_deployment_lifecycle(so_adapter: OnapAdapter, so_backend: SoEmulator) -> None:
    package = await so_adapter.upload_package(registration())
    key = ctx()
    created = await so_adapter.create_deployment(spec(package), key)
    assert created.status is DeploymentStatus.DEPLOYED
    assert created.revision == 1
    assert created.backend_status == "COMPLETE"
    assert created.values == {"replicaCount": "2", "image": {"tag": "1.0"}}
    assert created.backend_ref in so_backend.instances

    # What SO received: the macro CNF body, identified by a request id from the key.
    (headers,) = posts(so_backend)
    assert headers["x-onap-requestid"] == str(created.extensions["requestId"])
    uuid.UUID(headers["x-onap-requestid"])
    assert headers["x-onap-partnername"] == "netweave"
    sent = so_backend.requests[headers["x-onap-requestid"]].details
    assert sent["requestParameters"]["aLaCarte"] is False
    vnf = sent["requestParameters"]["userParams"][1]["service"]["resources"]["vnfs"][0]
    assert vnf["cloudConfiguration"] == {
        "cloudOwner": "CloudOwner",
        "lcpCloudRegionId": "k8sregionfour",
        "tenantId": "6bbd2981b210461dbc8fe846df1a7808",
    }
    params = vnf["vfModules"][0]["instanceParams"][0]
    assert params["k8s-rb-profile-namespace"] == "ran"
    assert params["image.tag"] == "1.0"
    assert sent["subscriberInfo"] == {"globalSubscriberId": "basicnf-customer"}

    again = await so_adapter.get_deployment(created.backend_ref)
    assert again.status is DeploymentStatus.DEPLOYED
    with pytest.raises(Unsupported, match="upgradeCnf"):
        await so_adapter.update_deployment(
            created.backend_ref, DeploymentChange(values={"a": "b"}), ctx()
        )

    await so_adapter.delete_deployment(created.backend_ref, ctx())
    gone = await so_adapter.get_deployment(created.backend_ref)
    assert gone.status is DeploymentStatus.DELETED
    assert created.backend_ref not in so_backend.instances
    # Deleting again is a no-op on a deleted instance.
    await so_adapter.delete_deployment(created.backend_ref, ctx())
    with pytest.raises(NotFound):
        await so_adapter.get_deployment(str(uuid.uuid4()))


async def test_many_deployments_are_read_with_one_request_list(
    so_adapter: OnapAdapter, so_backend: SoEmulator
) -> None:
    assert so_adapter.batch_reads is True  # backend 'so': the poll round is one list
    package = await so_adapter.upload_package(registration())
    one = await so_adapter.create_deployment(spec(package, "cu-1"), ctx())
    two = await so_adapter.create_deployment(spec(package, "cu-2"), ctx())
    await so_adapter.delete_deployment(two.backend_ref, ctx())
    missing = str(uuid.uuid4())
    so_backend.lists.clear()

    reads = await so_adapter.get_deployments([one.backend_ref, two.backend_ref, missing])
    assert so_backend.lists == [["modelType:EQUALS:service"]]  # one request, service scope
    # Each instance read as its single read reads it (one status table).
    for ref in (one.backend_ref, two.backend_ref):
        single = await so_adapter.get_deployment(ref)
        assert reads[ref] == single, (reads[ref], single)
    assert reads[two.backend_ref].status is DeploymentStatus.DELETED  # type: ignore[union-attr]
    assert isinstance(reads[missing], NotFound)  # no request names it: gone

    so_backend.list_outage_status = 503
    with pytest.raises(BackendUnavailable):
        await so_adapter.get_deployments([one.backend_ref])
    so_backend.list_outage_status = None


async def test_progress_while_the_request_runs(
    so_adapter: OnapAdapter, so_backend: SoEmulator
) -> None:
    package = await so_adapter.upload_package(registration())
    so_backend.duration = 0.6
    so_adapter.config.wait = False
    created = await so_adapter.create_deployment(spec(package), ctx())
    assert created.status in (DeploymentStatus.PENDING, DeploymentStatus.DEPLOYING)
    percents: list[int] = []
    statuses = {created.status}
    for _ in range(200):
        info = await so_adapter.get_deployment(created.backend_ref)
        statuses.add(info.status)
        if info.status is DeploymentStatus.DEPLOYING:
            percents.append(int(info.extensions["percentProgress"]))
        if info.status is DeploymentStatus.DEPLOYED:
            break
        await asyncio.sleep(0.03)
    assert DeploymentStatus.DEPLOYED in statuses and DeploymentStatus.DEPLOYING in statuses
    assert percents == sorted(percents) and 0 < percents[-1] < 100
    await so_adapter.delete_deployment(created.backend_ref, ctx())
    deleting = await so_adapter.get_deployment(created.backend_ref)
    assert deleting.status in (DeploymentStatus.DELETING, DeploymentStatus.DELETED)
    # Another delete attempt while SO works on the first follows it instead of sending one.
    so_adapter.config.wait = True
    await so_adapter.delete_deployment(created.backend_ref, ctx())
    deletes = [c for c in so_backend.calls if c[0] == "DELETE"]
    assert len(deletes) == 1
    assert (await so_adapter.get_deployment(created.backend_ref)).status is DeploymentStatus.DELETED


async def test_failures_are_mapped(so_adapter: OnapAdapter, so_backend: SoEmulator) -> None:
    package = await so_adapter.upload_package(registration())
    so_backend.fail_next_create = "Exception in CreateVfModuleBB: k8s plugin returned 500"
    with pytest.raises(BackendError, match="CreateVfModuleBB") as caught:
        await so_adapter.create_deployment(spec(package, "cu-bad"), ctx())
    assert caught.value.details["requestState"] == "FAILED"
    assert so_backend.instances == {}

    ok = await so_adapter.create_deployment(spec(package, "cu-ok"), ctx())
    so_backend.fail_next_delete = "Exception in DeleteVfModuleBB"
    with pytest.raises(BackendError, match="DeleteVfModuleBB"):
        await so_adapter.delete_deployment(ok.backend_ref, ctx())
    after = await so_adapter.get_deployment(ok.backend_ref)
    assert after.status is DeploymentStatus.FAILED


async def test_create_is_idempotent(so_adapter: OnapAdapter, so_backend: SoEmulator) -> None:
    package = await so_adapter.upload_package(registration())
    so_backend.accept_delay = 0.2  # a slow API handler
    step = ctx("create-cu:0")
    first = await so_adapter.create_deployment(spec(package), step)
    second = await so_adapter.create_deployment(spec(package), step)
    assert second.backend_ref == first.backend_ref
    assert len(posts(so_backend)) == 1
    assert len(so_backend.instances) == 1

    # A step whose SO request failed may try again — with a new request, once.
    so_backend.fail_next_create = "boom"
    retry = ctx("create-cu2:0")
    with pytest.raises(BackendError, match="boom"):
        await so_adapter.create_deployment(spec(package, "cu-2"), retry)
    recovered = await so_adapter.create_deployment(spec(package, "cu-2"), retry)
    assert recovered.status is DeploymentStatus.DEPLOYED
    assert len(posts(so_backend)) == 3
    again = await so_adapter.create_deployment(spec(package, "cu-2"), retry)
    assert again.backend_ref == recovered.backend_ref
    assert len(posts(so_backend)) == 3


async def test_error_mapping(so_adapter: OnapAdapter, so_backend: SoEmulator) -> None:
    package = await so_adapter.upload_package(registration())
    so_backend.duration = 2.0
    so_adapter.config.wait = False
    await so_adapter.create_deployment(spec(package, "cu-dup"), ctx())
    # SO's DuplicateRequestException (409 requestError) while the first request runs.
    with pytest.raises(Conflict, match="Locked instance") as caught:
        await so_adapter.create_deployment(spec(package, "cu-dup"), ctx())
    assert caught.value.details["messageId"] == "SVC0002"
    assert "cu-dup" in caught.value.message  # %1 filled from variables

    # Once the first one completed, the name is taken in A&AI: accepted, then FAILED.
    so_backend.duration = 0.1
    so_adapter.config.wait = True
    with pytest.raises(BackendError, match="already exists in A&AI"):
        await so_adapter.create_deployment(spec(package, "cu-dup"), ctx())

    so_backend.outage_status = 503
    with pytest.raises(BackendUnavailable):
        await so_adapter.get_deployment(str(uuid.uuid4()))
    assert not (await so_adapter.health()).healthy
    so_backend.outage_status = None

    so_backend.password = "changed"
    with pytest.raises(BackendError, match="credentials"):
        await so_adapter.get_deployment(str(uuid.uuid4()))


# -- the contract check itself ------------------------------------------------------------


def _cnf_example() -> dict[str, Any]:
    document = json.loads((shared_dir() / "contracts/onap/so-swagger.json").read_text())
    post = document["paths"]["/onap/so/infra/serviceInstantiation/{version}/serviceInstances"]
    example = post["post"]["requestBody"]["content"]["application/json"]["examples"]["cnf"]
    return copy.deepcopy(example["value"])


def _fixed_cnf_example() -> dict[str, Any]:
    """The swagger's "cnf" example with the three places where it breaks its own schema
    corrected: ``Homing_Solution`` is a boolean (schema: string), the service ``modelInfo``
    carries ``modelInvariantId``/``modelType`` (schema: ``modelInvariantUuid``, no type) and a
    vf-module ``modelVersion`` is the number 1 (schema: string)."""
    body = _cnf_example()
    user_params = body["requestDetails"]["requestParameters"]["userParams"]
    user_params[0]["Homing_Solution"] = "none"
    service = user_params[1]["service"]
    service["modelInfo"]["modelInvariantUuid"] = service["modelInfo"].pop("modelInvariantId")
    del service["modelInfo"]["modelType"]
    module = service["resources"]["vnfs"][0]["vfModules"][0]
    module["modelInfo"]["modelVersion"] = str(module["modelInfo"]["modelVersion"])
    return body


def test_swagger_cnf_example_passes_with_the_documented_overrides() -> None:
    validator = load_validator(shared_dir() / "contracts/onap/so-swagger.json")
    with pytest.raises(ContractViolation):
        validator.validate_request("POST", SERVICES, body=_cnf_example())
    validator.validate_request("POST", SERVICES, body=_fixed_cnf_example())


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda b: [b], "an array body"),
        (lambda b: {**b, "extra": 1}, "an unknown top-level field"),
        (
            lambda b: {
                "requestDetails": {**b["requestDetails"], "cloudConfiguration": {"tenantId": "t"}}
            },
            "cloudConfiguration outside the vnf",
        ),
        (
            lambda b: _set_module_params(b, [{"replicaCount": 2}]),
            "a non-string vf-module instance param",
        ),
        (
            lambda b: _set_user_params(b, [{"Homing_Solution": "none", "service": {}}]),
            "a userParams item mixing both kinds",
        ),
    ],
)
def test_contract_rejects_shapes_the_swagger_does_not_allow(mutate: Any, where: str) -> None:
    validator = load_validator(shared_dir() / "contracts/onap/so-swagger.json")
    validator.validate_request("POST", SERVICES, body=_fixed_cnf_example())  # baseline passes
    with pytest.raises(ContractViolation):
        validator.validate_request("POST", SERVICES, body=mutate(_fixed_cnf_example()))


def _set_user_params(body: dict[str, Any], params: list[dict[str, Any]]) -> dict[str, Any]:
    body["requestDetails"]["requestParameters"]["userParams"] = params
    return body


def _set_module_params(body: dict[str, Any], params: list[dict[str, Any]]) -> dict[str, Any]:
    service = body["requestDetails"]["requestParameters"]["userParams"][1]["service"]
    service["resources"]["vnfs"][0]["vfModules"][0]["instanceParams"] = params
    return body


async def test_emulator_refuses_and_records_a_request_outside_the_contract(
    so_backend: SoEmulator,
) -> None:
    auth = (so_backend.username, so_backend.password)
    async with httpx.AsyncClient(base_url=so_backend.url, auth=auth) as client:
        bad = await client.get("/onap/so/infra/orchestrationRequests/v7")  # filter missing
        wrong = await client.get("/onap/so/infra/orchestrationRequests/v9/abc")
    assert bad.status_code == 400 and wrong.status_code == 400
    assert bad.json()["requestError"]["serviceException"]["messageId"] == "SVC0002"
    assert len(so_backend.violations) == 2
    assert "filter" in so_backend.violations[0]
    so_backend.violations.clear()


async def test_tls_with_the_configured_ca(tmp_path: Path) -> None:
    import ssl

    from netweave.testing.tls import make_pki
    from netweave_onap import OnapConfig
    from onap_emulators.server import HttpEmulator

    pki = make_pki(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    emulator = SoEmulator(shared_dir() / "contracts" / "onap" / "so-swagger.json")
    server = HttpEmulator(emulator, tls=context).start()
    emulator.url = server.url
    base = {
        "backend": "so",
        "soUrl": server.url,
        "username": emulator.username,
        "password": emulator.password,
        "cloudRegion": "r",
        "tenantId": "t",
        "pollInterval": 0.02,
        "http": {"retries": 0},
    }
    try:
        trusted = OnapAdapter(
            "tls",
            OnapConfig.model_validate(
                {**base, "http": {"retries": 0, "tls": {"caFile": str(pki.ca)}}}
            ),
        )
        untrusted = OnapAdapter("no-ca", OnapConfig.model_validate(base))
        await trusted.start()
        await untrusted.start()
        try:
            assert (await trusted.health()).healthy
            package = await trusted.upload_package(registration())
            created = await trusted.create_deployment(spec(package), ctx())
            assert created.status is DeploymentStatus.DEPLOYED
            # The system trust store does not know the test CA: the handshake fails.
            assert not (await untrusted.health()).healthy
            with pytest.raises(BackendUnavailable):
                await untrusted.get_deployment(created.backend_ref)
        finally:
            await trusted.stop()
            await untrusted.stop()
    finally:
        server.stop()
    assert not emulator.violations

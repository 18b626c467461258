"""The emulators' answers are pinned: the k8s plugin's to its Go structs (provenance in
onap_emulators/k8splugin.py), SO's to JSON Schemas written from its Java beans
(onap_emulators/so_answers.schema.json, provenance in each). An answer carrying a field the
struct or bean does not have — which the real backend's serialiser could never send — is a
recorded violation, so the test fails."""

from __future__ import annotations

import httpx
from netweave.adapters import OperationContext, PackageUpload
from netweave_onap import OnapAdapter
from onap_emulators.k8splugin import K8sPluginEmulator
from onap_emulators.so import ANSWER_SCHEMAS, SoEmulator


async def test_real_answers_pass_and_an_invented_field_is_a_violation(
    k8s_adapter: OnapAdapter,
    k8s_backend: K8sPluginEmulator,
    hello_chart: PackageUpload,
    k8s_violations_allowed: list[str],
) -> None:
    from netweave.adapters import DeploymentSpec

    package = await k8s_adapter.upload_package(hello_chart)
    created = await k8s_adapter.create_deployment(
        DeploymentSpec(
            deployment_id="d-1", name="pinned", namespace="default", package=package, values={}
        ),
        OperationContext(operation_id="op-1", idempotency_key="op-1:0"),
    )
    await k8s_adapter.get_deployment(created.backend_ref)
    assert k8s_backend.violations == []  # every answer so far matched its struct

    instance_id = next(iter(k8s_backend.instances))
    k8s_backend.instances[instance_id].data["invented"] = True
    async with httpx.AsyncClient(base_url=k8s_backend.url) as client:  # type: ignore[attr-defined]
        answer = await client.get(f"/v1/instance/{instance_id}", params={"full": "true"})
    assert answer.status_code == 200
    assert len(k8s_backend.violations) == 1
    assert "answer GET" in k8s_backend.violations[0]
    assert "invented" in k8s_backend.violations[0]
    k8s_violations_allowed.extend(k8s_backend.violations)  # exactly the one provoked here


async def test_so_answers_match_the_bean_schemas_and_an_invented_field_is_a_violation(
    so_adapter: OnapAdapter, so_backend: SoEmulator, so_violations_allowed: list[str]
) -> None:
    import copy
    import json

    from netweave.adapters import DeploymentSpec
    from onap_emulators.samples import MODEL

    package = await so_adapter.upload_package(
        PackageUpload(
            name="cu-service",
            version="2.0",
            package_type="sdc-service",
            package_uri="sdc:services/beb1259e-dad8-4ee0-a40e-1af20f775d54",
            source=copy.deepcopy(MODEL),
        )
    )
    created = await so_adapter.create_deployment(
        DeploymentSpec(
            deployment_id="d-1", name="cu-1", namespace="ran", package=package, values={}
        ),
        OperationContext(operation_id="op-1", idempotency_key="op-1:0"),
    )
    await so_adapter.get_deployments([created.backend_ref])
    assert (await so_adapter.health()).healthy
    await so_adapter.delete_deployment(
        created.backend_ref, OperationContext(operation_id="op-2", idempotency_key="op-2:0")
    )
    # create and delete (202), one request and the lists (200), the health page: all pinned.
    assert so_backend.violations == []

    # Every schema names where it came from.
    document = json.loads(ANSWER_SCHEMAS.read_text())
    for name, schema in document["$defs"].items():
        source = schema["x-provenance"]
        assert source["repository"] == "https://github.com/onap/so", name
        assert source["path"].endswith(".java") and len(source["commit"]) == 40, name

    auth = (so_backend.username, so_backend.password)
    base = "/onap/so/infra/orchestrationRequests/v7"
    request_id, item = next(iter(so_backend.requests.items()))
    render = so_backend._render
    async with httpx.AsyncClient(base_url=so_backend.url, auth=auth) as client:
        # A field SO's Request bean does not have, at the top of a request.
        so_backend._render = lambda i: {**render(i), "requestPriority": "high"}  # type: ignore[method-assign]
        answer = await client.get(f"{base}/{request_id}")
        so_backend._render = render  # type: ignore[method-assign]
        # One deep inside the echoed requestDetails (RequestDetails has no such property).
        item.details["invented"] = True
        listed = await client.get(base, params={"filter": "modelType:EQUALS:service"})
        del item.details["invented"]
        # A requestState outside org.onap.so.constants.Status.
        status = so_backend._state
        so_backend._state = lambda i: ("DONE", 100, "")  # type: ignore[method-assign]
        odd = await client.get(f"{base}/{request_id}")
        so_backend._state = status  # type: ignore[method-assign]
    assert (answer.status_code, listed.status_code, odd.status_code) == (200, 200, 200)
    assert len(so_backend.violations) == 3, so_backend.violations
    top, deep, state = so_backend.violations
    assert "(GetOrchestrationResponse)" in top and "requestPriority" in top
    assert "(GetOrchestrationListResponse)" in deep and "'requestDetails'" in deep
    assert "invented" in deep
    assert "'requestState'" in state and "DONE" in state
    so_violations_allowed.extend(so_backend.violations)  # exactly the three provoked here

"""The k8s plugin emulator's answers are pinned to the plugin's Go structs (provenance in
onap_emulators/k8splugin.py): an answer carrying a field the struct does not have — which the
real plugin's encoding/json could never send — is a recorded violation, so the test fails."""

from __future__ import annotations

import httpx
from netweave.adapters import OperationContext, PackageUpload
from netweave_onap import OnapAdapter
from onap_emulators.k8splugin import K8sPluginEmulator


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

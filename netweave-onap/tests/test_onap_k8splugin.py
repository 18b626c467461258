"""backend: k8splugin — packages and deployments through the adapter's public methods,
against the k8s plugin emulator (request bodies checked against the plugin's Go structs)."""

from __future__ import annotations

import asyncio
import io
import json
import tarfile
from pathlib import Path

import pytest
import yaml
from netweave.adapters import (
    Capability,
    DeploymentChange,
    DeploymentSpec,
    OperationContext,
    PackageInfo,
    PackageUpload,
)
from netweave.errors import (
    AlreadyExists,
    BackendError,
    BackendUnavailable,
    Conflict,
    InUse,
    InvalidInput,
    NotFound,
    Unsupported,
)
from netweave.models import DeploymentStatus
from netweave_onap import K8sPluginBackend, OnapAdapter
from onap_emulators.k8splugin import K8sPluginEmulator
from onap_emulators.server import Request, Response

_n = 0


def ctx(key: str | None = None) -> OperationContext:
    global _n
    _n += 1
    return OperationContext(operation_id=f"op-{_n}", idempotency_key=key or f"op-{_n}:0")


def spec(package: PackageInfo, name: str = "web", values: dict | None = None) -> DeploymentSpec:
    return DeploymentSpec(
        deployment_id=f"dep-{name}",
        name=name,
        namespace="ran",
        package=package,
        values=values if values is not None else {"replicaCount": 2, "image": {"tag": "1.0"}},
    )


def profile_values(backend: K8sPluginEmulator, rb: tuple[str, str], profile: str) -> object:
    data = backend.profile_contents[(*rb, profile)]
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        member = tar.extractfile("override_values.yaml")
        assert member is not None
        return yaml.safe_load(member.read())


async def test_mode_class_and_capabilities(k8s_adapter: OnapAdapter) -> None:
    assert type(k8s_adapter) is OnapAdapter
    assert isinstance(k8s_adapter.backend, K8sPluginBackend)
    assert Capability.ROLLBACK in k8s_adapter.capabilities
    assert Capability.DEPLOYMENT_UPDATE in k8s_adapter.capabilities
    assert k8s_adapter.instance_info().capabilities == k8s_adapter.capabilities
    assert k8s_adapter.capabilities > OnapAdapter.CAPABILITIES
    assert (await k8s_adapter.health()).healthy


async def test_package_lifecycle(
    k8s_adapter: OnapAdapter, k8s_backend: K8sPluginEmulator, hello_chart: PackageUpload
) -> None:
    info = await k8s_adapter.upload_package(hello_chart)
    assert (info.backend_ref, info.name, info.version) == (
        "hello-world/0.1.0",
        "hello-world",
        "0.1.0",
    )
    definition = k8s_backend.definitions[("hello-world", "0.1.0")]
    assert definition["chart-name"] == "hello-world"
    assert definition["labels"]["netweave-checksum"] == "sha256:test"
    assert k8s_backend.contents[("hello-world", "0.1.0")] == hello_chart.archive.read_bytes()  # type: ignore[union-attr]
    # The plugin made its default profile for the definition.
    assert ("hello-world", "0.1.0", "default") in k8s_backend.profiles

    got = await k8s_adapter.get_package(info.backend_ref)
    assert got.extensions["chartName"] == "hello-world"
    assert got.checksum == "sha256:test"
    assert [p.backend_ref for p in await k8s_adapter.list_packages()] == ["hello-world/0.1.0"]

    with pytest.raises(AlreadyExists):
        await k8s_adapter.upload_package(hello_chart)

    await k8s_adapter.delete_package(info.backend_ref)
    assert k8s_backend.definitions == {}
    with pytest.raises(NotFound):
        await k8s_adapter.get_package(info.backend_ref)
    with pytest.raises(NotFound):
        await k8s_adapter.delete_package(info.backend_ref)
    with pytest.raises(NotFound):
        await k8s_adapter.get_package("not-a-ref")


async def test_upload_rejects_non_chart_and_uri(
    k8s_adapter: OnapAdapter, k8s_backend: K8sPluginEmulator, tmp_path: Path
) -> None:
    junk = tmp_path / "junk.tgz"
    junk.write_bytes(b"not gzip at all")
    with pytest.raises(InvalidInput, match="gzip"):
        await k8s_adapter.upload_package(PackageUpload(name="x", version="1", archive=junk))
    with pytest.raises(InvalidInput, match="packageUri"):
        await k8s_adapter.upload_package(
            PackageUpload(name="x", version="1", package_uri="https://charts.example/x-1.tgz")
        )
    assert k8s_backend.definitions == {}


async def test_content_rejected_by_plugin_leaves_no_definition(
    k8s_adapter: OnapAdapter, k8s_backend: K8sPluginEmulator, hello_chart: PackageUpload
) -> None:
    # The plugin refuses the content (as it does for a corrupt upload): the definition created
    # just before must be removed again, or a corrected re-upload would be "already exists".
    original = k8s_backend._definitions

    def refuse_content(request: Request, rest: list[str]) -> Response:
        if rest[2:] == ["content"]:
            return Response.text(500, "Error in file format: unexpected EOF")
        return original(request, rest)

    k8s_backend._definitions = refuse_content  # type: ignore[method-assign]
    with pytest.raises(InvalidInput, match="file format"):
        await k8s_adapter.upload_package(hello_chart)
    assert k8s_backend.definitions == {}
    k8s_backend._definitions = original  # type: ignore[method-assign]
    info = await k8s_adapter.upload_package(hello_chart)
    assert info.backend_ref == "hello-world/0.1.0"


async def test_deployment_lifecycle_update_rollback_history(
    k8s_adapter: OnapAdapter,
    k8s_backend: K8sPluginEmulator,
    hello_chart: PackageUpload,
    charts: Path,
) -> None:
    package = await k8s_adapter.upload_package(hello_chart)
    created = await k8s_adapter.create_deployment(spec(package), ctx())
    assert created.status is DeploymentStatus.DEPLOYED
    assert created.revision == 1
    assert created.values == {"replicaCount": 2, "image": {"tag": "1.0"}}
    assert created.extensions["namespace"] == "ran"
    assert {r.kind for r in created.resources} == {"Deployment", "Service"}
    instance = k8s_backend.instances[created.backend_ref].data
    assert instance["request"]["cloud-region"] == k8s_backend.cloud_region
    assert instance["release-name"] == "web"
    profile_v1 = instance["request"]["profile-name"]
    # The values reached the plugin as the profile's override values file.
    assert profile_values(k8s_backend, ("hello-world", "0.1.0"), profile_v1) == {
        "image": {"tag": "1.0"},
        "replicaCount": 2,
    }
    assert k8s_backend.profiles[("hello-world", "0.1.0", profile_v1)]["namespace"] == "ran"

    # Update (merge) → revision 2 with a new profile.
    updated = await k8s_adapter.update_deployment(
        created.backend_ref, DeploymentChange(values={"image": {"tag": "2.0"}}), ctx()
    )
    assert updated.status is DeploymentStatus.DEPLOYED
    assert updated.revision == 2
    assert updated.values == {"replicaCount": 2, "image": {"tag": "2.0"}}
    profile_v2 = k8s_backend.instances[created.backend_ref].data["request"]["profile-name"]
    assert profile_v2 != profile_v1

    # Upgrade to another definition version → revision 3.
    second = PackageUpload(
        name="hello-world", version="0.2.0", archive=charts / "hello-world-0.1.0.tgz"
    )
    package2 = await k8s_adapter.upload_package(second)
    upgraded = await k8s_adapter.update_deployment(
        created.backend_ref, DeploymentChange(package=package2), ctx()
    )
    assert (upgraded.revision, upgraded.package_version) == (3, "0.2.0")
    with pytest.raises(InUse):
        await k8s_adapter.delete_package(package2.backend_ref)

    # Rollback to the previous revision: definition 0.1.0 with revision 2's profile and values.
    back = await k8s_adapter.rollback_deployment(created.backend_ref, 0, ctx())
    assert back.status is DeploymentStatus.DEPLOYED
    assert (back.revision, back.package_version) == (4, "0.1.0")
    assert back.values == {"replicaCount": 2, "image": {"tag": "2.0"}}
    assert k8s_backend.instances[created.backend_ref].data["request"]["profile-name"] == profile_v2

    # Explicit rollback to revision 1.
    first = await k8s_adapter.rollback_deployment(created.backend_ref, 1, ctx())
    assert (first.revision, first.values) == (5, {"replicaCount": 2, "image": {"tag": "1.0"}})
    with pytest.raises(NotFound):
        await k8s_adapter.rollback_deployment(created.backend_ref, 42, ctx())

    history = await k8s_adapter.get_history(created.backend_ref)
    assert [h.revision for h in history] == [1, 2, 3, 4, 5]
    assert [h.status for h in history] == ["SUPERSEDED"] * 4 + ["DONE"]
    assert [h.package_version for h in history] == ["0.1.0", "0.1.0", "0.2.0", "0.1.0", "0.1.0"]
    assert "rollback to revision 2" in (history[3].description or "")

    await k8s_adapter.delete_deployment(created.backend_ref, ctx())
    with pytest.raises(NotFound):
        await k8s_adapter.get_deployment(created.backend_ref)
    # The per-revision profiles went with the instance; the plugin's default profiles stay.
    assert sorted(k for k in k8s_backend.profiles) == [
        ("hello-world", "0.1.0", "default"),
        ("hello-world", "0.2.0", "default"),
    ]
    await k8s_adapter.delete_package(package2.backend_ref)


async def test_progress_is_reported_while_hooks_run(
    k8s_adapter: OnapAdapter, k8s_backend: K8sPluginEmulator, hello_chart: PackageUpload
) -> None:
    package = await k8s_adapter.upload_package(hello_chart)
    k8s_backend.hook_seconds = 1.0  # long enough for the ROLLING_BACK/DELETING reads below
    k8s_adapter.config.wait = False
    created = await k8s_adapter.create_deployment(spec(package), ctx())
    assert created.status is DeploymentStatus.DEPLOYING
    assert created.backend_status == "POST-INSTALL"
    seen = {created.status}
    for _ in range(200):
        info = await k8s_adapter.get_deployment(created.backend_ref)
        seen.add(info.status)
        if info.status is DeploymentStatus.DEPLOYED:
            break
        await asyncio.sleep(0.02)
    assert seen == {DeploymentStatus.DEPLOYING, DeploymentStatus.DEPLOYED}

    await k8s_adapter.update_deployment(
        created.backend_ref, DeploymentChange(values={"x": 1}), ctx()
    )
    await k8s_adapter.rollback_deployment(created.backend_ref, 0, ctx())
    rolling = await k8s_adapter.get_deployment(created.backend_ref)
    assert rolling.status is DeploymentStatus.ROLLING_BACK
    await k8s_adapter.delete_deployment(created.backend_ref, ctx())
    deleting = await k8s_adapter.get_deployment(created.backend_ref)
    assert deleting.status is DeploymentStatus.DELETING


async def test_failures_are_reported(
    k8s_adapter: OnapAdapter, k8s_backend: K8sPluginEmulator, hello_chart: PackageUpload
) -> None:
    package = await k8s_adapter.upload_package(hello_chart)
    # A failed install fails the operation and, like helm --atomic, leaves nothing behind.
    k8s_backend.fail_next_install = True
    step = ctx("create-bad:0")
    with pytest.raises(BackendError, match=r"POST-INSTALL-FAILED.*removed") as caught:
        await k8s_adapter.create_deployment(spec(package, "bad"), step)
    assert caught.value.details["backendStatus"] == "POST-INSTALL-FAILED"
    assert k8s_backend.instances == {}
    # The operation's retry (same key) installs afresh.
    retried = await k8s_adapter.create_deployment(spec(package, "bad"), step)
    assert retried.status is DeploymentStatus.DEPLOYED

    ok = await k8s_adapter.create_deployment(spec(package, "good"), ctx())
    k8s_backend.fail_next_upgrade = True
    step = ctx("update-good:0")
    with pytest.raises(BackendError, match="POST-UPGRADE-FAILED"):
        await k8s_adapter.update_deployment(ok.backend_ref, DeploymentChange(values={"a": 1}), step)
    failed = await k8s_adapter.get_deployment(ok.backend_ref)
    assert (failed.status, failed.revision) == (DeploymentStatus.FAILED, 2)
    # The retry sends the same upgrade again instead of a second revision.
    again = await k8s_adapter.update_deployment(
        ok.backend_ref, DeploymentChange(values={"a": 1}), step
    )
    assert (again.status, again.revision, again.values) == (
        DeploymentStatus.DEPLOYED,
        2,
        {"replicaCount": 2, "image": {"tag": "1.0"}, "a": 1},
    )

    k8s_backend.fail_next_delete = True
    with pytest.raises(BackendError, match="POST-DELETE-FAILED"):
        await k8s_adapter.delete_deployment(ok.backend_ref, ctx())


async def test_create_is_idempotent_and_slow_creates_complete(
    k8s_adapter: OnapAdapter, k8s_backend: K8sPluginEmulator, hello_chart: PackageUpload
) -> None:
    package = await k8s_adapter.upload_package(hello_chart)
    k8s_backend.create_delay = 0.3
    same = ctx("create-web:0")
    first = await k8s_adapter.create_deployment(spec(package), same)
    again = await k8s_adapter.create_deployment(spec(package), same)
    assert again.backend_ref == first.backend_ref
    assert len(k8s_backend.instances) == 1
    # A retried update step is applied once.
    step = ctx("update-web:0")
    await k8s_adapter.update_deployment(first.backend_ref, DeploymentChange(values={"a": 1}), step)
    twice = await k8s_adapter.update_deployment(
        first.backend_ref, DeploymentChange(values={"a": 1}), step
    )
    assert twice.revision == 2


async def test_create_timeout_is_backend_timeout(
    k8s_backend: K8sPluginEmulator, hello_chart: PackageUpload
) -> None:
    from netweave.errors import BackendTimeout

    adapter = OnapAdapter(
        "slow",
        OnapAdapter.Config.model_validate(
            {
                "backend": "k8splugin",
                "k8sPluginUrl": k8s_backend.url,  # type: ignore[attr-defined]
                "cloudRegion": k8s_backend.cloud_region,
                "pollInterval": 0.02,
                "timeouts": {"read": 5, "write": 0.3},
            }
        ),
    )
    await adapter.start()
    try:
        package = await adapter.upload_package(hello_chart)
        k8s_backend.hook_seconds = 5
        with pytest.raises(BackendTimeout):
            await adapter.create_deployment(spec(package), ctx())
    finally:
        await adapter.stop()


async def test_error_mapping(
    k8s_adapter: OnapAdapter,
    k8s_backend: K8sPluginEmulator,
    hello_chart: PackageUpload,
    k8s_violations_allowed: list[str],
) -> None:
    with pytest.raises(NotFound):
        await k8s_adapter.get_deployment("nosuchinstance")
    with pytest.raises(NotFound):
        await k8s_adapter.delete_deployment("nosuchinstance", ctx())
    package = await k8s_adapter.upload_package(hello_chart)
    # A cloud region the plugin has no kubeconfig for.
    k8s_adapter.config.cloud_region = "elsewhere"
    health = await k8s_adapter.health()
    assert not health.healthy and "connectivity-info" in (health.message or "")
    with pytest.raises(BackendError, match="connectivity-info"):
        await k8s_adapter.create_deployment(spec(package), ctx())
    k8s_adapter.config.cloud_region = k8s_backend.cloud_region
    # Rollback without an earlier revision is a conflict.
    created = await k8s_adapter.create_deployment(spec(package), ctx())
    with pytest.raises(Conflict):
        await k8s_adapter.rollback_deployment(created.backend_ref, 0, ctx())
    # Not offered by this backend: 501 through the template.
    with pytest.raises(Unsupported):
        await k8s_adapter.scale_deployment(created.backend_ref, 3, ctx())
    # Outage: the ingress answers 503 → BackendUnavailable (after the bounded retries).
    k8s_backend.outage_status = 503
    with pytest.raises(BackendUnavailable):
        await k8s_adapter.get_deployment(created.backend_ref)
    assert not (await k8s_adapter.health()).healthy
    k8s_backend.outage_status = None
    # A value the Go struct cannot hold (override-values are map[string]string) → 422.
    k8s_adapter.config.override_values = {"k8s-rb-instance-post-install-timeout": "60"}
    object.__setattr__(k8s_adapter.config, "override_values", {"timeout": 60})
    with pytest.raises(InvalidInput):
        await k8s_adapter.create_deployment(spec(package, "typed"), ctx())
    provoked = [v for v in k8s_backend.violations if "override-values" in v]
    assert len(provoked) == 1, k8s_backend.violations
    k8s_violations_allowed.extend(provoked)  # exactly the one provoked here


async def test_emulator_rejects_fields_the_go_structs_do_not_have(
    k8s_backend: K8sPluginEmulator,
) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=k8s_backend.url) as client:  # type: ignore[attr-defined]
        response = await client.post(
            "/v1/rb/definition",
            content=json.dumps({"rb-name": "a", "rb-version": "1", "chartName": "typo"}),
        )
    assert response.status_code == 422
    assert k8s_backend.violations and "chartName" in k8s_backend.violations[0]
    k8s_backend.violations.clear()


async def test_idempotent_calls_are_retried_creates_are_not(
    k8s_adapter: OnapAdapter, k8s_backend: K8sPluginEmulator, hello_chart: PackageUpload
) -> None:
    package = await k8s_adapter.upload_package(hello_chart)
    created = await k8s_adapter.create_deployment(spec(package), ctx())
    k8s_backend.calls.clear()
    k8s_backend.flaky_requests = 1
    info = await k8s_adapter.get_deployment(created.backend_ref)  # GET: retried once
    assert info.status is DeploymentStatus.DEPLOYED
    assert k8s_backend.calls[0] == k8s_backend.calls[1]

    k8s_backend.calls.clear()
    k8s_backend.flaky_requests, k8s_backend.flaky_method = 1, "POST"
    with pytest.raises(BackendUnavailable):  # the profile POST got a 503
        await k8s_adapter.create_deployment(spec(package, "other"), ctx())
    posts = [c for c in k8s_backend.calls if c[0] == "POST"]
    assert posts == [("POST", "/v1/rb/definition/hello-world/0.1.0/profile")], (
        "a POST must not be repeated by the client"
    )

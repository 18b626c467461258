"""Every deployment lifecycle path through the adapter's public methods, against the emulator."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from argo_emulator import CRD, ArgoEmulator
from conftest import ctx, git_upload, helm_upload, spec
from netweave.adapters import DeploymentChange
from netweave.adapters.idempotency import idempotency_stamp
from netweave.errors import (
    AlreadyExists,
    BackendError,
    BackendUnavailable,
    Conflict,
    InvalidInput,
    NotFound,
)
from netweave.models import DeploymentStatus, LogOptions
from netweave.testing.contracts import validate_against_crd
from netweave_argocd.adapter import ArgoCDAdapter


def calls(argo: ArgoEmulator, operation_id: str) -> list[Any]:
    return [r for r in argo.requests if r.operation_id == operation_id]


async def deployed(adapter: ArgoCDAdapter, argo: ArgoEmulator, name: str = "web", **kw: Any) -> str:
    package = await adapter.upload_package(helm_upload())
    info = await adapter.create_deployment(spec(package, name=name, **kw), ctx())
    argo.settle(name)
    assert (await adapter.get_deployment(info.backend_ref)).status is DeploymentStatus.DEPLOYED
    return info.backend_ref


# -- create --------------------------------------------------------------------------------


async def test_create_builds_a_valid_application_and_syncs_it(
    adapter: ArgoCDAdapter, argo: ArgoEmulator
) -> None:
    package = await adapter.upload_package(helm_upload())
    values = {"replicaCount": 2, "image": {"tag": "1.2"}}
    info = await adapter.create_deployment(spec(package, values=values), ctx())

    assert info.backend_ref == "argocd/web"
    assert info.status is DeploymentStatus.DEPLOYING  # a sync is queued
    app = argo.app("web")
    validate_against_crd({**app, "apiVersion": "argoproj.io/v1alpha1", "kind": "Application"}, CRD)
    assert app["metadata"]["finalizers"] == ["resources-finalizer.argocd.argoproj.io"]
    assert app["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "netweave"}
    assert app["metadata"]["annotations"]["netweave.io/deployment-id"] == "dep-web"
    assert app["spec"]["project"] == "default"
    assert app["spec"]["destination"] == {
        "namespace": "ran",
        "server": "https://kubernetes.default.svc",
    }
    assert app["spec"]["source"] == {
        "repoURL": "https://charts.example.test/stable",
        "chart": "web",
        "targetRevision": "1.0.0",
        "helm": {"valuesObject": values},
    }
    assert app["spec"]["syncPolicy"] == {"syncOptions": ["CreateNamespace=true"]}
    # Manual sync policy: the adapter asked for the sync, with the project in the body.
    (sync,) = calls(argo, "ApplicationService_Sync")
    assert sync.body["project"] == "default"
    assert app["operation"]["sync"]["revision"] == "1.0.0"
    create = calls(argo, "ApplicationService_Create")[0]
    assert dict(create.query) == {"upsert": "false", "validate": "true"}


async def test_status_follows_the_controller_to_deployed(
    adapter: ArgoCDAdapter, argo: ArgoEmulator
) -> None:
    package = await adapter.upload_package(helm_upload())
    ref = (await adapter.create_deployment(spec(package), ctx())).backend_ref
    seen = []
    for _ in range(6):
        argo.tick("web")
        info = await adapter.get_deployment(ref)
        seen.append((info.status, info.backend_status))
    statuses = [s for s, _ in seen]
    # queued sync → Running operation (Progressing) → Succeeded + Progressing → Healthy.
    assert statuses[0] is DeploymentStatus.DEPLOYING
    assert statuses[1] is DeploymentStatus.DEPLOYING
    assert "phase=Running" in seen[1][1]
    assert statuses[-1] is DeploymentStatus.DEPLOYED
    info = await adapter.get_deployment(ref)
    assert info.revision == 1
    assert info.package_version == "1.0.0"
    assert info.values == {}
    assert [(r.kind, r.ready) for r in info.resources] == [("Deployment", True), ("Service", True)]
    assert info.extensions["argocd.syncStatus"] == "Synced"
    assert info.extensions["argocd.healthStatus"] == "Healthy"


async def test_create_with_automated_policy_does_not_sync_itself(
    auto_adapter: ArgoCDAdapter, argo: ArgoEmulator
) -> None:
    package = await auto_adapter.upload_package(helm_upload())
    info = await auto_adapter.create_deployment(spec(package), ctx())
    assert calls(argo, "ApplicationService_Sync") == []
    assert argo.app("web")["spec"]["syncPolicy"]["automated"] == {
        "enabled": True,
        "prune": True,
        "selfHeal": True,
    }
    # Not compared yet → PENDING; then the controller's own auto-sync takes it to DEPLOYED.
    assert info.status is DeploymentStatus.PENDING
    argo.tick("web")
    assert (
        await auto_adapter.get_deployment(info.backend_ref)
    ).status is DeploymentStatus.DEPLOYING
    argo.settle("web")
    done = await auto_adapter.get_deployment(info.backend_ref)
    assert done.status is DeploymentStatus.DEPLOYED
    history = await auto_adapter.get_history(info.backend_ref)
    assert history[0].description is not None
    assert "auto-sync" in history[0].description


async def test_create_from_a_git_source(adapter: ArgoCDAdapter, argo: ArgoEmulator) -> None:
    package = await adapter.upload_package(git_upload())
    info = await adapter.create_deployment(spec(package, name="web-git"), ctx())
    assert argo.app("web-git")["spec"]["source"] == {
        "repoURL": "https://git.example.test/nf/web.git",
        "path": "deploy/web",
        "targetRevision": "v1.0.0",
    }
    argo.settle("web-git")
    done = await adapter.get_deployment(info.backend_ref)
    assert done.status is DeploymentStatus.DEPLOYED
    # The synced revision is the commit Argo CD resolved the tag to.
    assert len(done.extensions["argocd.syncedRevision"]) == 40


async def test_create_collision_with_someone_elses_app_is_already_exists(
    adapter: ArgoCDAdapter, argo: ArgoEmulator
) -> None:
    package = await adapter.upload_package(helm_upload())
    await adapter.create_deployment(spec(package), ctx())
    other = spec(package, values={"different": True})
    other = dataclasses.replace(other, deployment_id="someone-else")
    with pytest.raises(AlreadyExists, match="belongs to another deployment"):
        await adapter.create_deployment(other, ctx())


async def test_retried_create_is_idempotent(adapter: ArgoCDAdapter, argo: ArgoEmulator) -> None:
    package = await adapter.upload_package(helm_upload())
    first = await adapter.create_deployment(spec(package), ctx())
    # The same step again (a gateway restart mid-operation): same Application, the running
    # sync is recognised as ours instead of failing with "operation in progress".
    again = await adapter.create_deployment(spec(package), ctx(attempt=2))
    assert again.backend_ref == first.backend_ref
    assert len(argo.apps) == 1
    assert again.status is DeploymentStatus.DEPLOYING


async def test_invalid_source_on_create_is_invalid_input(
    adapter: ArgoCDAdapter, argo: ArgoEmulator
) -> None:
    package = await adapter.upload_package(helm_upload())
    argo.helm_repos.clear()  # the chart vanished after registration
    with pytest.raises(InvalidInput, match="InvalidSpecError"):
        await adapter.create_deployment(spec(package), ctx())
    assert argo.apps == {}


async def test_invalid_deployment_name_never_reaches_argo(
    adapter: ArgoCDAdapter, argo: ArgoEmulator
) -> None:
    package = await adapter.upload_package(helm_upload())
    with pytest.raises(InvalidInput, match="DNS label"):
        await adapter.create_deployment(spec(package, name="Web_1"), ctx())
    assert calls(argo, "ApplicationService_Create") == []


# -- failures, degraded health, in-progress operations -----------------------------------


async def test_failed_sync_is_failed_with_argos_message(
    adapter: ArgoCDAdapter, argo: ArgoEmulator
) -> None:
    package = await adapter.upload_package(helm_upload())
    argo.script("web", "fail")
    ref = (await adapter.create_deployment(spec(package), ctx())).backend_ref
    argo.settle("web")
    info = await adapter.get_deployment(ref)
    assert info.status is DeploymentStatus.FAILED
    assert info.message is not None
    assert "failed to apply" in info.message
    assert info.revision == 0  # nothing was ever deployed


async def test_operation_error_is_failed(adapter: ArgoCDAdapter, argo: ArgoEmulator) -> None:
    package = await adapter.upload_package(helm_upload())
    argo.script("web", "error")
    ref = (await adapter.create_deployment(spec(package), ctx())).backend_ref
    argo.settle("web")
    info = await adapter.get_deployment(ref)
    assert info.status is DeploymentStatus.FAILED
    assert "phase=Error" in (info.backend_status or "")


async def test_degraded_health_is_not_deployed(adapter: ArgoCDAdapter, argo: ArgoEmulator) -> None:
    package = await adapter.upload_package(helm_upload())
    argo.script("web", "degraded")
    ref = (await adapter.create_deployment(spec(package), ctx())).backend_ref
    argo.settle("web")
    info = await adapter.get_deployment(ref)
    assert info.status is DeploymentStatus.DEGRADED
    assert info.message == "Deployment has minimum availability issues"
    assert any(r.ready is False for r in info.resources)


async def test_operation_in_progress_is_deploying_and_blocks_updates(
    adapter: ArgoCDAdapter, argo: ArgoEmulator
) -> None:
    package = await adapter.upload_package(helm_upload())
    argo.script("web", "hang")
    ref = (await adapter.create_deployment(spec(package), ctx())).backend_ref
    for _ in range(5):
        argo.tick("web")
    info = await adapter.get_deployment(ref)
    assert info.status is DeploymentStatus.DEPLOYING
    assert "phase=Running" in (info.backend_status or "")
    # Argo CD: FailedPrecondition "another operation is already in progress" → 409.
    with pytest.raises(Conflict, match="another operation is already in progress"):
        await adapter.update_deployment(ref, DeploymentChange(values={"a": 1}), ctx())


# -- update and scale -----------------------------------------------------------------------


async def test_update_merges_values_and_syncs(adapter: ArgoCDAdapter, argo: ArgoEmulator) -> None:
    ref = await deployed(
        adapter, argo, values={"replicaCount": 1, "image": {"tag": "a", "pull": "x"}}
    )
    info = await adapter.update_deployment(
        ref, DeploymentChange(values={"image": {"tag": "b"}, "extra": True}), ctx()
    )
    expected = {"replicaCount": 1, "image": {"tag": "b", "pull": "x"}, "extra": True}
    assert info.values == expected
    assert argo.app("web")["spec"]["source"]["helm"]["valuesObject"] == expected
    assert info.status is DeploymentStatus.DEPLOYING
    patch = calls(argo, "ApplicationService_Patch")[-1].body
    assert patch["patchType"] == "json"
    assert patch["project"] == "default"
    assert json.loads(patch["patch"])[0]["path"] == "/spec/source"
    assert len(calls(argo, "ApplicationService_Sync")) == 2
    argo.settle("web")
    done = await adapter.get_deployment(ref)
    assert (done.status, done.revision) == (DeploymentStatus.DEPLOYED, 2)


async def test_update_replace_mode_drops_old_values(
    adapter: ArgoCDAdapter, argo: ArgoEmulator
) -> None:
    ref = await deployed(adapter, argo, values={"a": 1, "b": 2})
    info = await adapter.update_deployment(
        ref, DeploymentChange(values={"c": 3}, values_mode="replace"), ctx()
    )
    assert info.values == {"c": 3}
    assert argo.app("web")["spec"]["source"]["helm"] == {"valuesObject": {"c": 3}}
    argo.settle("web")
    # Replacing with nothing removes the Helm values block entirely.
    info = await adapter.update_deployment(
        ref, DeploymentChange(values={}, values_mode="replace"), ctx()
    )
    assert info.values == {}
    assert "helm" not in argo.app("web")["spec"]["source"]


async def test_update_to_a_new_package_version(adapter: ArgoCDAdapter, argo: ArgoEmulator) -> None:
    ref = await deployed(adapter, argo, values={"a": 1})
    newer = await adapter.upload_package(helm_upload("1.1.0"))
    info = await adapter.update_deployment(ref, DeploymentChange(package=newer), ctx())
    assert info.package_version == "1.1.0"
    app = argo.app("web")
    assert app["spec"]["source"]["targetRevision"] == "1.1.0"
    assert app["spec"]["source"]["helm"]["valuesObject"] == {"a": 1}  # values kept
    assert app["metadata"]["annotations"]["netweave.io/package"] == newer.backend_ref
    argo.settle("web")
    done = await adapter.get_deployment(ref)
    assert (done.status, done.package_version) == (DeploymentStatus.DEPLOYED, "1.1.0")


async def test_update_with_automated_policy_lets_argo_sync(
    auto_adapter: ArgoCDAdapter, argo: ArgoEmulator
) -> None:
    package = await auto_adapter.upload_package(helm_upload())
    ref = (await auto_adapter.create_deployment(spec(package), ctx())).backend_ref
    argo.settle("web")
    info = await auto_adapter.update_deployment(ref, DeploymentChange(values={"x": 1}), ctx())
    assert calls(argo, "ApplicationService_Sync") == []
    assert info.status is DeploymentStatus.DEPLOYING  # OutOfSync + automated
    argo.settle("web")
    assert (await auto_adapter.get_deployment(ref)).status is DeploymentStatus.DEPLOYED


async def test_scale_merges_the_replica_value(adapter: ArgoCDAdapter, argo: ArgoEmulator) -> None:
    ref = await deployed(adapter, argo, values={"replicaCount": 1, "image": {"tag": "a"}})
    info = await adapter.scale_deployment(ref, 5, ctx())
    assert info.values == {"replicaCount": 5, "image": {"tag": "a"}}
    argo.settle("web")
    assert (await adapter.get_deployment(ref)).status is DeploymentStatus.DEPLOYED


async def test_scale_uses_the_configured_value_path(argo: ArgoEmulator) -> None:
    from conftest import make_config

    adapter = ArgoCDAdapter("argo", make_config(argo, scaleValuePath="web.replicas"))
    try:
        ref = await deployed(adapter, argo, values={"web": {"image": "x"}})
        info = await adapter.scale_deployment(ref, 3, ctx())
        assert info.values == {"web": {"image": "x", "replicas": 3}}
    finally:
        await adapter.stop()


# -- rollback and history -------------------------------------------------------------------


async def _three_revisions(adapter: ArgoCDAdapter, argo: ArgoEmulator) -> str:
    ref = await deployed(adapter, argo, values={"v": 1})
    for value in (2, 3):
        await adapter.update_deployment(ref, DeploymentChange(values={"v": value}), ctx())
        argo.settle("web")
    return ref


async def test_history_lists_argo_history_with_values(
    adapter: ArgoCDAdapter, argo: ArgoEmulator
) -> None:
    ref = await _three_revisions(adapter, argo)
    history = await adapter.get_history(ref)
    assert [h.revision for h in history] == [1, 2, 3]
    assert [h.status for h in history] == ["superseded", "superseded", "deployed"]
    assert [h.values for h in history] == [{"v": 1}, {"v": 2}, {"v": 3}]
    assert all(h.deployed_at is not None for h in history)
    assert history[0].package_version == "1.0.0"


async def test_rollback_to_previous_uses_its_history_id(
    adapter: ArgoCDAdapter, argo: ArgoEmulator
) -> None:
    ref = await _three_revisions(adapter, argo)
    info = await adapter.rollback_deployment(ref, 0, ctx())
    (rollback,) = calls(argo, "ApplicationService_Rollback")
    assert rollback.body["id"] == 1  # Argo CD's id of revision 2
    assert rollback.body["project"] == "default"
    assert info.status is DeploymentStatus.ROLLING_BACK
    argo.tick("web")
    assert (await adapter.get_deployment(ref)).status is DeploymentStatus.ROLLING_BACK
    argo.settle("web")
    done = await adapter.get_deployment(ref)
    assert done.status is DeploymentStatus.DEPLOYED
    assert done.values == {"v": 2}
    assert done.revision == 4  # a rollback is a new history entry


async def test_rollback_to_an_explicit_revision(adapter: ArgoCDAdapter, argo: ArgoEmulator) -> None:
    ref = await _three_revisions(adapter, argo)
    await adapter.rollback_deployment(ref, 1, ctx())
    assert calls(argo, "ApplicationService_Rollback")[0].body["id"] == 0
    argo.settle("web")
    assert (await adapter.get_deployment(ref)).values == {"v": 1}
    # The rolled-back source is the desired state now: the next update merges into it.
    info = await adapter.update_deployment(ref, DeploymentChange(values={"w": 1}), ctx())
    assert info.values == {"v": 1, "w": 1}


async def test_rollback_to_unknown_revision_or_without_previous(
    adapter: ArgoCDAdapter, argo: ArgoEmulator
) -> None:
    ref = await deployed(adapter, argo)
    with pytest.raises(InvalidInput, match="no previous revision"):
        await adapter.rollback_deployment(ref, 0, ctx())
    with pytest.raises(InvalidInput, match=r"revision 7 is not in the history.*\[1\]"):
        await adapter.rollback_deployment(ref, 7, ctx())
    assert calls(argo, "ApplicationService_Rollback") == []


async def test_argo_refuses_rollback_while_auto_sync_is_on(
    auto_adapter: ArgoCDAdapter, argo: ArgoEmulator
) -> None:
    # The emulator's refusal is real: a rollback request with auto-sync on is a 409 here.
    package = await auto_adapter.upload_package(helm_upload())
    ref = (await auto_adapter.create_deployment(spec(package), ctx())).backend_ref
    argo.settle("web")
    response = await auto_adapter.http.client.post(
        "/api/v1/applications/web/rollback", json={"name": "web", "id": 0, "project": "default"}
    )
    assert response.status_code == 400
    assert response.json()["code"] == 9
    assert "auto-sync is enabled" in response.json()["message"]
    assert ref


async def test_rollback_switches_auto_sync_off_then_restores_it(
    auto_adapter: ArgoCDAdapter, argo: ArgoEmulator
) -> None:
    package = await auto_adapter.upload_package(helm_upload())
    ref = (await auto_adapter.create_deployment(spec(package, values={"v": 1}), ctx())).backend_ref
    argo.settle("web")
    await auto_adapter.update_deployment(ref, DeploymentChange(values={"v": 2}), ctx())
    argo.settle("web")
    original = argo.app("web")["spec"]["syncPolicy"]["automated"]

    info = await auto_adapter.rollback_deployment(ref, 0, ctx())
    assert info.status is DeploymentStatus.ROLLING_BACK
    patches = [json.loads(p.body["patch"]) for p in calls(argo, "ApplicationService_Patch")]
    assert {"op": "remove", "path": "/spec/syncPolicy/automated"} in patches[-2]
    assert {"op": "add", "path": "/spec/syncPolicy/automated", "value": original} in patches[-1]
    assert argo.app("web")["spec"]["syncPolicy"]["automated"] == original
    # Auto-sync is back on and does not undo the rollback: the spec is the rolled-back source.
    argo.settle("web")
    done = await auto_adapter.get_deployment(ref)
    assert (done.status, done.values) == (DeploymentStatus.DEPLOYED, {"v": 1})


async def test_retried_rollback_step_is_not_done_twice(
    adapter: ArgoCDAdapter, argo: ArgoEmulator
) -> None:
    ref = await _three_revisions(adapter, argo)
    step = ctx()
    first = await adapter.rollback_deployment(ref, 0, step)
    argo.settle("web")
    # The same operation step again (its result was lost): no second rollback, which would
    # now go "back" to revision 3.
    again = await adapter.rollback_deployment(ref, 0, step)
    assert len(calls(argo, "ApplicationService_Rollback")) == 1
    assert again.values == first.values == {"v": 2}
    # A new rollback operation is a new step.
    await adapter.rollback_deployment(ref, 0, ctx())
    assert len(calls(argo, "ApplicationService_Rollback")) == 2


async def test_rollback_interrupted_after_switching_auto_sync_off_is_resumed(
    auto_adapter: ArgoCDAdapter, argo: ArgoEmulator
) -> None:
    package = await auto_adapter.upload_package(helm_upload())
    ref = (await auto_adapter.create_deployment(spec(package, values={"v": 1}), ctx())).backend_ref
    argo.settle("web")
    await auto_adapter.update_deployment(ref, DeploymentChange(values={"v": 2}), ctx())
    argo.settle("web")
    step = ctx()
    # The first attempt switched auto-sync off, then its rollback call failed in transit.
    argo.fail_operation("ApplicationService_Rollback", 1, status=502, code=14)
    with pytest.raises(BackendUnavailable):
        await auto_adapter.rollback_deployment(ref, 0, step)
    # The failure path restored auto-sync; simulate a crash that left it off instead.
    app = argo.app("web")
    saved = app["spec"]["syncPolicy"]["automated"]
    del app["spec"]["syncPolicy"]["automated"]
    # What the interrupted attempt recorded: its step's idempotency stamp.
    key = idempotency_stamp(step.idempotency_key)
    progress = {"key": key, "id": 0, "automated": saved, "done": False}
    app["metadata"]["annotations"]["netweave.io/rollback"] = json.dumps(progress)
    info = await auto_adapter.rollback_deployment(ref, 0, step)
    assert info.status is DeploymentStatus.ROLLING_BACK
    assert argo.app("web")["spec"]["syncPolicy"]["automated"] == saved
    argo.settle("web")
    done = await auto_adapter.get_deployment(ref)
    assert (done.status, done.values) == (DeploymentStatus.DEPLOYED, {"v": 1})


async def test_failed_rollback_restores_auto_sync(
    auto_adapter: ArgoCDAdapter, argo: ArgoEmulator
) -> None:
    package = await auto_adapter.upload_package(helm_upload())
    ref = (await auto_adapter.create_deployment(spec(package, values={"v": 1}), ctx())).backend_ref
    argo.settle("web")
    await auto_adapter.update_deployment(ref, DeploymentChange(values={"v": 2}), ctx())
    argo.tick("web")  # auto-sync queued its operation: a rollback now must be refused
    with pytest.raises(Conflict, match="another operation is already in progress"):
        await auto_adapter.rollback_deployment(ref, 1, ctx())
    assert argo.app("web")["spec"]["syncPolicy"]["automated"]["enabled"] is True


# -- delete, missing apps -------------------------------------------------------------------


async def test_delete_cascades_with_the_configured_policy(
    adapter: ArgoCDAdapter, argo: ArgoEmulator
) -> None:
    ref = await deployed(adapter, argo)
    await adapter.delete_deployment(ref, ctx())
    (delete,) = calls(argo, "ApplicationService_Delete")
    assert dict(delete.query) == {
        "cascade": "true",
        "propagationPolicy": "foreground",
        "project": "default",
        "appNamespace": "argocd",
    }
    assert (await adapter.get_deployment(ref)).status is DeploymentStatus.DELETING
    argo.tick("web")
    with pytest.raises(NotFound):
        await adapter.get_deployment(ref)
    with pytest.raises(NotFound):
        await adapter.delete_deployment(ref, ctx())


async def test_missing_app_is_not_found_on_every_call(
    adapter: ArgoCDAdapter, argo: ArgoEmulator
) -> None:
    ref = "argocd/ghost"
    for call in (
        adapter.get_deployment(ref),
        adapter.update_deployment(ref, DeploymentChange(values={"a": 1}), ctx()),
        adapter.scale_deployment(ref, 2, ctx()),
        adapter.rollback_deployment(ref, 0, ctx()),
        adapter.get_history(ref),
        adapter.delete_deployment(ref, ctx()),
    ):
        with pytest.raises(NotFound):
            await call
    with pytest.raises(NotFound):
        async for _ in adapter.stream_logs(ref, LogOptions()):
            pass
    # Refs this adapter never made are NotFound too, without asking Argo CD.
    before = len(argo.requests)
    for junk in ("other-ns/web", "kit/probe", "Not A Name", ""):
        with pytest.raises(NotFound):
            await adapter.get_deployment(junk)
    assert len(argo.requests) == before


async def test_argo_answers_403_without_project_and_the_adapter_turns_it_into_404(
    adapter: ArgoCDAdapter, argo: ArgoEmulator
) -> None:
    # The trap itself: without a project Argo CD hides whether the app exists.
    response = await adapter.http.client.get("/api/v1/applications/ghost")
    assert (response.status_code, response.json()["code"]) == (403, 7)
    response = await adapter.http.client.get(
        "/api/v1/applications/ghost", params={"project": "default"}
    )
    assert (response.status_code, response.json()["code"]) == (404, 5)
    argo.requests.clear()  # the raw calls above omitted the project on purpose
    # A server that ignores the project on a call answers 403 for a missing app: the adapter
    # asks again with a project-scoped GET and reports the 404 it gets.
    argo.project_blind.add("ApplicationService_Delete")
    with pytest.raises(NotFound, match="no Argo CD Application 'ghost'"):
        await adapter.delete_deployment("argocd/ghost", ctx())
    gets = calls(argo, "ApplicationService_Get")
    assert [dict(g.query)["project"] for g in gets] == ["default"]


async def test_app_of_another_project_is_a_permission_problem_not_a_client_error(
    adapter: ArgoCDAdapter, argo: ArgoEmulator
) -> None:
    package = await adapter.upload_package(helm_upload())
    await adapter.create_deployment(spec(package), ctx())
    argo.app("web")["spec"]["project"] = "nf"
    # 403 with a project: Argo CD refuses this instance's credentials for that app. That is
    # the gateway's problem (502), never a 403 passed on to the API client.
    with pytest.raises(BackendError, match="denied") as info:
        await adapter.get_deployment("argocd/web")
    assert info.value.status == 502


# -- logs ---------------------------------------------------------------------------------------


async def test_logs_stream_from_argos_pod_logs(adapter: ArgoCDAdapter, argo: ArgoEmulator) -> None:
    ref = await deployed(adapter, argo)
    argo.logs[("argocd", "web")] = [
        {"podName": "web-0", "container": "app", "content": "started"},
        {"podName": "web-0", "container": "sidecar", "content": "proxy up"},
        {"podName": "web-1", "container": "app", "content": "ready"},
    ]
    lines = [line async for line in adapter.stream_logs(ref, LogOptions())]
    assert lines == ["[web-0] started", "[web-0] proxy up", "[web-1] ready"]
    lines = [
        line async for line in adapter.stream_logs(ref, LogOptions(container="app", tail_lines=1))
    ]
    assert lines == ["[web-1] ready"]
    query = dict(calls(argo, "ApplicationService_PodLogs2")[-1].query)
    assert query == {
        "project": "default",
        "appNamespace": "argocd",
        "follow": "false",
        "container": "app",
        "tailLines": "1",
    }


async def test_log_stream_error_is_mapped(adapter: ArgoCDAdapter, argo: ArgoEmulator) -> None:
    ref = await deployed(adapter, argo)
    argo.logs[("argocd", "web")] = [{"podName": "web-0", "container": "app", "content": "one"}]
    argo.log_error = {"grpc_code": 5, "http_code": 404, "message": 'pods "web-0" not found'}
    seen = []
    with pytest.raises(NotFound, match="not found"):
        async for line in adapter.stream_logs(ref, LogOptions(follow=True)):
            seen.append(line)
    assert seen == ["[web-0] one"]


async def test_followed_logs_have_no_read_timeout(argo: ArgoEmulator) -> None:
    import httpx
    from conftest import make_config

    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(dict(request.extensions["timeout"]))
        line = {"result": {"content": "hello", "podName": "web-0"}}
        return httpx.Response(200, content=(json.dumps(line) + "\n").encode())

    adapter = ArgoCDAdapter("argo", make_config(argo), transport=httpx.MockTransport(handler))
    try:
        follow = [line async for line in adapter.stream_logs("argocd/web", LogOptions(follow=True))]
        once = [line async for line in adapter.stream_logs("argocd/web", LogOptions())]
    finally:
        await adapter.stop()
    assert follow == once == ["[web-0] hello"]
    assert seen[0]["read"] is None
    assert seen[0]["connect"] == 5.0
    assert seen[1]["read"] == 30.0

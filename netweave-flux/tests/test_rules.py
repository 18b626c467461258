"""The status table, the CEL rules the schema validator skips, CRD validation, configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from netweave.errors import InvalidInput
from netweave.models import DeploymentStatus
from netweave.testing.k8s import KubernetesEmulator
from netweave_flux.adapter import FluxAdapter
from netweave_flux.config import FluxConfig
from netweave_flux.manifests import (
    check_helmrelease,
    digest_values,
    flat_substitutions,
    object_name,
)
from netweave_flux.status import InventoryEntry, judge, map_status
from pydantic import ValidationError


def obj(
    conds: list[tuple[str, str, str]],
    *,
    generation: int = 1,
    observed: int = 1,
    suspend: bool = False,
    deleting: bool = False,
    history: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "x", "namespace": "apps", "generation": generation}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    status: dict[str, Any] = {
        "observedGeneration": observed,
        "conditions": [
            {"type": t, "status": s, "reason": r, "message": f"{t} {r}"} for t, s, r in conds
        ],
    }
    if history is not None:
        status["history"] = history
    spec: dict[str, Any] = {"suspend": True} if suspend else {}
    return {"kind": "HelmRelease", "metadata": meta, "spec": spec, "status": status}


READY = ("Ready", "True", "UpgradeSucceeded")


@pytest.mark.parametrize(
    ("case", "expected", "backend_status"),
    [
        (obj([READY], deleting=True), DeploymentStatus.DELETING, "Deleting"),
        (obj([READY], suspend=True, generation=2), DeploymentStatus.SUSPENDED, "Suspended"),
        (obj([], observed=0), DeploymentStatus.PENDING, None),
        (
            obj([("Stalled", "True", "RetriesExceeded"), ("Ready", "False", "UpgradeFailed")]),
            DeploymentStatus.FAILED,
            "RetriesExceeded",
        ),
        (
            obj(
                [("Reconciling", "True", "Progressing"), ("Ready", "Unknown", "Progressing")],
                history=[{"version": 3, "status": "pending-rollback"}],
            ),
            DeploymentStatus.ROLLING_BACK,
            "Progressing",
        ),
        (
            obj([("Reconciling", "True", "Progressing"), ("Ready", "Unknown", "Progressing")]),
            DeploymentStatus.DEPLOYING,
            "Progressing",
        ),
        (
            obj(
                [
                    ("Ready", "False", "UpgradeFailed"),
                    ("Remediated", "True", "RollbackSucceeded"),
                ]
            ),
            DeploymentStatus.FAILED,
            "UpgradeFailed",
        ),
        (obj([("Ready", "False", "ArtifactFailed")]), DeploymentStatus.FAILED, "ArtifactFailed"),
        (obj([READY]), DeploymentStatus.DEPLOYED, "UpgradeSucceeded"),
        (obj([READY], generation=2, observed=1), DeploymentStatus.DEPLOYING, "UpgradeSucceeded"),
        (obj([("Ready", "Bogus", "Whatever")]), DeploymentStatus.UNKNOWN, "Whatever"),
        (obj([("Released", "True", "InstallSucceeded")]), DeploymentStatus.UNKNOWN, None),
    ],
)
def test_status_table(
    case: dict[str, Any], expected: DeploymentStatus, backend_status: str | None
) -> None:
    mapped = map_status(case)
    assert mapped.status is expected
    assert mapped.backend_status == backend_status


def test_remediated_failure_names_the_remediation() -> None:
    mapped = map_status(
        obj([("Ready", "False", "UpgradeFailed"), ("Remediated", "True", "RollbackSucceeded")])
    )
    assert "remediated: RollbackSucceeded" in (mapped.message or "")


def test_stalled_failure_carries_the_ready_message() -> None:
    # Stalled says Flux gave up; the release's own error is in Ready.
    mapped = map_status(
        obj([("Stalled", "True", "RetriesExceeded"), ("Ready", "False", "UpgradeFailed")])
    )
    assert mapped.message == "Stalled RetriesExceeded: Ready UpgradeFailed"


def test_suspended_keeps_the_last_state_in_the_message() -> None:
    mapped = map_status(obj([("Ready", "False", "InstallFailed")], suspend=True, generation=2))
    assert mapped.status is DeploymentStatus.SUSPENDED
    assert "last state FAILED" in (mapped.message or "")


def _hr(**spec: Any) -> dict[str, Any]:
    return {"kind": "HelmRelease", "spec": {"interval": "5m", **spec}}


def test_cel_exactly_one_of_chart_and_chart_ref() -> None:
    chart = {"spec": {"chart": "c", "sourceRef": {"kind": "HelmRepository", "name": "r"}}}
    ref = {"kind": "OCIRepository", "name": "r"}
    check_helmrelease(_hr(chart=chart))
    check_helmrelease(_hr(chartRef=ref))
    with pytest.raises(InvalidInput, match="exactly one of"):
        check_helmrelease(_hr(chart=chart, chartRef=ref))
    with pytest.raises(InvalidInput, match="exactly one of"):
        check_helmrelease(_hr())
    with pytest.raises(InvalidInput, match="RetryOnFailure"):
        check_helmrelease(
            _hr(
                chartRef=ref,
                install={"strategy": {"name": "RemediateOnFailure", "retryInterval": "1m"}},
            )
        )


def test_the_emulator_skips_cel_so_the_adapter_must_check(emulator: KubernetesEmulator) -> None:
    both = {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": "both", "namespace": "apps"},
        "spec": {
            "interval": "5m",
            "chart": {"spec": {"chart": "c", "sourceRef": {"kind": "HelmRepository", "name": "r"}}},
            "chartRef": {"kind": "OCIRepository", "name": "r"},
        },
    }
    # A schema-only validator accepts it; a real API server would not (CEL).
    emulator.create(both)
    with pytest.raises(InvalidInput):
        check_helmrelease(both)


async def test_crd_schema_violations_are_invalid_input(kubeconfig: Path) -> None:
    from conftest import make_adapter

    adapter = make_adapter(kubeconfig)
    bad = {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": "bad", "namespace": "apps"},
        "spec": {"interval": "soon", "chartRef": {"kind": "OCIRepository", "name": "r"}},
    }
    with pytest.raises(InvalidInput, match="refused"):
        await adapter.kube.create(bad)
    adapter.kube.close()


async def test_unknown_fields_are_refused_not_pruned(kubeconfig: Path) -> None:
    from conftest import make_adapter

    adapter = make_adapter(kubeconfig)
    drifted = {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": "drift", "namespace": "apps"},
        "spec": {
            "interval": "5m",
            "chartRef": {"kind": "OCIRepository", "name": "r"},
            "notAField": True,
        },
    }
    with pytest.raises(InvalidInput, match="notAField"):
        await adapter.kube.create(drifted)
    adapter.kube.close()


def test_kustomization_values_are_flat_substitutions() -> None:
    assert flat_substitutions({"replicas": 3, "debug": True, "env": "prod", "ratio": 0.5}) == {
        "replicas": "3",
        "debug": "true",
        "env": "prod",
        "ratio": "0.5",
    }
    with pytest.raises(InvalidInput, match="flat values"):
        flat_substitutions({"a": {"b": 1}})
    with pytest.raises(InvalidInput, match="variable names"):
        flat_substitutions({"not-a-var": "x"})


def test_object_names_are_dns_names_and_distinct() -> None:
    assert object_name("podinfo", "6.5.0") == "podinfo-6.5.0"
    odd = object_name("My_Chart", "1.0.0+build.1")
    assert odd.startswith("my-chart-1.0.0-build.1-") and len(odd) <= 63
    assert object_name("My_Chart", "1.0.0+build.1") != object_name("my-chart", "1.0.0-build.1")
    assert len(object_name("x" * 80, "1.0.0")) <= 63


def test_digest_ignores_key_order() -> None:
    assert digest_values({"a": 1, "b": {"c": 2}}) == digest_values({"b": {"c": 2}, "a": 1})
    assert digest_values({"a": 1}) != digest_values({"a": 2})


def test_configuration() -> None:
    cfg = FluxConfig.model_validate(
        {
            "mode": "git",
            "git": {"url": "https://user:secret@git.example.org/fleet.git", "path": "/a/b/"},
            "scaleValuePath": "web.replicas",
        }
    )
    assert cfg.git is not None and cfg.git.path == "a/b"
    assert "secret" not in repr(cfg)
    with pytest.raises(ValidationError, match="needs a 'git' section"):
        FluxConfig.model_validate({"mode": "git"})
    with pytest.raises(ValidationError):
        FluxConfig.model_validate({"interval": "five minutes"})
    with pytest.raises(ValidationError):
        FluxConfig.model_validate({"git": {"url": "x", "path": "../escape"}, "mode": "git"})
    with pytest.raises(ValidationError):
        FluxConfig.model_validate({"unknownKey": 1})
    assert FluxAdapter.info().type == "flux"


async def test_inline_kubeconfig_and_health(emulator: KubernetesEmulator) -> None:
    adapter = FluxAdapter(
        "inline",
        FluxConfig.model_validate(
            {"cluster": {"kubeconfigContent": emulator.kubeconfig(), "connectRetries": 0}}
        ),
    )
    await adapter.start()
    health = await adapter.health()
    assert health.healthy is True
    assert health.details["kubernetes"] == "v1.35.0"
    assert await adapter.list_packages() == []
    await adapter.stop()


def test_judged_workloads_report_the_claims_and_labels_of_their_pods() -> None:
    # What the ETSI face links a VNFC by (storageResourceIds, vnfLinkPorts): from the live object.
    web = InventoryEntry("apps", "web", "apps", "Deployment", "v1")
    gone = InventoryEntry("apps", "old", "apps", "Deployment", "v1")
    live = {
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "apps"},
        "spec": {
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [{"name": "c", "image": "i"}],
                    "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "web-data"}}],
                },
            }
        },
    }
    resources, _ = judge([web, gone], {web: live, gone: None})
    assert resources[0].claims == ["web-data"] and resources[0].pod_labels == {"app": "web"}
    assert resources[0].selector is None
    # A deleted object says nothing of its pods.
    assert resources[1].claims is None and resources[1].pod_labels is None
    assert resources[0].model_dump(by_alias=True, exclude_none=True)["podLabels"] == {"app": "web"}

"""The chart that runs netweave itself (deploy/helm/netweave): linted, rendered and installed by
the real Helm SDK on the Kubernetes API emulator, and checked against what the emulator holds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from netweave.testing.k8s import KubernetesEmulator

helm = pytest.importorskip("helm_python")

CHART = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "netweave"
NAMESPACE = "netweave"
RELEASE = "nw"
NAME = "nw-netweave"
SELECTOR = {"app.kubernetes.io/name": "netweave", "app.kubernetes.io/instance": RELEASE}
#: Two replicas on PostgreSQL (URL in an existing Secret) sharing a ReadWriteMany data volume.
HA_VALUES: dict[str, Any] = {
    "replicaCount": 2,
    "postgresql": {"existingSecret": "netweave-db", "existingSecretKey": "url"},
    "apiToken": {"existingSecret": "netweave-token"},
    "persistence": {"enabled": True, "accessMode": "ReadWriteMany"},
    "networkPolicy": {"enabled": True},
}
#: What the emulator gets: also a ServiceMonitor (the test installs its CRD first).
INSTALL_VALUES: dict[str, Any] = {**HA_VALUES, "serviceMonitor": {"enabled": True}}
SERVICE_MONITOR_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "servicemonitors.monitoring.coreos.com"},
    "spec": {
        "group": "monitoring.coreos.com",
        "scope": "Namespaced",
        "names": {
            "plural": "servicemonitors",
            "singular": "servicemonitor",
            "kind": "ServiceMonitor",
        },
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                    }
                },
            }
        ],
    },
}


@pytest.fixture
def offline() -> Iterator[Any]:
    """A Helm configuration for client-side renders (nothing listens at that address)."""
    config = helm.Config(
        kube_apiserver="http://127.0.0.1:1", storage_driver="memory", namespace=NAMESPACE
    )
    yield config
    config.close()


def _render(config: Any, values: dict[str, Any]) -> list[dict[str, Any]]:
    import yaml

    release = config.install(str(CHART), RELEASE, values, namespace=NAMESPACE, dry_run="client")
    return [doc for doc in yaml.safe_load_all(release["manifest"]) if doc]


def test_the_chart_passes_helm_lint_strict() -> None:
    report = helm.lint(str(CHART), strict=True, values=HA_VALUES)
    assert report["errors"] == []
    # Only Helm's informational note about a missing icon is left.
    assert [m for m in report["messages"] if m["severity"] > 1] == []


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"replicaCount": 0}, "/replicaCount"),
        ({"replicaCount": "two"}, "/replicaCount"),
        ({"replicaCount": 1, "imagee": {}}, "additional properties 'imagee'"),
        ({"replicaCount": 1, "postgresql": {"url": "mysql://db/netweave"}}, "/postgresql/url"),
        ({"replicaCount": 1, "rbac": {"scope": "everywhere"}}, "/rbac/scope"),
        (
            {"replicaCount": 1, "rbac": {"scope": "namespaces", "namespaces": []}},
            "/rbac/namespaces",
        ),
        ({"replicaCount": 1, "rbac": {"namespaces": ["Not_A_Name"]}}, "/rbac/namespaces/0"),
        ({"replicaCount": 1, "podAntiAffinity": "always"}, "/podAntiAffinity"),
        ({"replicaCount": 1, "readinessProbe": {"httpGet": {"path": "readyz", "port": 1}}}, "path"),
        ({"replicaCount": 1, "config": {"store": {"url": "postgresql://x"}}}, "/config/store"),
        ({"replicaCount": 1, "serviceMonitor": {"interval": "often"}}, "/serviceMonitor/interval"),
    ],
)
def test_the_schema_rejects_bad_values(offline: Any, values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.HelmError) as raised:
        _render(offline, values)
    text = str(raised.value)
    assert "don't meet the specifications of the schema" in text
    assert message in text


@pytest.mark.parametrize(
    ("values", "message"),
    [
        # Several replicas on SQLite would each have their own store.
        ({"replicaCount": 2}, "replicaCount > 1 needs PostgreSQL"),
        # Several replicas each with a private local chart repository would disagree.
        ({**HA_VALUES, "persistence": {"enabled": False}}, "storage kind local"),
        ({**HA_VALUES, "persistence": {"enabled": True, "accessMode": "ReadWriteOnce"}}, "local"),
        # No Prometheus Operator in the cluster (a client-side render knows of no CRDs).
        (INSTALL_VALUES, "needs the Prometheus Operator's CRDs"),
    ],
)
def test_the_chart_refuses_setups_that_cannot_work(
    offline: Any, values: dict[str, Any], message: str
) -> None:
    with pytest.raises(helm.HelmError, match="execution error") as raised:
        _render(offline, values)
    assert message in str(raised.value)


def test_a_remote_chart_storage_needs_no_shared_volume(offline: Any) -> None:
    oci = {"kind": "oci", "url": "oci://registry.example/charts"}
    docs = _render(
        offline,
        {
            **HA_VALUES,
            "persistence": {"enabled": False},
            "config": {
                "plugins": {"dms": [{"name": "h", "type": "helm", "config": {"storage": oci}}]}
            },
        },
    )
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 2
    volume = next(
        v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == "data"
    )
    assert volume == {"name": "data", "emptyDir": {}}


def test_namespace_scope_grants_roles_only_in_the_named_namespaces(offline: Any) -> None:
    docs = _render(
        offline, {"replicaCount": 1, "rbac": {"scope": "namespaces", "namespaces": ["ran", "core"]}}
    )
    kinds = {(d["kind"], d["metadata"].get("namespace")) for d in docs}
    assert ("Role", "ran") in kinds and ("Role", "core") in kinds
    assert ("RoleBinding", "ran") in kinds and ("RoleBinding", "core") in kinds
    assert not {k for k, _ in kinds} & {"ClusterRole", "ClusterRoleBinding"}


def test_autoscaling_leaves_the_replica_count_to_the_hpa(offline: Any) -> None:
    docs = _render(
        offline,
        {**HA_VALUES, "autoscaling": {"enabled": True}},
    )
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    assert "replicas" not in deployment["spec"]
    hpa = next(d for d in docs if d["kind"] == "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": NAME,
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)


def _rules_for(rules: list[dict[str, Any]], group: str, resource: str) -> set[str]:
    verbs: set[str] = set()
    for rule in rules:
        if group in rule.get("apiGroups", []) and resource in rule.get("resources", []):
            verbs |= set(rule["verbs"])
    return verbs


def test_the_chart_installs_on_the_emulator_with_two_replicas(
    k8s_emulator: KubernetesEmulator,
) -> None:
    from netweave.api.controllers.health import healthz, readyz

    k8s_emulator.install_crd(SERVICE_MONITOR_CRD)
    config = k8s_emulator.helm_config(storage_driver="secret", namespace=NAMESPACE)
    try:
        release = config.install(
            str(CHART), RELEASE, INSTALL_VALUES, namespace=NAMESPACE, create_namespace=True
        )
    finally:
        config.close()
    assert (release["status"], release["revision"]) == ("deployed", 1), release
    assert "runs as 2 replica(s)" in release["notes"]

    # Helm's own record of the release, in a Secret of the namespace (what the RBAC must allow).
    stored = k8s_emulator.list("v1", "Secret", NAMESPACE)
    assert f"sh.helm.release.v1.{RELEASE}.v1" in {s["metadata"]["name"] for s in stored}
    # The chart creates no Secret when every secret comes from an existing one.
    assert k8s_emulator.get("v1", "Secret", NAME, NAMESPACE) is None

    deployment = k8s_emulator.get("apps/v1", "Deployment", NAME, NAMESPACE)
    assert deployment is not None
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["template"]["metadata"]["labels"] == SELECTOR
    anti = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert anti[0]["podAffinityTerm"]["labelSelector"] == {"matchLabels": SELECTOR}
    assert anti[0]["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    # The probes hit the gateway's real health routes.
    assert container["livenessProbe"]["httpGet"]["path"] in healthz.paths
    assert container["readinessProbe"]["httpGet"]["path"] in readyz.paths
    assert container["readinessProbe"]["httpGet"]["port"] == "http"
    env = {e["name"]: e for e in container["env"]}
    assert env["NETWEAVE_STORE_URL"]["valueFrom"] == {
        "secretKeyRef": {"name": "netweave-db", "key": "url"}
    }
    assert env["NETWEAVE_API_TOKEN"]["valueFrom"] == {
        "secretKeyRef": {"name": "netweave-token", "key": "token"}
    }
    assert env["NETWEAVE_CONFIG"]["value"] == "/etc/netweave/netweave.yaml"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"] == {"claimName": NAME}
    pvc = k8s_emulator.get("v1", "PersistentVolumeClaim", NAME, NAMESPACE)
    assert pvc is not None and pvc["spec"]["accessModes"] == ["ReadWriteMany"]

    config_map = k8s_emulator.get("v1", "ConfigMap", NAME, NAMESPACE)
    assert config_map is not None and "type: helm" in config_map["data"]["netweave.yaml"]
    service = k8s_emulator.get("v1", "Service", NAME, NAMESPACE)
    assert service is not None and service["spec"]["selector"] == SELECTOR
    pdb = k8s_emulator.get("policy/v1", "PodDisruptionBudget", NAME, NAMESPACE)
    assert pdb is not None and pdb["spec"]["maxUnavailable"] == 1
    policy = k8s_emulator.get("networking.k8s.io/v1", "NetworkPolicy", NAME, NAMESPACE)
    assert policy is not None and policy["spec"]["podSelector"] == {"matchLabels": SELECTOR}
    monitor = k8s_emulator.get("monitoring.coreos.com/v1", "ServiceMonitor", NAME, NAMESPACE)
    assert monitor is not None and monitor["spec"]["endpoints"][0]["path"] == "/metrics"

    account = k8s_emulator.get("v1", "ServiceAccount", NAME, NAMESPACE)
    assert account is not None and pod["serviceAccountName"] == NAME
    role = k8s_emulator.get("rbac.authorization.k8s.io/v1", "ClusterRole", NAME)
    assert role is not None
    rules = role["rules"]
    # Helm's release storage, the sample chart's kinds, namespaces for createNamespace, logs.
    for verb in ("get", "list", "create", "update", "delete"):
        assert verb in _rules_for(rules, "", "secrets")
        assert verb in _rules_for(rules, "apps", "deployments")
        assert verb in _rules_for(rules, "", "configmaps")
    assert {"get", "create"} <= _rules_for(rules, "", "namespaces")
    assert "delete" not in _rules_for(rules, "", "namespaces")
    assert "get" in _rules_for(rules, "", "pods/log")
    assert _rules_for(rules, "", "nodes") == set()
    binding = k8s_emulator.get("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", NAME)
    assert binding is not None
    assert binding["roleRef"]["name"] == NAME
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}]

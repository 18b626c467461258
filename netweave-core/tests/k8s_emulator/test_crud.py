"""CRUD semantics through the official ``kubernetes`` client."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from netweave.testing.k8s import KubernetesEmulator

from .conftest import Http


def _cm(name: str, labels: dict[str, str] | None = None, **data: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels or {}}, "data": data}


def _deployment(name: str, replicas: int = 1, image: str = "nginx:1.27") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": image}]},
            },
        },
    }


def test_create_get_replace_delete_configmap(kube: client.ApiClient) -> None:
    core = client.CoreV1Api(kube)
    created = core.create_namespaced_config_map("default", _cm("one", k="v"))
    assert created.metadata.uid
    assert created.metadata.creation_timestamp is not None
    assert int(created.metadata.resource_version) > 0
    got = core.read_namespaced_config_map("one", "default")
    assert got.data == {"k": "v"}
    got.data["k"] = "w"
    replaced = core.replace_namespaced_config_map("one", "default", got)
    assert replaced.data == {"k": "w"}
    assert int(replaced.metadata.resource_version) > int(created.metadata.resource_version)
    assert replaced.metadata.uid == created.metadata.uid
    status = core.delete_namespaced_config_map("one", "default")
    # kubernetes 37 returns the Status body as a dict here.
    status = status if isinstance(status, dict) else status.to_dict()
    assert status["status"] == "Success"
    assert status["details"]["uid"] == created.metadata.uid
    with pytest.raises(ApiException) as exc:
        core.read_namespaced_config_map("one", "default")
    assert exc.value.status == 404


def test_errors_are_status_objects(kube: client.ApiClient) -> None:
    core = client.CoreV1Api(kube)
    core.create_namespaced_config_map("default", _cm("dup"))
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_config_map("default", _cm("dup"))
    assert exc.value.status == 409
    body = json.loads(exc.value.body)
    assert body["kind"] == "Status"
    assert body["reason"] == "AlreadyExists"
    assert body["message"] == 'configmaps "dup" already exists'
    with pytest.raises(ApiException) as exc:
        core.read_namespaced_config_map("missing", "default")
    body = json.loads(exc.value.body)
    assert (exc.value.status, body["reason"], body["details"]["name"]) == (
        404,
        "NotFound",
        "missing",
    )
    assert body["message"] == 'configmaps "missing" not found'


def test_stale_resource_version_conflicts(kube: client.ApiClient) -> None:
    core = client.CoreV1Api(kube)
    first = core.create_namespaced_config_map("default", _cm("c", k="1"))
    fresh = core.read_namespaced_config_map("c", "default")
    fresh.data = {"k": "2"}
    core.replace_namespaced_config_map("c", "default", fresh)
    first.data = {"k": "3"}
    with pytest.raises(ApiException) as exc:
        core.replace_namespaced_config_map("c", "default", first)
    assert exc.value.status == 409
    assert json.loads(exc.value.body)["reason"] == "Conflict"
    assert core.read_namespaced_config_map("c", "default").data == {"k": "2"}


def test_generate_name_and_required_name(kube: client.ApiClient) -> None:
    core = client.CoreV1Api(kube)
    made = core.create_namespaced_config_map("default", {"metadata": {"generateName": "gen-"}})
    assert made.metadata.name.startswith("gen-")
    assert len(made.metadata.name) == len("gen-") + 5
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_config_map("default", {"metadata": {}})
    assert exc.value.status == 422


def test_namespace_mismatch_and_missing_namespace(kube: client.ApiClient) -> None:
    core = client.CoreV1Api(kube)
    body = {"metadata": {"name": "x", "namespace": "other"}}
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_config_map("default", body)
    assert exc.value.status == 400
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_config_map("nowhere", {"metadata": {"name": "x"}})
    assert exc.value.status == 404
    assert 'namespaces "nowhere" not found' in json.loads(exc.value.body)["message"]


def test_label_selectors(kube: client.ApiClient) -> None:
    core = client.CoreV1Api(kube)
    core.create_namespaced_config_map("default", _cm("a", {"app": "web", "tier": "front"}))
    core.create_namespaced_config_map("default", _cm("b", {"app": "web", "tier": "back"}))
    core.create_namespaced_config_map("default", _cm("c", {"app": "db"}))
    core.create_namespaced_config_map("default", _cm("d"))

    def names(selector: str) -> list[str]:
        items = core.list_namespaced_config_map("default", label_selector=selector).items
        return sorted(i.metadata.name for i in items)

    assert names("app=web") == ["a", "b"]
    assert names("app==web,tier=back") == ["b"]
    assert names("app!=web") == ["c", "d"]
    assert names("app in (web,db)") == ["a", "b", "c"]
    assert names("app notin (web)") == ["c", "d"]
    assert names("tier") == ["a", "b"]
    assert names("!tier") == ["c", "d"]
    assert names("app in (web, db),!tier") == ["c"]


def test_field_selectors_and_all_namespaces(kube: client.ApiClient) -> None:
    core = client.CoreV1Api(kube)
    core.create_namespace({"metadata": {"name": "other"}})
    core.create_namespaced_config_map("default", _cm("x"))
    core.create_namespaced_config_map("other", _cm("x"))
    core.create_namespaced_config_map("other", _cm("y"))
    everywhere = core.list_config_map_for_all_namespaces(field_selector="metadata.name=x").items
    assert sorted(i.metadata.namespace for i in everywhere) == ["default", "other"]
    only = core.list_config_map_for_all_namespaces(
        field_selector="metadata.namespace=other,metadata.name!=x"
    )
    assert [i.metadata.name for i in only.items] == ["y"]
    secret = {
        "metadata": {"name": "tls"},
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": "", "tls.key": ""},
    }
    core.create_namespaced_secret("other", secret)
    core.create_namespaced_secret("other", {"metadata": {"name": "plain"}})
    typed = core.list_namespaced_secret("other", field_selector="type=kubernetes.io/tls").items
    assert [s.metadata.name for s in typed] == ["tls"]


def test_pagination_with_limit_and_continue(kube: client.ApiClient) -> None:
    core = client.CoreV1Api(kube)
    for i in range(7):
        core.create_namespaced_config_map("default", _cm(f"p{i}"))
    seen: list[str] = []
    token = None
    pages = 0
    for _ in range(10):  # bounded: 7 items in pages of 3
        page = core.list_namespaced_config_map("default", limit=3, _continue=token)
        seen += [i.metadata.name for i in page.items]
        pages += 1
        token = page.metadata._continue
        if not token:
            break
    assert pages == 3
    assert seen == [f"p{i}" for i in range(7)]


def test_cluster_scoped_namespace_lifecycle(kube: client.ApiClient) -> None:
    core = client.CoreV1Api(kube)
    ns = core.create_namespace({"metadata": {"name": "team-a"}})
    assert ns.status.phase == "Active"
    core.create_namespaced_config_map("team-a", _cm("inside"))
    core.delete_namespace("team-a")
    with pytest.raises(ApiException) as exc:
        core.read_namespace("team-a")
    assert exc.value.status == 404
    assert core.list_namespaced_config_map("team-a").items == []


def test_namespace_with_finalized_content_stays_terminating(kube: client.ApiClient) -> None:
    core = client.CoreV1Api(kube)
    core.create_namespace({"metadata": {"name": "sticky"}})
    core.create_namespaced_config_map(
        "sticky", {"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}
    )
    core.delete_namespace("sticky")
    ns = core.read_namespace("sticky")
    assert ns.status.phase == "Terminating"
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_config_map("sticky", _cm("late"))
    assert exc.value.status == 403
    core.patch_namespaced_config_map("held", "sticky", {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException) as exc:
        core.read_namespace("sticky")
    assert exc.value.status == 404


def test_finalizers_and_deletion_timestamp(kube: client.ApiClient) -> None:
    core = client.CoreV1Api(kube)
    core.create_namespaced_config_map(
        "default", {"metadata": {"name": "f", "finalizers": ["example.com/keep"]}}
    )
    core.delete_namespaced_config_map("f", "default")
    held = core.read_namespaced_config_map("f", "default")
    assert held.metadata.deletion_timestamp is not None
    assert held.metadata.finalizers == ["example.com/keep"]
    held.metadata.finalizers = []
    core.replace_namespaced_config_map("f", "default", held)
    with pytest.raises(ApiException) as exc:
        core.read_namespaced_config_map("f", "default")
    assert exc.value.status == 404


def test_delete_collection_by_label(kube: client.ApiClient) -> None:
    core = client.CoreV1Api(kube)
    for name, app in (("a", "x"), ("b", "x"), ("c", "y")):
        core.create_namespaced_config_map("default", _cm(name, {"app": app}))
    core.delete_collection_namespaced_config_map("default", label_selector="app=x")
    left = [i.metadata.name for i in core.list_namespaced_config_map("default").items]
    assert left == ["c"]


def test_dry_run_persists_nothing(kube: client.ApiClient) -> None:
    core = client.CoreV1Api(kube)
    out = core.create_namespaced_config_map("default", _cm("dry"), dry_run="All")
    assert out.metadata.name == "dry"
    with pytest.raises(ApiException):
        core.read_namespaced_config_map("dry", "default")
    core.create_namespaced_config_map("default", _cm("kept"))
    core.delete_namespaced_config_map("kept", "default", dry_run="All")
    assert core.read_namespaced_config_map("kept", "default").metadata.name == "kept"


def test_secret_string_data_is_folded(kube: client.ApiClient) -> None:
    core = client.CoreV1Api(kube)
    s = core.create_namespaced_secret(
        "default", {"metadata": {"name": "s"}, "stringData": {"user": "admin"}}
    )
    assert s.data == {"user": "YWRtaW4="}
    assert s.type == "Opaque"
    assert s.string_data is None


def test_generation_status_subresource_and_scale(
    kube: client.ApiClient, k8s_emulator: KubernetesEmulator
) -> None:
    apps = client.AppsV1Api(kube)
    k8s_emulator.controllers.unregister(
        "Deployment", group="apps"
    )  # keep status under test control
    d = apps.create_namespaced_deployment("default", _deployment("web", 2))
    assert d.metadata.generation == 1
    assert d.status is None or d.status.replicas is None
    # Writing status through the main resource is ignored...
    d.status = client.V1DeploymentStatus(replicas=9)
    d.metadata.labels["touched"] = "yes"
    d = apps.replace_namespaced_deployment("web", "default", d)
    assert d.metadata.generation == 1  # metadata-only change
    assert d.status is None or d.status.replicas is None
    # ...only the status subresource changes it, without bumping generation.
    d.status = client.V1DeploymentStatus(replicas=9)
    d = apps.replace_namespaced_deployment_status("web", "default", d)
    assert d.status.replicas == 9
    assert d.metadata.generation == 1
    d.spec.template.spec.containers[0].image = "nginx:1.28"
    d = apps.replace_namespaced_deployment("web", "default", d)
    assert d.metadata.generation == 2
    assert d.status.replicas == 9
    scale = apps.read_namespaced_deployment_scale("web", "default")
    assert (scale.spec.replicas, scale.status.replicas, scale.status.selector) == (2, 9, "app=web")
    apps.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 5}})
    assert apps.read_namespaced_deployment("web", "default").spec.replicas == 5
    assert apps.read_namespaced_deployment("web", "default").metadata.generation == 3


def test_owner_references_are_garbage_collected(kube: client.ApiClient) -> None:
    core = client.CoreV1Api(kube)
    owner = core.create_namespaced_config_map("default", _cm("owner"))
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}
    core.create_namespaced_config_map(
        "default", {"metadata": {"name": "child", "ownerReferences": [ref]}}
    )
    core.create_namespaced_config_map(
        "default", {"metadata": {"name": "orphan", "ownerReferences": [ref]}}
    )
    core.delete_namespaced_config_map("owner", "default")
    assert [i.metadata.name for i in core.list_namespaced_config_map("default").items] == []
    owner2 = core.create_namespaced_config_map("default", _cm("owner2"))
    ref2 = dict(ref, name="owner2", uid=owner2.metadata.uid)
    core.create_namespaced_config_map(
        "default", {"metadata": {"name": "kept", "ownerReferences": [ref2]}}
    )
    core.delete_namespaced_config_map("owner2", "default", propagation_policy="Orphan")
    assert [i.metadata.name for i in core.list_namespaced_config_map("default").items] == ["kept"]


def test_builtin_kinds_charts_contain_round_trip(kube: client.ApiClient, http: Http) -> None:
    objects = [
        (
            "/api/v1/namespaces/default/services",
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "svc"},
                "spec": {"ports": [{"port": 80}], "selector": {"app": "x"}},
            },
        ),
        (
            "/api/v1/namespaces/default/serviceaccounts",
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa"}},
        ),
        (
            "/api/v1/namespaces/default/persistentvolumeclaims",
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": "pvc"},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            },
        ),
        (
            "/apis/networking.k8s.io/v1/namespaces/default/ingresses",
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "Ingress",
                "metadata": {"name": "ing"},
                "spec": {"rules": [{"host": "a.example"}]},
            },
        ),
        (
            "/apis/networking.k8s.io/v1/namespaces/default/networkpolicies",
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": "np"},
                "spec": {"podSelector": {}},
            },
        ),
        (
            "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": "r"},
                "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
            },
        ),
        (
            "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "rb"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
                "subjects": [{"kind": "ServiceAccount", "name": "sa", "namespace": "default"}],
            },
        ),
        (
            "/apis/rbac.authorization.k8s.io/v1/clusterroles",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": "cr"},
                "rules": [],
            },
        ),
        (
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": "crb"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "cr",
                },
            },
        ),
        (
            "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers",
            {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": "hpa"},
                "spec": {
                    "maxReplicas": 3,
                    "scaleTargetRef": {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": "web",
                    },
                },
            },
        ),
        (
            "/apis/policy/v1/namespaces/default/poddisruptionbudgets",
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": {"name": "pdb"},
                "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "x"}}},
            },
        ),
        (
            "/apis/batch/v1/namespaces/default/cronjobs",
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "metadata": {"name": "cj"},
                "spec": {
                    "schedule": "*/5 * * * *",
                    "jobTemplate": {
                        "spec": {
                            "template": {
                                "spec": {
                                    "restartPolicy": "Never",
                                    "containers": [{"name": "c", "image": "busybox"}],
                                }
                            }
                        }
                    },
                },
            },
        ),
        (
            "/api/v1/namespaces/default/events",
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": "ev"},
                "involvedObject": {"kind": "Pod", "name": "p"},
                "reason": "Test",
            },
        ),
    ]
    for path, obj in objects:
        code, out = http.json("POST", path, obj)
        assert code == 201, (path, out)
        assert out["metadata"]["uid"]
        name = obj["metadata"]["name"]
        code, got = http.json("GET", f"{path}/{name}")
        assert code == 200
        assert got["kind"] == obj["kind"]
    svc = client.CoreV1Api(kube).read_namespaced_service("svc", "default")
    assert svc.spec.cluster_ip == "127.0.0.1"  # loopback only, by design
    assert svc.spec.ports[0].target_port == 80
    assert svc.spec.ports[0].protocol == "TCP"


def test_namespace_status_and_finalize_subresources(http: Http) -> None:
    code, ns = http.json("POST", "/api/v1/namespaces", {"metadata": {"name": "fin"}})
    assert code == 201
    assert ns["spec"]["finalizers"] == ["kubernetes"]
    ns["spec"]["finalizers"] = []
    ns["metadata"]["labels"] = {"ignored": "by-finalize"}
    code, out = http.json("PUT", "/api/v1/namespaces/fin/finalize", ns)
    assert code == 200
    assert out["spec"]["finalizers"] == []
    assert "labels" not in out["metadata"]
    # The main resource does not change spec.finalizers.
    out["spec"]["finalizers"] = ["kubernetes"]
    code, again = http.json("PUT", "/api/v1/namespaces/fin", out)
    assert code == 200
    assert again["spec"]["finalizers"] == []

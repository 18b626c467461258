"""JSON, merge, strategic-merge and server-side-apply patches."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from .conftest import Http

CM = "/api/v1/namespaces/default/configmaps"
DEPLOY = "/apis/apps/v1/namespaces/default/deployments"


def _deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}]},
                        {"name": "sidecar", "image": "side:1"},
                    ]
                },
            },
        },
    }


def test_json_patch(http: Http) -> None:
    http.json("POST", CM, {"metadata": {"name": "j"}, "data": {"a": "1", "b": "2"}})
    ops = [
        {"op": "replace", "path": "/data/a", "value": "10"},
        {"op": "remove", "path": "/data/b"},
        {"op": "add", "path": "/data/c", "value": "3"},
        {"op": "test", "path": "/data/c", "value": "3"},
    ]
    code, out = http.json("PATCH", f"{CM}/j", ops, content_type="application/json-patch+json")
    assert code == 200
    assert out["data"] == {"a": "10", "c": "3"}
    code, out = http.json(
        "PATCH",
        f"{CM}/j",
        [{"op": "test", "path": "/data/a", "value": "nope"}],
        content_type="application/json-patch+json",
    )
    assert code == 422
    # A JSON object is not a JSON patch: a real server answers 400.
    code, out = http.json(
        "PATCH", f"{CM}/j", {"data": {"a": "x"}}, content_type="application/json-patch+json"
    )
    assert code == 400
    assert "jsonpatch.Patch" in out["message"]


def test_merge_patch_removes_with_null(http: Http) -> None:
    http.json(
        "POST", CM, {"metadata": {"name": "m", "labels": {"x": "1", "y": "2"}}, "data": {"a": "1"}}
    )
    code, out = http.json(
        "PATCH",
        f"{CM}/m",
        {"metadata": {"labels": {"x": None, "z": "3"}}, "data": {"b": "2"}},
        content_type="application/merge-patch+json",
    )
    assert code == 200
    assert out["metadata"]["labels"] == {"y": "2", "z": "3"}
    assert out["data"] == {"a": "1", "b": "2"}


def test_patch_of_missing_object_is_404(http: Http) -> None:
    code, out = http.json(
        "PATCH", f"{CM}/ghost", {"data": {}}, content_type="application/merge-patch+json"
    )
    assert code == 404
    assert out["reason"] == "NotFound"


def test_strategic_merge_merges_containers_by_name(kube: client.ApiClient) -> None:
    apps = client.AppsV1Api(kube)
    apps.create_namespaced_deployment("default", _deployment())
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "app", "image": "app:2", "env": [{"name": "B", "value": "2"}]},
                        {"name": "sidecar", "$patch": "delete"},
                        {"name": "extra", "image": "extra:1"},
                    ]
                }
            }
        }
    }
    out = apps.patch_namespaced_deployment("web", "default", patch)  # strategic merge by default
    containers = out.spec.template.spec.containers
    assert [c.name for c in containers] == ["app", "extra"]
    assert containers[0].image == "app:2"
    assert [(e.name, e.value) for e in containers[0].env] == [("A", "1"), ("B", "2")]
    assert out.metadata.generation == 2


def test_strategic_merge_replace_directive(http: Http) -> None:
    http.json("POST", DEPLOY, _deployment())
    patch = {
        "spec": {
            "template": {
                "spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "o:1"}]}
            }
        }
    }
    code, out = http.json(
        "PATCH", f"{DEPLOY}/web", patch, content_type="application/strategic-merge-patch+json"
    )
    assert code == 200
    assert [c["name"] for c in out["spec"]["template"]["spec"]["containers"]] == ["only"]


def test_finalizers_merge_as_a_set(http: Http) -> None:
    http.json("POST", CM, {"metadata": {"name": "f", "finalizers": ["a.example/x"]}})
    code, out = http.json(
        "PATCH",
        f"{CM}/f",
        {"metadata": {"finalizers": ["b.example/y"]}},
        content_type="application/strategic-merge-patch+json",
    )
    assert out["metadata"]["finalizers"] == ["a.example/x", "b.example/y"]
    code, out = http.json(
        "PATCH",
        f"{CM}/f",
        {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a.example/x", "b.example/y"]}},
        content_type="application/strategic-merge-patch+json",
    )
    assert code == 200
    assert not out["metadata"].get("finalizers")


def test_server_side_apply_creates_then_removes_dropped_fields(http: Http) -> None:
    applied = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "ssa", "labels": {"a": "1", "b": "2"}},
        "data": {"x": "1", "y": "2"},
    }
    path = f"{CM}/ssa?fieldManager=tester&fieldValidation=Strict&force=false"
    code, out = http.json("PATCH", path, applied, content_type="application/apply-patch+yaml")
    assert code == 201
    assert out["data"] == {"x": "1", "y": "2"}
    # Another writer adds a key; it must survive the next apply.
    http.json(
        "PATCH", f"{CM}/ssa", {"data": {"other": "o"}}, content_type="application/merge-patch+json"
    )
    applied["data"] = {"x": "10"}
    applied["metadata"]["labels"] = {"a": "1"}
    yaml_body = json.dumps(applied).encode()  # JSON is valid YAML
    code, _, raw = http.request(
        "PATCH", path, yaml_body, content_type="application/apply-patch+yaml"
    )
    out = json.loads(raw)
    assert code == 200
    assert out["data"] == {"x": "10", "other": "o"}
    assert out["metadata"]["labels"] == {"a": "1"}


def test_server_side_apply_yaml_body_and_field_manager_required(http: Http) -> None:
    body = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\ndata:\n  k: v\n"
    code, _, raw = http.request(
        "PATCH", f"{CM}/y?fieldManager=m", body, content_type="application/apply-patch+yaml"
    )
    assert code == 201
    assert json.loads(raw)["data"] == {"k": "v"}
    code, _, raw = http.request(
        "PATCH", f"{CM}/y", body, content_type="application/apply-patch+yaml"
    )
    assert code == 422
    wrong = b"apiVersion: v2\nkind: ConfigMap\nmetadata:\n  name: y\n"
    code, _, raw = http.request(
        "PATCH", f"{CM}/y?fieldManager=m", wrong, content_type="application/apply-patch+yaml"
    )
    assert code == 400


def test_apply_through_the_official_client(kube: client.ApiClient) -> None:
    apps = client.AppsV1Api(kube)
    body = _deployment()
    out = apps.patch_namespaced_deployment(
        "web",
        "default",
        body,
        field_manager="netweave",
        _content_type="application/apply-patch+yaml",
    )
    assert out.metadata.name == "web"
    body["spec"]["replicas"] = 3
    out = apps.patch_namespaced_deployment(
        "web",
        "default",
        body,
        field_manager="netweave",
        _content_type="application/apply-patch+yaml",
    )
    assert out.spec.replicas == 3


def test_patch_status_subresource_only_changes_status(http: Http) -> None:
    http.json(
        "POST",
        "/api/v1/namespaces/default/pods",
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "i"}]},
        },
    )
    code, out = http.json(
        "PATCH",
        "/api/v1/namespaces/default/pods/p/status",
        {"status": {"message": "hello"}, "spec": {"nodeName": "ignored"}},
        content_type="application/merge-patch+json",
    )
    assert code == 200
    assert out["status"]["message"] == "hello"
    assert "nodeName" not in out["spec"]


def test_unknown_patch_type_is_415(kube: client.ApiClient, http: Http) -> None:
    http.json("POST", CM, {"metadata": {"name": "u"}})
    code, _ = http.json("PATCH", f"{CM}/u", {"data": {}}, content_type="text/plain")
    assert code == 415
    with pytest.raises(ApiException):
        client.CoreV1Api(kube).patch_namespaced_config_map("missing", "default", {"data": {}})


def _apply(http: Http, obj: dict[str, Any], manager: str, force: bool = False) -> tuple[int, Any]:
    name = obj["metadata"]["name"]
    query = f"fieldManager={manager}" + ("&force=true" if force else "")
    return http.json(
        "PATCH", f"{DEPLOY}/{name}?{query}", obj, content_type="application/apply-patch+yaml"
    )


def test_managed_fields_record_managers(http: Http, k8s_emulator: Any) -> None:
    code, made = http.json("POST", f"{DEPLOY}?fieldManager=creator", _deployment())
    assert code == 201
    entries = made["metadata"]["managedFields"]
    assert [(e["manager"], e["operation"]) for e in entries] == [("creator", "Update")]
    assert entries[0]["fieldsType"] == "FieldsV1"
    assert "f:replicas" in entries[0]["fieldsV1"]["f:spec"]
    containers = entries[0]["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert 'k:{"name":"app"}' in containers
    # Without fieldManager the manager is the user agent's product name.
    code, cm = http.json("POST", CM, {"metadata": {"name": "ua"}, "data": {"k": "v"}})
    assert cm["metadata"]["managedFields"][0]["manager"] == "Python-urllib"


def test_apply_conflicts_with_another_manager_unless_forced(http: Http) -> None:
    code, _ = _apply(http, _deployment(), "alpha")
    assert code == 201
    code, _ = http.json(
        "PATCH",
        f"{DEPLOY}/web?fieldManager=kubectl",
        {"spec": {"replicas": 5}},
        content_type="application/merge-patch+json",
    )
    assert code == 200
    again = _deployment()
    again["spec"]["replicas"] = 3
    code, out = _apply(http, again, "alpha")
    assert code == 409
    assert out["reason"] == "Conflict"
    assert (
        out["message"]
        == 'Apply failed with 1 conflict: conflict with "kubectl" using apps/v1: .spec.replicas'
    )
    assert out["details"]["causes"][0]["field"] == ".spec.replicas"
    code, out = _apply(http, again, "alpha", force=True)
    assert code == 200
    assert out["spec"]["replicas"] == 3
    owners = {e["manager"]: e for e in out["metadata"]["managedFields"]}
    assert "f:replicas" in owners["alpha"]["fieldsV1"]["f:spec"]
    assert "kubectl" not in owners  # it owned nothing else
    # Applying the value another manager already set is not a conflict (shared ownership).
    http.json(
        "PATCH",
        f"{DEPLOY}/web?fieldManager=kubectl",
        {"metadata": {"labels": {"team": "a"}}},
        content_type="application/merge-patch+json",
    )
    shared = _deployment()
    shared["metadata"]["labels"] = {"team": "a"}
    code, _ = _apply(http, shared, "alpha")
    assert code == 200


def test_apply_keeps_fields_other_managers_also_own(http: Http) -> None:
    base = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "co"},
        "data": {"a": "1", "b": "2"},
    }
    path = f"{CM}/co?fieldManager="
    assert (
        http.json("PATCH", path + "alpha", base, content_type="application/apply-patch+yaml")[0]
        == 201
    )
    beta = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "co"}, "data": {"b": "2"}}
    assert (
        http.json("PATCH", path + "beta", beta, content_type="application/apply-patch+yaml")[0]
        == 200
    )
    shrink = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "co"}, "data": {}}
    code, out = http.json(
        "PATCH", path + "alpha", shrink, content_type="application/apply-patch+yaml"
    )
    assert code == 200
    assert out["data"] == {"b": "2"}  # "a" was alpha's alone; "b" is still beta's


def test_identical_apply_is_a_no_op(http: Http) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "same"},
        "data": {"a": "1"},
    }
    path = f"{CM}/same?fieldManager=alpha"
    _, first = http.json("PATCH", path, body, content_type="application/apply-patch+yaml")
    time.sleep(1.1)  # managedFields times have one-second precision: make them differ
    _, second = http.json("PATCH", path, body, content_type="application/apply-patch+yaml")
    assert second["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    assert second["metadata"]["managedFields"] == first["metadata"]["managedFields"]


def test_apply_refuses_managed_fields_in_body(http: Http) -> None:
    body = _deployment()
    body["metadata"]["managedFields"] = [{"manager": "x"}]
    code, out = _apply(http, body, "alpha")
    assert code == 400
    assert out["message"] == "metadata.managedFields must be nil"

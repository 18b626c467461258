"""JSON, merge, strategic-merge and server-side-apply patches."""

from __future__ import annotations

import json
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

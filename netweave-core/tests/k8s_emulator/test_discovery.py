"""Discovery and meta endpoints answer like a real API server."""

from __future__ import annotations

import json
from typing import Any

from kubernetes import client
from netweave.testing.k8s import KubernetesEmulator

from .conftest import Http


def test_version_and_trailing_slash(http: Http, kube: client.ApiClient) -> None:
    code, doc = http.json("GET", "/version")
    assert code == 200
    assert doc["gitVersion"] == "v1.35.0"
    assert doc["major"] == "1"
    # The Python client calls /version/ with a trailing slash.
    assert client.VersionApi(kube).get_code().minor == "35"
    assert client.CoreApi(kube).get_api_versions().versions == ["v1"]


def test_core_resource_list_group_version_is_v1(http: Http) -> None:
    code, doc = http.json("GET", "/api/v1")
    assert code == 200
    # client-go drops the core group if this is "/v1" (the bug found in kmock).
    assert doc["groupVersion"] == "v1"
    by_name = {r["name"]: r for r in doc["resources"]}
    assert by_name["configmaps"]["namespaced"] is True
    assert by_name["namespaces"]["namespaced"] is False
    assert by_name["pods/log"]["verbs"] == ["get"]
    assert set(by_name["secrets"]["verbs"]) >= {
        "create",
        "list",
        "watch",
        "patch",
        "deletecollection",
    }
    assert "services/status" in by_name


def test_group_documents(http: Http) -> None:
    code, groups = http.json("GET", "/apis")
    assert code == 200
    names = {g["name"] for g in groups["groups"]}
    for g in ("apps", "batch", "networking.k8s.io", "rbac.authorization.k8s.io", "policy"):
        assert g in names
    code, apps = http.json("GET", "/apis/apps")
    assert code == 200
    assert apps["preferredVersion"]["groupVersion"] == "apps/v1"
    code, rl = http.json("GET", "/apis/apps/v1")
    entries = {r["name"]: r for r in rl["resources"]}
    assert entries["deployments"]["kind"] == "Deployment"
    assert entries["deployments/scale"]["group"] == "autoscaling"
    assert entries["deployments/scale"]["kind"] == "Scale"


def test_aggregated_discovery_when_asked(http: Http) -> None:
    accept = (
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
        "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"
    )
    code, headers, raw = http.request("GET", "/apis", accept=accept)
    assert code == 200
    assert (
        headers["Content-Type"]
        == "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    )
    doc = json.loads(raw)
    assert doc["kind"] == "APIGroupDiscoveryList"
    apps = next(i for i in doc["items"] if i["metadata"].get("name") == "apps")
    deploy = next(r for r in apps["versions"][0]["resources"] if r["resource"] == "deployments")
    assert deploy["scope"] == "Namespaced"
    assert {s["subresource"] for s in deploy["subresources"]} == {"status", "scale"}
    code, headers, raw = http.request("GET", "/api", accept=accept)
    core = json.loads(raw)["items"][0]
    assert "name" not in core["metadata"]
    assert any(r["resource"] == "pods" for r in core["versions"][0]["resources"])
    # A plain Accept gets the legacy document.
    code, headers, raw = http.request("GET", "/apis")
    assert headers["Content-Type"] == "application/json"
    assert json.loads(raw)["kind"] == "APIGroupList"


def test_openapi_answers_helm_accepts(http: Http) -> None:
    code, headers, raw = http.request(
        "GET", "/openapi/v2", accept="application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
    )
    assert code == 200
    assert raw == b""
    assert headers["Content-Type"] == "application/octet-stream"
    code, _, _ = http.request("GET", "/openapi/v3")
    assert code == 404


def test_unknown_paths_are_404_status(http: Http) -> None:
    for path in (
        "/apis/nope.example.com/v1/things",
        "/api/v1/namespaces/default/widgets",
        "/nothing",
    ):
        code, doc = http.json("GET", path)
        assert code == 404
        assert doc["kind"] == "Status"
        assert doc["reason"] == "NotFound"


def test_health_endpoints(http: Http) -> None:
    for path in ("/healthz", "/readyz", "/livez"):
        code, _, raw = http.request("GET", path)
        assert (code, raw) == (200, b"ok")


def test_kubeconfig_works_with_the_official_loader(
    k8s_emulator: KubernetesEmulator, tmp_path: object
) -> None:
    from pathlib import Path

    from kubernetes import config

    path = k8s_emulator.write_kubeconfig(Path(str(tmp_path)) / "kc")
    api = config.new_client_from_config(config_file=str(path))
    try:
        names = [n.metadata.name for n in client.CoreV1Api(api).list_namespace().items]
    finally:
        api.close()
    assert "default" in names
    assert "kube-system" in names


def test_factory_options_version_and_validation(k8s_emulator_factory: Any) -> None:
    old = k8s_emulator_factory(kubernetes_version="1.30", controllers=False)
    code, doc = Http(old.url).json("GET", "/version")
    assert (doc["major"], doc["minor"], doc["gitVersion"]) == ("1", "30", "v1.30.0")
    lax = k8s_emulator_factory(validate=False)
    bad = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "lax"},
        "spec": {"replicas": 1, "template": {"spec": {"containers": [{"image": "x"}]}}},
    }
    code, _ = Http(lax.url).json("POST", "/apis/apps/v1/namespaces/default/deployments", bad)
    assert code == 201
    code, _ = Http(old.url).json("POST", "/apis/apps/v1/namespaces/default/deployments", bad)
    assert code == 422

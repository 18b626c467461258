"""Custom resources from the Flux and Argo CD CRDs through the official client."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException
from netweave.testing.k8s import KubernetesEmulator

from .conftest import Http, argocd_crd_path, flux_crd_paths, load_yaml_docs

FLUX_HR = ("helm.toolkit.fluxcd.io", "v2", "helmreleases")
FLUX_REPO = ("source.toolkit.fluxcd.io", "v1", "helmrepositories")
ARGO_APP = ("argoproj.io", "v1alpha1", "applications")


@pytest.fixture
def crs(k8s_emulator: KubernetesEmulator, kube: client.ApiClient) -> client.CustomObjectsApi:
    for path in flux_crd_paths():
        k8s_emulator.install_crd(load_yaml_docs(path))
    k8s_emulator.install_crd(load_yaml_docs(argocd_crd_path()))
    for ns in ("flux-system", "argocd"):
        client.CoreV1Api(kube).create_namespace({"metadata": {"name": ns}})
    return client.CustomObjectsApi(kube)


def _hr(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {
            "interval": "10m",
            "chart": {
                "spec": {
                    "chart": "podinfo",
                    "version": "6.x",
                    "sourceRef": {"kind": "HelmRepository", "name": "podinfo"},
                }
            },
            "values": {"replicaCount": 2},
        },
    }


def _app(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name},
        "spec": {
            "project": "default",
            "source": {
                "repoURL": "https://git.example/apps.git",
                "path": "guestbook",
                "targetRevision": "HEAD",
            },
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "guestbook"},
            "syncPolicy": {"automated": {"prune": True}},
        },
    }


def test_crds_are_established_and_discoverable(
    crs: client.CustomObjectsApi, kube: client.ApiClient, http: Http
) -> None:
    ext = client.ApiextensionsV1Api(kube)
    crd = ext.read_custom_resource_definition("helmreleases.helm.toolkit.fluxcd.io")
    conds = {c.type: c.status for c in crd.status.conditions}
    assert conds == {"NamesAccepted": "True", "Established": "True"}
    assert crd.status.accepted_names.kind == "HelmRelease"
    code, doc = http.json("GET", "/apis/argoproj.io/v1alpha1")
    assert code == 200
    names = {r["name"]: r for r in doc["resources"]}
    assert names["applications"]["namespaced"] is True
    assert names["applications"]["shortNames"] == ["app", "apps"]
    assert "applications/status" not in names  # the Argo CD CRD has no status subresource
    _code, groups = http.json("GET", "/apis")
    assert "source.toolkit.fluxcd.io" in {g["name"] for g in groups["groups"]}


def test_flux_helmrelease_crud_and_selectors(crs: client.CustomObjectsApi) -> None:
    g, v, p = FLUX_HR
    made = crs.create_namespaced_custom_object(g, v, "flux-system", p, _hr("web", {"team": "a"}))
    assert made["metadata"]["generation"] == 1
    crs.create_namespaced_custom_object(g, v, "flux-system", p, _hr("db", {"team": "b"}))
    listed = crs.list_namespaced_custom_object(g, v, "flux-system", p, label_selector="team=a")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["web"]
    assert listed["kind"] == "HelmReleaseList"
    everywhere = crs.list_cluster_custom_object(g, v, p, field_selector="metadata.name=db")
    assert [i["metadata"]["name"] for i in everywhere["items"]] == ["db"]
    got = crs.get_namespaced_custom_object(g, v, "flux-system", p, "web")
    got["spec"]["suspend"] = True
    replaced = crs.replace_namespaced_custom_object(g, v, "flux-system", p, "web", got)
    assert replaced["metadata"]["generation"] == 2
    crs.delete_namespaced_custom_object(g, v, "flux-system", p, "web")
    with pytest.raises(ApiException) as exc:
        crs.get_namespaced_custom_object(g, v, "flux-system", p, "web")
    assert exc.value.status == 404


def test_custom_resource_patches(crs: client.CustomObjectsApi, kube: client.ApiClient) -> None:
    g, v, p = ARGO_APP
    crs.create_namespaced_custom_object(g, v, "argocd", p, _app("guestbook"))
    merged = crs.patch_namespaced_custom_object(
        g, v, "argocd", p, "guestbook", {"spec": {"source": {"targetRevision": "v2"}}}
    )
    assert merged["spec"]["source"]["targetRevision"] == "v2"
    assert merged["spec"]["source"]["path"] == "guestbook"
    ops = [{"op": "replace", "path": "/spec/project", "value": "platform"}]
    patched = crs.patch_namespaced_custom_object(
        g, v, "argocd", p, "guestbook", ops, _content_type="application/json-patch+json"
    )
    assert patched["spec"]["project"] == "platform"
    # Strategic merge is not defined for custom resources: 415 like a real server.
    with pytest.raises(ApiException) as exc:
        crs.patch_namespaced_custom_object(
            g,
            v,
            "argocd",
            p,
            "guestbook",
            {"spec": {}},
            _content_type="application/strategic-merge-patch+json",
        )
    assert exc.value.status == 415
    # Server-side apply creates (201), then updates (200).
    _, status, _ = crs.patch_namespaced_custom_object_with_http_info(
        g,
        v,
        "argocd",
        p,
        "applied",
        _app("applied"),
        field_manager="netweave",
        _content_type="application/apply-patch+yaml",
    )
    assert status == 201  # (kubernetes 37 deserialises only 200 bodies for this call)
    assert (
        crs.get_namespaced_custom_object(g, v, "argocd", p, "applied")["metadata"]["generation"]
        == 1
    )
    changed = _app("applied")
    changed["spec"]["source"]["targetRevision"] = "main"
    _body, status, _ = crs.patch_namespaced_custom_object_with_http_info(
        g,
        v,
        "argocd",
        p,
        "applied",
        changed,
        field_manager="netweave",
        _content_type="application/apply-patch+yaml",
    )
    assert status == 200
    assert (
        crs.get_namespaced_custom_object(g, v, "argocd", p, "applied")["spec"]["source"][
            "targetRevision"
        ]
        == "main"
    )


def test_status_subresource_of_custom_resource(crs: client.CustomObjectsApi) -> None:
    g, v, p = FLUX_HR
    crs.create_namespaced_custom_object(g, v, "flux-system", p, _hr("s"))
    status = {
        "status": {
            "observedGeneration": 1,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "InstallSucceeded",
                    "message": "ok",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                }
            ],
        }
    }
    out = crs.patch_namespaced_custom_object_status(g, v, "flux-system", p, "s", status)
    assert out["status"]["conditions"][0]["type"] == "Ready"
    assert out["metadata"]["generation"] == 1
    # Status written through the main resource is ignored when /status exists.
    obj = crs.get_namespaced_custom_object(g, v, "flux-system", p, "s")
    obj["status"] = {"observedGeneration": 99}
    out = crs.replace_namespaced_custom_object(g, v, "flux-system", p, "s", obj)
    assert out["status"]["observedGeneration"] == 1


def test_custom_resource_finalizers(crs: client.CustomObjectsApi) -> None:
    g, v, p = FLUX_HR
    hr = _hr("fin")
    hr["metadata"]["finalizers"] = ["finalizers.fluxcd.io"]
    crs.create_namespaced_custom_object(g, v, "flux-system", p, hr)
    crs.delete_namespaced_custom_object(g, v, "flux-system", p, "fin")
    held = crs.get_namespaced_custom_object(g, v, "flux-system", p, "fin")
    assert held["metadata"]["deletionTimestamp"]
    crs.patch_namespaced_custom_object(
        g, v, "flux-system", p, "fin", {"metadata": {"finalizers": None}}
    )
    with pytest.raises(ApiException) as exc:
        crs.get_namespaced_custom_object(g, v, "flux-system", p, "fin")
    assert exc.value.status == 404


def test_watch_custom_resources(crs: client.CustomObjectsApi) -> None:
    g, v, p = FLUX_HR
    seen: list[tuple[str, str]] = []

    def writer() -> None:
        time.sleep(0.2)
        crs.create_namespaced_custom_object(g, v, "flux-system", p, _hr("w"))
        crs.patch_namespaced_custom_object(g, v, "flux-system", p, "w", {"spec": {"suspend": True}})
        crs.delete_namespaced_custom_object(g, v, "flux-system", p, "w")

    t = threading.Thread(target=writer)
    t.start()
    w = watch.Watch()
    for ev in w.stream(
        crs.list_namespaced_custom_object, g, v, "flux-system", p, timeout_seconds=5
    ):
        seen.append((ev["type"], ev["object"]["metadata"]["name"]))
        if ev["type"] == "DELETED":
            w.stop()
    t.join()
    assert seen == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]


def test_unknown_custom_resource_is_404(kube: client.ApiClient) -> None:
    with pytest.raises(ApiException) as exc:
        client.CustomObjectsApi(kube).create_namespaced_custom_object(
            "example.com",
            "v1",
            "default",
            "widgets",
            {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}},
        )
    assert exc.value.status == 404


def test_deleting_a_crd_removes_its_resources(
    crs: client.CustomObjectsApi, kube: client.ApiClient, http: Http
) -> None:
    g, v, p = FLUX_REPO
    repo = {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "HelmRepository",
        "metadata": {"name": "r"},
        "spec": {"interval": "1m", "url": "https://charts.example"},
    }
    crs.create_namespaced_custom_object(g, v, "flux-system", p, repo)
    client.ApiextensionsV1Api(kube).delete_custom_resource_definition(
        "helmrepositories.source.toolkit.fluxcd.io"
    )
    code, _ = http.json(
        "GET", "/apis/source.toolkit.fluxcd.io/v1/namespaces/flux-system/helmrepositories/r"
    )
    assert code == 404
    code, doc = http.json("GET", "/apis/source.toolkit.fluxcd.io/v1")
    assert "helmrepositories" not in {r["name"] for r in doc["resources"]}


def test_cluster_scoped_crd_with_scale_and_multiple_versions(
    k8s_emulator: KubernetesEmulator, kube: client.ApiClient, http: Http
) -> None:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "replicas": {"type": "integer", "minimum": 0},
                    "size": {"type": "string", "default": "small"},
                },
            },
            "status": {
                "type": "object",
                "properties": {"replicas": {"type": "integer"}, "selector": {"type": "string"}},
            },
        },
    }
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "pools.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Cluster",
            "names": {"plural": "pools", "singular": "pool", "kind": "Pool", "shortNames": ["pl"]},
            "versions": [
                {
                    "name": "v1beta1",
                    "served": True,
                    "storage": False,
                    "schema": {"openAPIV3Schema": schema},
                },
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.replicas",
                            "labelSelectorPath": ".status.selector",
                        },
                    },
                },
            ],
        },
    }
    client.ApiextensionsV1Api(kube).create_custom_resource_definition(crd)
    _code, grp = http.json("GET", "/apis/example.com")
    assert grp["preferredVersion"]["version"] == "v1"
    crs = client.CustomObjectsApi(kube)
    made = crs.create_cluster_custom_object(
        "example.com",
        "v1",
        "pools",
        {
            "apiVersion": "example.com/v1",
            "kind": "Pool",
            "metadata": {"name": "p1"},
            "spec": {"replicas": 2},
        },
    )
    assert "namespace" not in made["metadata"]
    assert made["spec"]["size"] == "small"
    old = crs.get_cluster_custom_object("example.com", "v1beta1", "pools", "p1")
    assert old["apiVersion"] == "example.com/v1beta1"
    scale = crs.get_cluster_custom_object_scale("example.com", "v1", "pools", "p1")
    assert scale["spec"]["replicas"] == 2
    crs.patch_cluster_custom_object_scale(
        "example.com", "v1", "pools", "p1", {"spec": {"replicas": 4}}
    )
    assert (
        crs.get_cluster_custom_object("example.com", "v1", "pools", "p1")["spec"]["replicas"] == 4
    )
    with pytest.raises(ApiException) as exc:
        crs.patch_cluster_custom_object(
            "example.com", "v1", "pools", "p1", {"spec": {"replicas": -1}}
        )
    assert exc.value.status == 422
    assert "should be greater than or equal to 0" in json.loads(exc.value.body)["message"]

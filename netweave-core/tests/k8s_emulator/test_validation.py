"""Malformed objects are refused with the status codes a real apiserver uses.

Built-in kinds are decoded into Go structs before validation, so a wrong
JSON type is a 400 BadRequest ("cannot be handled as a Deployment: json:
cannot unmarshal ..."), an unknown field is a 400 only with
fieldValidation=Strict (a Warning header otherwise), and a missing required
field is a 422 Invalid. Custom resources are validated against the CRD's
openAPIV3Schema: wrong types are 422 Invalid. Server-side apply converts the
patch to a typed object first and answers schema mismatches with 500
(kubernetes/kubernetes#122480, #139253).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from netweave.testing.k8s import KubernetesEmulator

from .conftest import Http, flux_crd_paths

DEPLOY = "/apis/apps/v1/namespaces/default/deployments"
HR = "/apis/helm.toolkit.fluxcd.io/v2/namespaces/default/helmreleases"


def _deployment(name: str = "web") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": "c",
                            "image": "nginx",
                            "ports": [{"containerPort": 80, "name": "http"}],
                            "resources": {"limits": {"cpu": "100m", "memory": 268435456}},
                            "livenessProbe": {"httpGet": {"path": "/", "port": "http"}},
                        }
                    ]
                },
            },
        },
    }


def _helmrelease(name: str = "web") -> dict[str, Any]:
    return {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": name},
        "spec": {
            "interval": "5m",
            "chart": {
                "spec": {"chart": "nginx", "sourceRef": {"kind": "HelmRepository", "name": "repo"}}
            },
            "values": {"free": {"form": [1, "two"]}},
        },
    }


@pytest.fixture
def flux(k8s_emulator: KubernetesEmulator) -> KubernetesEmulator:
    for path in flux_crd_paths():
        k8s_emulator.install_crd(path)
    return k8s_emulator


def test_valid_deployment_with_int_or_string_and_quantities(http: Http) -> None:
    code, out = http.json("POST", DEPLOY, _deployment())
    assert code == 201, out


def test_deployment_with_wrong_type_is_400(kube: client.ApiClient, http: Http) -> None:
    bad = _deployment("bad")
    bad["spec"]["replicas"] = "three"
    code, out = http.json("POST", DEPLOY, bad)
    assert code == 400
    assert out["reason"] == "BadRequest"
    assert out["message"] == (
        'Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal '
        "string into Go struct field DeploymentSpec.spec.replicas of type int32"
    )
    assert http.json("GET", f"{DEPLOY}/bad")[0] == 404
    # The typed client refuses to send it at all (pydantic models); a dict through the
    # dynamic path reaches the server and gets the same 400.
    with pytest.raises(ApiException) as exc:
        client.CustomObjectsApi(kube).create_namespaced_custom_object(
            "apps", "v1", "default", "deployments", bad
        )
    assert exc.value.status == 400


def test_deployment_missing_required_fields_is_422(http: Http) -> None:
    bad = _deployment("bad")
    del bad["spec"]["selector"]
    del bad["spec"]["template"]["spec"]["containers"][0]["name"]
    code, out = http.json("POST", DEPLOY, bad)
    assert code == 422
    assert out["reason"] == "Invalid"
    fields = {c["field"] for c in out["details"]["causes"]}
    assert fields == {"spec.selector", "spec.template.spec.containers[0].name"}
    assert out["message"].startswith('Deployment.apps "bad" is invalid: [')


def test_unknown_fields_depend_on_field_validation(http: Http) -> None:
    obj = _deployment("u")
    obj["spec"]["bogus"] = True
    code, _, raw = http.request("POST", f"{DEPLOY}?fieldValidation=Strict", obj)
    assert code == 400
    assert 'strict decoding error: unknown field "spec.bogus"' in json.loads(raw)["message"]
    code, headers, raw = http.request("POST", DEPLOY, obj)  # default: Warn
    assert code == 201
    assert headers["Warning"] == '299 - "unknown field \\"spec.bogus\\""'
    assert "bogus" not in json.loads(raw)["spec"]  # dropped, as decoding into structs does
    obj["metadata"]["name"] = "u2"
    code, headers, raw = http.request("POST", f"{DEPLOY}?fieldValidation=Ignore", obj)
    assert code == 201
    assert "Warning" not in headers


def test_validation_also_applies_to_updates_and_patches(http: Http) -> None:
    http.json("POST", DEPLOY, _deployment("p"))
    code, _ = http.json(
        "PATCH",
        f"{DEPLOY}/p",
        {"spec": {"replicas": "many"}},
        content_type="application/merge-patch+json",
    )
    assert code == 400
    code, cur = http.json("GET", f"{DEPLOY}/p")
    cur["spec"]["template"]["spec"]["containers"] = [{"image": "x"}]
    code, _out = http.json("PUT", f"{DEPLOY}/p", cur)
    assert code == 422


def test_server_side_apply_schema_mismatch_is_500(http: Http) -> None:
    bad = _deployment("ssa")
    bad["spec"]["bogus"] = 1
    code, out = http.json(
        "PATCH",
        f"{DEPLOY}/ssa?fieldManager=m&fieldValidation=Strict",
        bad,
        content_type="application/apply-patch+yaml",
    )
    assert code == 500
    assert out["message"] == (
        "failed to create typed patch object (default/ssa; apps/v1, Kind=Deployment): "
        ".spec.bogus: field not declared in schema"
    )


def test_custom_resource_wrong_type_is_422(flux: KubernetesEmulator, http: Http) -> None:
    bad = _helmrelease("bad")
    bad["spec"]["interval"] = 300
    code, out = http.json("POST", HR, bad)
    assert code == 422
    assert out["reason"] == "Invalid"
    assert out["message"] == (
        'HelmRelease.helm.toolkit.fluxcd.io "bad" is invalid: spec.interval: Invalid value: '
        '"integer": spec.interval in body must be of type string: "integer"'
    )
    assert out["details"]["causes"][0]["field"] == "spec.interval"
    assert http.json("GET", f"{HR}/bad")[0] == 404


def test_custom_resource_pattern_enum_and_required(flux: KubernetesEmulator, http: Http) -> None:
    bad = _helmrelease("pat")
    bad["spec"]["interval"] = "five minutes"
    bad["spec"]["chart"]["spec"]["sourceRef"]["kind"] = "Bucketz"
    del bad["spec"]["chart"]["spec"]["chart"]
    code, out = http.json("POST", HR, bad)
    assert code == 422
    causes = {c["field"]: c["reason"] for c in out["details"]["causes"]}
    assert causes == {
        "spec.interval": "FieldValueInvalid",
        "spec.chart.spec.sourceRef.kind": "FieldValueNotSupported",
        "spec.chart.spec.chart": "FieldValueRequired",
    }


def test_custom_resource_pruning_preserve_unknown_and_defaults(
    flux: KubernetesEmulator, http: Http
) -> None:
    hr = _helmrelease()
    hr["spec"]["notInSchema"] = "x"
    code, headers, raw = http.request("POST", HR, hr)
    out = json.loads(raw)
    assert code == 201
    assert "notInSchema" not in out["spec"]  # pruned
    assert headers.get("Warning") == '299 - "unknown field \\"spec.notInSchema\\""'
    assert out["spec"]["values"] == {
        "free": {"form": [1, "two"]}
    }  # x-kubernetes-preserve-unknown-fields
    assert out["spec"]["chart"]["spec"]["reconcileStrategy"] == "ChartVersion"  # schema default
    strict = _helmrelease("strict")
    strict["spec"]["notInSchema"] = "x"
    code, out = http.json("POST", f"{HR}?fieldValidation=Strict", strict)
    assert code == 400
    assert 'unknown field "spec.notInSchema"' in out["message"]


def test_custom_resource_status_must_match_schema(flux: KubernetesEmulator, http: Http) -> None:
    http.json("POST", HR, _helmrelease())
    code, _ = http.json(
        "PATCH",
        f"{HR}/web",
        {"spec": {"suspend": "yes"}},
        content_type="application/merge-patch+json",
    )
    assert code == 422
    good = copy.deepcopy(_helmrelease("other"))
    good["spec"]["suspend"] = True
    assert http.json("POST", HR, good)[0] == 201


def test_crd_itself_is_validated(http: Http) -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "wrong.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"plural": "things", "kind": "Thing"},
            "scope": "Sideways",
            "versions": [],
        },
    }
    code, out = http.json("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    assert code == 422
    fields = {c["field"] for c in out["details"]["causes"]}
    assert {"metadata.name", "spec.scope", "spec.versions"} <= fields

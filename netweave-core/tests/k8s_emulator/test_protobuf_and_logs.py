"""Protobuf request bodies (as client-go sends them) and pod logs."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from netweave.testing.k8s import KubernetesEmulator, protobuf

from .conftest import Http

PB = "application/vnd.kubernetes.protobuf"


def test_protobuf_secret_create_and_update(http: Http) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "sh.helm.release.v1.r.v1", "labels": {"owner": "helm", "name": "r"}},
        "type": "helm.sh/release.v1",
        "data": {"release": "aGVsbG8="},
    }
    code, _, raw = http.request(
        "POST",
        "/api/v1/namespaces/default/secrets",
        protobuf.encode(secret),
        content_type=PB,
        accept=f"{PB}, application/json",
    )
    out = json.loads(raw)
    assert code == 201, out
    assert out["data"] == {"release": "aGVsbG8="}
    assert out["type"] == "helm.sh/release.v1"
    assert out["metadata"]["labels"] == {"owner": "helm", "name": "r"}
    secret["metadata"]["labels"]["status"] = "deployed"
    secret["metadata"]["resourceVersion"] = out["metadata"]["resourceVersion"]
    code, _, raw = http.request(
        "PUT",
        "/api/v1/namespaces/default/secrets/sh.helm.release.v1.r.v1",
        protobuf.encode(secret),
        content_type=PB,
    )
    assert code == 200
    assert json.loads(raw)["metadata"]["labels"]["status"] == "deployed"


def test_protobuf_configmap_namespace_and_delete_options(http: Http) -> None:
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "pb"}}
    code, _, _ = http.request("POST", "/api/v1/namespaces", protobuf.encode(ns), content_type=PB)
    assert code == 201
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "pb"},
        "data": {"a": "b", "empty": ""},
    }
    code, _, raw = http.request(
        "POST", "/api/v1/namespaces/pb/configmaps", protobuf.encode(cm), content_type=PB
    )
    assert code == 201
    assert json.loads(raw)["data"] == {"a": "b", "empty": ""}
    opts = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"}
    code, _, _ = http.request(
        "DELETE", "/api/v1/namespaces/pb/configmaps/c", protobuf.encode(opts), content_type=PB
    )
    assert code == 200
    code, _ = http.json("GET", "/api/v1/namespaces/pb/configmaps/c")
    assert code == 404


def test_protobuf_of_unknown_kind_is_415_and_garbage_is_400(http: Http) -> None:
    raw = protobuf.MAGIC + protobuf._enc_field(
        1,
        protobuf.encode_message(
            {"apiVersion": "apps/v1", "kind": "Deployment"}, protobuf._TYPE_META
        ),
    )
    code, _ = http.json(
        "POST", "/apis/apps/v1/namespaces/default/deployments", raw, content_type=PB
    )
    assert code == 415
    code, _ = http.json(
        "POST", "/api/v1/namespaces/default/secrets", b"not protobuf", content_type=PB
    )
    assert code == 400


def _pod(name: str, containers: list[str]) -> dict[str, object]:
    return {
        "metadata": {"name": name},
        "spec": {"containers": [{"name": c, "image": "busybox"} for c in containers]},
    }


def test_pod_logs_with_tail_container_and_since(
    kube: client.ApiClient, k8s_emulator: KubernetesEmulator
) -> None:
    core = client.CoreV1Api(kube)
    k8s_emulator.controllers.unregister("Pod")  # only the lines written here
    core.create_namespaced_pod("default", _pod("p", ["app", "side"]))
    old = time.time() - 3600
    k8s_emulator.core.append_log("default", "p", "app", "ancient", when=old)
    for i in range(5):
        k8s_emulator.append_log("default", "p", "app", f"line {i}")
    k8s_emulator.append_log("default", "p", "side", "sidecar says hi")
    text = core.read_namespaced_pod_log("p", "default", container="app")
    assert text.splitlines() == ["ancient"] + [f"line {i}" for i in range(5)]
    assert core.read_namespaced_pod_log(
        "p", "default", container="app", tail_lines=2
    ).splitlines() == ["line 3", "line 4"]
    recent = core.read_namespaced_pod_log("p", "default", container="app", since_seconds=60)
    assert "ancient" not in recent
    assert len(recent.splitlines()) == 5
    assert core.read_namespaced_pod_log("p", "default", container="side") == "sidecar says hi\n"
    stamped = core.read_namespaced_pod_log("p", "default", container="side", timestamps=True)
    assert stamped.endswith("Z sidecar says hi\n")
    with pytest.raises(ApiException) as exc:
        core.read_namespaced_pod_log("p", "default")  # two containers: must choose
    assert exc.value.status == 400
    assert "choose one of: [app side]" in json.loads(exc.value.body)["message"]
    with pytest.raises(ApiException) as exc:
        core.read_namespaced_pod_log("p", "default", container="nope")
    assert exc.value.status == 400
    with pytest.raises(ApiException) as exc:
        core.read_namespaced_pod_log("missing", "default")
    assert exc.value.status == 404


def test_default_controller_writes_pod_logs(
    kube: client.ApiClient, k8s_emulator: KubernetesEmulator
) -> None:
    core = client.CoreV1Api(kube)
    pod = _pod("runner", ["main"])
    pod["spec"]["containers"][0]["command"] = ["echo", "hi"]  # type: ignore[index]
    core.create_namespaced_pod("default", pod)
    assert k8s_emulator.wait_idle()
    text = core.read_namespaced_pod_log("runner", "default")
    assert "container main started (image busybox)" in text
    assert "running: echo hi" in text
    # Logs go away with the pod.
    core.delete_namespaced_pod("runner", "default")
    assert ("default", "runner", "main") not in k8s_emulator.core.logs


def test_pod_log_since_time(http: Http, k8s_emulator: KubernetesEmulator) -> None:
    k8s_emulator.controllers.unregister("Pod")
    http.json("POST", "/api/v1/namespaces/default/pods", _pod("t", ["c"]))
    k8s_emulator.core.append_log("default", "t", "c", "old", when=time.time() - 600)
    k8s_emulator.append_log("default", "t", "c", "new")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
    code, _, raw = http.request("GET", f"/api/v1/namespaces/default/pods/t/log?sinceTime={stamp}")
    assert (code, raw) == (200, b"new\n")


def test_follow_without_streaming_returns_what_is_there(
    http: Http, k8s_emulator: KubernetesEmulator
) -> None:
    k8s_emulator.controllers.unregister("Pod")
    http.json("POST", "/api/v1/namespaces/default/pods", _pod("s", ["c"]))
    k8s_emulator.append_log("default", "s", "c", "so far")
    code, _, raw = http.request("GET", "/api/v1/namespaces/default/pods/s/log?follow=true")
    assert (code, raw) == (200, b"so far\n")


def test_follow_streams_new_lines_until_the_container_exits(k8s_emulator_factory: Any) -> None:
    import threading

    k8s_emulator = k8s_emulator_factory(follow_logs=True)
    kube = k8s_emulator.kubernetes_client()
    core = client.CoreV1Api(kube)
    k8s_emulator.controllers.unregister("Pod")  # the test drives the Pod's life
    core.create_namespaced_pod("default", _pod("f", ["c"]))
    k8s_emulator.append_log("default", "f", "c", "first")
    resp = core.read_namespaced_pod_log("f", "default", follow=True, _preload_content=False)
    got: list[str] = []

    def reader() -> None:
        for raw in resp.stream(decode_content=True):
            got.extend(raw.decode().splitlines())

    t = threading.Thread(target=reader)
    t.start()
    time.sleep(0.3)
    k8s_emulator.append_log("default", "f", "c", "second")
    time.sleep(0.3)
    assert t.is_alive()  # still following a running container
    pod = k8s_emulator.get("v1", "Pod", "f", "default")
    k8s_emulator.append_log("default", "f", "c", "last")
    k8s_emulator.set_status(pod, {"phase": "Succeeded"})
    t.join(timeout=10)
    kube.close()
    assert not t.is_alive()
    assert got == ["first", "second", "last"]


def test_follow_ends_when_the_client_goes(k8s_emulator_factory: Any) -> None:
    import http.client as hc

    k8s_emulator = k8s_emulator_factory(follow_logs=True)
    k8s_emulator.controllers.unregister("Pod")
    Http(k8s_emulator.url).json("POST", "/api/v1/namespaces/default/pods", _pod("g", ["c"]))
    k8s_emulator.append_log("default", "g", "c", "hello")
    server = k8s_emulator._server
    assert server is not None
    conn = hc.HTTPConnection("127.0.0.1", k8s_emulator.port, timeout=10)
    conn.request("GET", "/api/v1/namespaces/default/pods/g/log?follow=true")
    resp = conn.getresponse()
    assert resp.read1(64).startswith(b"hello")
    streaming = len(server._conns)
    conn.close()
    # The emulator notices the closed socket within its idle tick and ends the stream.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(server._conns) >= streaming:
        time.sleep(0.05)
    assert len(server._conns) < streaming

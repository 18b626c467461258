"""core's shared Kubernetes access (netweave.adapters.kubernetes) against the project's
Kubernetes API emulator, driven by the real ``kubernetes`` client: kubeconfig loading, the one
error table, and pod logs read once or followed."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from netweave.adapters.kubernetes import (
    cluster_source,
    kube_call,
    new_api_client,
    stream_pod_logs,
)
from netweave.errors import (
    AlreadyExists,
    BackendError,
    BackendUnavailable,
    ClusterNotConfigured,
    Conflict,
    InvalidInput,
    NetweaveError,
    NotFound,
)
from netweave.models import LogOptions
from netweave.testing.k8s import KubernetesEmulator
from pydantic import SecretStr

HOW = "configure a cluster (test)"


@dataclass
class Cluster:
    kubeconfig: Path | None = None
    kubeconfig_content: SecretStr | None = None
    context: str | None = None


@pytest.fixture
def no_ambient_cluster(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def _pod(name: str, containers: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": [{"name": c, "image": "busybox"} for c in containers]},
    }


# -- kubeconfig ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("no_ambient_cluster")
def test_no_source_a_missing_file_and_an_unreadable_kubeconfig_are_cluster_not_configured(
    tmp_path: Path,
) -> None:
    assert cluster_source(Cluster()) is None
    with pytest.raises(ClusterNotConfigured) as caught:
        new_api_client(Cluster(), "k", HOW)
    assert HOW in caught.value.message and caught.value.details == {"adapter": "k"}
    with pytest.raises(ClusterNotConfigured, match="does not exist"):
        new_api_client(Cluster(kubeconfig=tmp_path / "nope"), "k", HOW)
    for content in ("::: not yaml", "just a string", "apiVersion: v1\nkind: Config\n"):
        with pytest.raises(ClusterNotConfigured):
            new_api_client(Cluster(kubeconfig_content=SecretStr(content)), "k", HOW)


async def test_inline_content_file_and_context_reach_the_same_cluster(
    k8s_emulator: KubernetesEmulator, k8s_kubeconfig: Path
) -> None:
    from kubernetes.client import VersionApi

    inline = Cluster(kubeconfig_content=SecretStr(k8s_emulator.kubeconfig(context="lab")))
    for settings in (inline, Cluster(kubeconfig=k8s_kubeconfig)):
        client = new_api_client(settings, "k", HOW, retries=0)
        try:
            version = await kube_call("version", VersionApi(client).get_code)
            assert version.git_version == "v1.35.0"
        finally:
            client.close()
    wrong = Cluster(kubeconfig=k8s_kubeconfig, context="nope")
    with pytest.raises(ClusterNotConfigured, match="nope"):
        new_api_client(wrong, "k", HOW)


# -- the error table ----------------------------------------------------------------------------

TABLE: list[tuple[int, str | None, type[NetweaveError]]] = [
    (400, None, InvalidInput),
    (401, None, BackendError),
    (403, None, BackendError),
    (404, None, NotFound),
    (409, None, Conflict),
    (422, None, InvalidInput),
    (429, None, BackendUnavailable),
    # The API server's InternalError (etcd, a webhook it could not call) passes: retried.
    (500, "Internal error occurred: etcdserver: leader changed", BackendUnavailable),
    (501, None, BackendError),
    (502, None, BackendUnavailable),
    (503, None, BackendUnavailable),
    (504, None, BackendUnavailable),
]


@pytest.mark.parametrize(("status", "message", "expected"), TABLE)
async def test_each_answer_of_the_api_server_is_one_error(
    k8s_emulator: KubernetesEmulator,
    status: int,
    message: str | None,
    expected: type[NetweaveError],
) -> None:
    from kubernetes.client import CoreV1Api

    client = k8s_emulator.kubernetes_client()
    try:
        k8s_emulator.faults.error(status, path="/api/v1/namespaces/default/pods", message=message)
        with pytest.raises(NetweaveError) as caught:
            await kube_call(
                "listing pods", CoreV1Api(client).list_namespaced_pod, "default", _request_timeout=5
            )
    finally:
        client.close()
    assert type(caught.value) is expected
    if expected is not NotFound:
        assert f"HTTP {status}" in caught.value.message
    if message:
        assert message in caught.value.message


async def test_already_exists_and_a_dropped_connection(k8s_emulator: KubernetesEmulator) -> None:
    from kubernetes.client import CoreV1Api

    client = k8s_emulator.kubernetes_client()
    client.configuration.retries = 0
    core = CoreV1Api(client)
    try:
        body = {"metadata": {"name": "twice"}, "data": {}}
        await kube_call("create", core.create_namespaced_config_map, "default", body)
        with pytest.raises(AlreadyExists):
            await kube_call("create", core.create_namespaced_config_map, "default", body)
        k8s_emulator.faults.reset(path="/api/v1/namespaces/default/configmaps/twice", times=5)
        with pytest.raises(BackendUnavailable, match="unreachable"):
            await kube_call("read", core.read_namespaced_config_map, "twice", "default")
        # and nothing was changed by the failed calls
        read = await kube_call("read", core.read_namespaced_config_map, "twice", "default")
        assert read.metadata.name == "twice"
    finally:
        client.close()


# -- pod logs -----------------------------------------------------------------------------------


async def test_logs_read_once_with_tail_and_prefix(k8s_emulator: KubernetesEmulator) -> None:
    k8s_emulator.controllers.unregister("Pod")  # only the lines written here
    k8s_emulator.create(_pod("p", ["app", "side"]))
    for i in range(3):
        k8s_emulator.append_log("default", "p", "app", f"line {i}")
    k8s_emulator.append_log("default", "p", "side", "hi")
    client = k8s_emulator.kubernetes_client()
    try:
        one = [
            line
            async for line in stream_pod_logs(
                client, [("default", "p", "app")], LogOptions(tail_lines=2), read_timeout=5
            )
        ]
        assert one == ["line 1", "line 2"]
        both = [
            line
            async for line in stream_pod_logs(
                client, [("default", "p", "app"), ("default", "p", "side")], LogOptions()
            )
        ]
        assert both == ["[p/app] line 0", "[p/app] line 1", "[p/app] line 2", "[p/side] hi"]
        with pytest.raises(NotFound):
            async for _ in stream_pod_logs(client, [("default", "gone", "c")], LogOptions()):
                pass
    finally:
        client.close()


async def test_follow_streams_new_lines_and_stops_when_the_reader_stops(
    k8s_emulator_factory: Any,
) -> None:
    emulator = k8s_emulator_factory(follow_logs=True)
    emulator.controllers.unregister("Pod")
    emulator.create(_pod("f", ["c"]))
    emulator.append_log("default", "f", "c", "first")
    client = emulator.kubernetes_client()
    stream = stream_pod_logs(client, [("default", "f", "c")], LogOptions(follow=True))
    try:
        assert await asyncio.wait_for(anext(stream), 10) == "first"
        # A line written after the stream opened arrives on it: the log is followed.
        emulator.append_log("default", "f", "c", "later")
        assert await asyncio.wait_for(anext(stream), 10) == "later"
    finally:
        await stream.aclose()  # type: ignore[attr-defined]

    def readers() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == "netweave-pod-logs"]

    for _ in range(200):  # up to 10 s
        if not readers():
            break
        await asyncio.sleep(0.05)
    client.close()
    assert not readers()

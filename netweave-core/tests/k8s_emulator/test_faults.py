"""Fault injection: error statuses, throttling, latency, dropped watches, resets."""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.error
import urllib.request
from http.client import IncompleteRead, RemoteDisconnected
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from netweave.testing.k8s import KubernetesEmulator
from netweave.testing.k8s.faults import WRITE_METHODS

from .conftest import Http

CM = "/api/v1/namespaces/default/configmaps"


def test_error_fault_fires_times_then_stops(k8s_emulator: KubernetesEmulator, http: Http) -> None:
    fault = k8s_emulator.faults.error(
        503, path="/api/v1/namespaces/*/configmaps", method="POST", times=2
    )
    assert http.json("POST", CM, {"metadata": {"name": "a"}})[0] == 503
    code, out = http.json("POST", CM, {"metadata": {"name": "a"}})
    assert code == 503
    assert out["kind"] == "Status"
    assert out["reason"] == "ServiceUnavailable"
    assert http.json("POST", CM, {"metadata": {"name": "a"}})[0] == 201
    assert fault.hits == 2
    # Other methods and paths were never affected.
    assert http.json("GET", CM)[0] == 200


def test_a_fault_on_write_methods_spares_reads(
    k8s_emulator: KubernetesEmulator, http: Http
) -> None:
    fault = k8s_emulator.faults.error(
        400, method=WRITE_METHODS, times=None, message="denied: kit says no"
    )
    code, out = http.json("POST", CM, {"metadata": {"name": "w"}})
    assert (code, out["message"]) == (400, "denied: kit says no")
    assert http.json("DELETE", f"{CM}/w")[0] == 400
    assert http.json("GET", CM)[0] == 200
    fault.remove()
    assert http.json("POST", CM, {"metadata": {"name": "w"}})[0] == 201
    assert fault.hits == 2


def test_throttle_sends_retry_after(k8s_emulator: KubernetesEmulator, http: Http) -> None:
    k8s_emulator.faults.throttle(retry_after=3, path="/api/v1/namespaces/default/secrets*", times=1)
    code, headers, raw = http.request("GET", "/api/v1/namespaces/default/secrets")
    assert code == 429
    assert headers["Retry-After"] == "3"
    assert json.loads(raw)["reason"] == "TooManyRequests"
    assert http.request("GET", "/api/v1/namespaces/default/secrets")[0] == 200


def test_official_client_sees_injected_500(
    k8s_emulator: KubernetesEmulator, kube: client.ApiClient
) -> None:
    k8s_emulator.faults.error(500, path=re.compile(r"/configmaps/boom$"), times=None)
    core = client.CoreV1Api(kube)
    core.create_namespaced_config_map("default", {"metadata": {"name": "boom"}})
    for _ in range(3):
        with pytest.raises(ApiException) as exc:
            core.read_namespaced_config_map("boom", "default")
        assert exc.value.status == 500
    k8s_emulator.faults.clear()
    assert core.read_namespaced_config_map("boom", "default").metadata.name == "boom"


def test_latency_fault_delays_matching_requests(
    k8s_emulator: KubernetesEmulator, http: Http
) -> None:
    fault = k8s_emulator.faults.latency(
        0.3, path="/api/v1/namespaces/default/configmaps", method="GET", times=1
    )
    start = time.monotonic()
    assert http.request("GET", CM)[0] == 200
    slow = time.monotonic() - start
    assert slow >= 0.3
    assert fault.hits == 1
    fault.remove()
    assert k8s_emulator.faults.all() == []


def test_hang_fault_holds_requests_until_removed(
    k8s_emulator: KubernetesEmulator, http: Http
) -> None:
    fault = k8s_emulator.faults.hang(path="/api/v1/namespaces/default/configmaps", method="POST")
    answers: list[int] = []
    caller = threading.Thread(
        target=lambda: answers.append(http.json("POST", CM, {"metadata": {"name": "h"}})[0])
    )
    caller.start()
    caller.join(0.5)
    assert caller.is_alive() and answers == []  # held, unanswered
    assert http.json("GET", CM)[0] == 200  # other requests are served meanwhile
    fault.remove()
    caller.join(5)
    assert answers == [201]  # then served normally
    assert k8s_emulator.get("v1", "ConfigMap", "h", "default") is not None


def test_drop_watch_closes_stream_without_terminator(
    k8s_emulator: KubernetesEmulator, http: Http
) -> None:
    for name in ("a", "b", "c"):
        http.json("POST", CM, {"metadata": {"name": name}})
    k8s_emulator.faults.drop_watch(path=CM, after_events=2)
    with (
        urllib.request.urlopen(
            f"{k8s_emulator.url}{CM}?watch=1&timeoutSeconds=5", timeout=10
        ) as resp,
        pytest.raises(IncompleteRead),
    ):
        resp.read()
    # The fault was for one connection only: the next watch sees every object.
    with urllib.request.urlopen(
        f"{k8s_emulator.url}{CM}?watch=1&timeoutSeconds=1", timeout=10
    ) as resp:
        lines = [json.loads(x) for x in resp.read().splitlines() if x.strip()]
    assert [e["object"]["metadata"]["name"] for e in lines] == ["a", "b", "c"]


def test_drop_watch_is_seen_by_the_official_client(
    k8s_emulator: KubernetesEmulator, kube: client.ApiClient
) -> None:
    core = client.CoreV1Api(kube)
    core.create_namespaced_config_map("default", {"metadata": {"name": "x"}})
    k8s_emulator.faults.drop_watch(path=CM, after_events=1)
    from kubernetes import watch
    from urllib3.exceptions import ProtocolError

    got = []
    with pytest.raises(ProtocolError):  # the connection broke mid-stream
        for ev in watch.Watch().stream(
            core.list_namespaced_config_map, "default", timeout_seconds=5
        ):
            got.append(ev["object"].metadata.name)
    assert got == ["x"]


def test_reset_fault_closes_connection(k8s_emulator: KubernetesEmulator, http: Http) -> None:
    k8s_emulator.faults.reset(path="/version", times=1)
    with pytest.raises((ConnectionError, RemoteDisconnected, urllib.error.URLError)):
        http.request("GET", "/version")
    assert http.request("GET", "/version")[0] == 200


def test_requests_are_recorded(k8s_emulator: KubernetesEmulator, http: Http) -> None:
    k8s_emulator.clear_requests()
    http.json("POST", CM + "?fieldManager=me", {"metadata": {"name": "r"}})
    http.json("GET", CM + "/r")
    recs = k8s_emulator.requests
    assert [(r.method, r.path, r.status) for r in recs] == [
        ("POST", CM, 201),
        ("GET", CM + "/r", 200),
    ]
    assert recs[0].params["fieldManager"] == ["me"]
    assert recs[0].content_type == "application/json"
    assert recs[0].body_length > 0


def test_emulator_bugs_are_recorded_for_the_fixture(k8s_emulator_factory: Any) -> None:
    emu = k8s_emulator_factory()

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("simulated emulator bug")

    emu.core.list = broken  # type: ignore[method-assign]
    code, out = Http(emu.url).json("GET", CM)
    assert code == 500
    assert "simulated emulator bug" in out["message"]
    assert len(emu.internal_errors) == 1
    assert "RuntimeError" in emu.internal_errors[0]
    # The fixture would fail this test at teardown; clear the record to end cleanly.
    emu._server.internal_errors.clear()  # type: ignore[union-attr]

"""Watch streams: events, resume, bookmarks, selector transitions, expiry."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from typing import Any

from kubernetes import client, watch
from netweave.testing.k8s import KubernetesEmulator

from .conftest import Http

CM = "/api/v1/namespaces/default/configmaps"


def _stream(url: str, timeout: float = 10.0) -> list[dict[str, Any]]:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        assert resp.headers["Transfer-Encoding"] == "chunked"
        return [json.loads(line) for line in resp.read().splitlines() if line.strip()]


def test_client_watch_sees_added_modified_deleted(kube: client.ApiClient) -> None:
    core = client.CoreV1Api(kube)
    core.create_namespaced_config_map("default", {"metadata": {"name": "before"}})
    seen: list[tuple[str, str]] = []
    w = watch.Watch()

    def writer() -> None:
        time.sleep(0.2)
        core.create_namespaced_config_map("default", {"metadata": {"name": "w"}})
        core.patch_namespaced_config_map("w", "default", {"data": {"a": "b"}})
        core.delete_namespaced_config_map("w", "default")

    t = threading.Thread(target=writer)
    t.start()
    for ev in w.stream(core.list_namespaced_config_map, "default", timeout_seconds=5):
        seen.append((ev["type"], ev["object"].metadata.name))
        if ev["type"] == "DELETED":
            w.stop()
    t.join()
    assert seen == [("ADDED", "before"), ("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]


def test_watch_resumes_from_resource_version(k8s_emulator: KubernetesEmulator, http: Http) -> None:
    _, first = http.json("POST", CM, {"metadata": {"name": "a"}})
    http.json("POST", CM, {"metadata": {"name": "b"}})
    http.json("POST", "/api/v1/namespaces/default/secrets", {"metadata": {"name": "other-kind"}})
    rv = first["metadata"]["resourceVersion"]
    events = _stream(f"{k8s_emulator.url}{CM}?watch=1&resourceVersion={rv}&timeoutSeconds=1")
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "b")]


def test_send_initial_events_ends_with_bookmark(
    k8s_emulator: KubernetesEmulator, http: Http
) -> None:
    http.json("POST", CM, {"metadata": {"name": "x"}})
    url = (
        f"{k8s_emulator.url}{CM}?watch=true&sendInitialEvents=true&allowWatchBookmarks=true"
        "&resourceVersionMatch=NotOlderThan&timeoutSeconds=1"
    )
    events = _stream(url)
    assert [e["type"] for e in events] == ["ADDED", "BOOKMARK"]
    bookmark = events[1]["object"]
    # client-go (Helm's watcher) needs the watched kind and this annotation.
    assert bookmark["kind"] == "ConfigMap"
    assert bookmark["apiVersion"] == "v1"
    assert bookmark["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert int(bookmark["metadata"]["resourceVersion"]) >= int(
        events[0]["object"]["metadata"]["resourceVersion"]
    )


def test_periodic_bookmarks_when_allowed(k8s_emulator: KubernetesEmulator, http: Http) -> None:
    k8s_emulator.set_watch_bookmark_interval(0.2)
    _, cm = http.json("POST", CM, {"metadata": {"name": "x"}})
    rv = cm["metadata"]["resourceVersion"]
    events = _stream(
        f"{k8s_emulator.url}{CM}?watch=1&resourceVersion={rv}&allowWatchBookmarks=true&timeoutSeconds=1"
    )
    assert events
    assert {e["type"] for e in events} == {"BOOKMARK"}
    assert "annotations" not in events[0]["object"]["metadata"]


def test_label_selector_transitions_become_added_and_deleted(
    k8s_emulator: KubernetesEmulator, http: Http
) -> None:
    _, cm = http.json("POST", CM, {"metadata": {"name": "t", "labels": {"app": "no"}}})
    rv = cm["metadata"]["resourceVersion"]

    def writer() -> None:
        time.sleep(0.2)
        http.json(
            "PATCH",
            f"{CM}/t",
            {"metadata": {"labels": {"app": "yes"}}},
            content_type="application/merge-patch+json",
        )
        http.json(
            "PATCH", f"{CM}/t", {"data": {"k": "v"}}, content_type="application/merge-patch+json"
        )
        http.json(
            "PATCH",
            f"{CM}/t",
            {"metadata": {"labels": {"app": "no"}}},
            content_type="application/merge-patch+json",
        )

    t = threading.Thread(target=writer)
    t.start()
    events = _stream(
        f"{k8s_emulator.url}{CM}?watch=1&labelSelector=app%3Dyes&resourceVersion={rv}&timeoutSeconds=1"
    )
    t.join()
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]


def test_watch_of_single_item(k8s_emulator: KubernetesEmulator, http: Http) -> None:
    http.json("POST", CM, {"metadata": {"name": "one"}})
    http.json("POST", CM, {"metadata": {"name": "two"}})
    events = _stream(
        f"{k8s_emulator.url}{CM}?watch=true&fieldSelector=metadata.name%3Dtwo&timeoutSeconds=1"
    )
    assert [e["object"]["metadata"]["name"] for e in events] == ["two"]


def test_too_old_resource_version_is_gone(k8s_emulator: KubernetesEmulator, http: Http) -> None:
    store = k8s_emulator.core.store
    store._max_events = 10  # force the event log to be compacted quickly
    for i in range(30):
        http.json("POST", CM, {"metadata": {"name": f"c{i}"}})
    events = _stream(f"{k8s_emulator.url}{CM}?watch=1&resourceVersion=1001&timeoutSeconds=1")
    assert len(events) == 1
    assert events[0]["type"] == "ERROR"
    assert events[0]["object"]["code"] == 410
    assert events[0]["object"]["reason"] == "Expired"


def test_watch_ends_at_timeout_seconds(k8s_emulator: KubernetesEmulator) -> None:
    start = time.monotonic()
    events = _stream(f"{k8s_emulator.url}{CM}?watch=1&resourceVersion=0&timeoutSeconds=1")
    assert events == []
    assert time.monotonic() - start < 5


def test_stop_ends_open_watches(k8s_emulator_factory: Any) -> None:
    emu = k8s_emulator_factory()
    result: list[Any] = []

    def reader() -> None:
        try:
            result.append(_stream(f"{emu.url}{CM}?watch=1&timeoutSeconds=60", timeout=30))
        except Exception as exc:  # a dropped connection is fine too
            result.append(exc)

    t = threading.Thread(target=reader)
    t.start()
    time.sleep(0.3)
    emu.stop()
    t.join(timeout=10)
    assert not t.is_alive()

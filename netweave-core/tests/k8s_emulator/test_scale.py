"""The emulator at 10 000+ objects: controllers reconcile per changed object (their children
read from the store's owner index) and a paged list reads its page, so 2 000 Deployments
become 12 000 objects that all reach their wanted state, and the real client pages through
them in order. Bounded: one wait of at most 120 s (it takes a few seconds)."""

from __future__ import annotations

import json
from typing import Any

from kubernetes import client
from netweave.testing.k8s import KubernetesEmulator

DEPLOYMENTS = 2_000


def _deployment(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": f"{name}:1"}]},
            },
        },
    }


def test_ten_thousand_objects_reconciled_and_listed(k8s_emulator: KubernetesEmulator) -> None:
    emu = k8s_emulator
    names = [f"web{i:05d}" for i in range(DEPLOYMENTS)]
    # Created in reverse so the stored order is not the insertion order.
    for name in reversed(names):
        emu.create(_deployment(name), validate=False)
    assert emu.wait_idle(timeout=120), "controllers did not settle within 120 s"
    assert not emu.controllers.errors

    store = emu.core.store
    counts = {kind: store.count(("apps", kind)) for kind in ("deployments", "replicasets")}
    pods, events = store.count(("", "pods")), store.count(("", "events"))
    assert counts == {"deployments": DEPLOYMENTS, "replicasets": DEPLOYMENTS}
    assert pods == DEPLOYMENTS and events >= DEPLOYMENTS
    assert sum(counts.values()) + pods + events >= 10_000

    api = emu.kubernetes_client()
    apps = client.AppsV1Api(api)
    # Pages of 500 through the real client (raw JSON: the client's model decoding of 2 000
    # Deployments would dominate the test): every Deployment once, in name order, each one
    # Available with its one Pod ready.
    seen: list[str] = []
    token: str | None = None
    for _ in range(DEPLOYMENTS // 500 + 2):  # bounded
        raw = apps.list_namespaced_deployment(
            "default", limit=500, _continue=token, _preload_content=False
        )
        page = json.loads(raw.data)
        for dep in page["items"]:
            seen.append(dep["metadata"]["name"])
            status = dep["status"]
            assert status["readyReplicas"] == 1, dep["metadata"]["name"]
            available = [c for c in status["conditions"] if c["type"] == "Available"]
            assert available and available[0]["status"] == "True", dep["metadata"]["name"]
        token = page["metadata"].get("continue")
        if not token:
            break
        assert page["metadata"]["remainingItemCount"] == DEPLOYMENTS - len(seen)
    assert seen == names

    # Each Pod belongs to its own ReplicaSet, which belongs to its Deployment.
    core = client.CoreV1Api(api)
    pod_list = core.list_namespaced_pod("default", label_selector="app=web01234")
    assert len(pod_list.items) == 1
    owner = pod_list.items[0].metadata.owner_references[0]
    assert owner.kind == "ReplicaSet" and owner.name.startswith("web01234-")

    # A delete cascades through the owner index to exactly that Deployment's children.
    apps.delete_namespaced_deployment("web01234", "default")
    assert emu.wait_idle(timeout=30)
    assert core.list_namespaced_pod("default", label_selector="app=web01234").items == []
    assert store.count(("apps", "replicasets")) == DEPLOYMENTS - 1
    assert store.count(("", "pods")) == DEPLOYMENTS - 1

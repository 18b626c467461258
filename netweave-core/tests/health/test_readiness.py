"""The per-kind readiness rules and the desired-vs-live comparison (pure functions)."""

from __future__ import annotations

from typing import Any

import pytest
from netweave.health.diff import differences, unified
from netweave.health.readiness import (
    MAX_CLAIMS,
    label_selector_matches,
    readiness,
    relations,
    summary,
)


def deployment(want: int = 2, generation: int = 3, **status: Any) -> dict[str, Any]:
    return {
        "kind": "Deployment",
        "metadata": {"name": "web", "generation": generation},
        "spec": {"replicas": want},
        "status": status,
    }


@pytest.mark.parametrize(
    ("obj", "ready", "reason"),
    [
        (
            deployment(observedGeneration=3, updatedReplicas=2, replicas=2, availableReplicas=2),
            True,
            None,
        ),
        # A status written for an older spec says nothing about this one.
        (
            deployment(observedGeneration=2, updatedReplicas=2, replicas=2, availableReplicas=2),
            False,
            "ObservedGenerationStale",
        ),
        (
            deployment(observedGeneration=3, updatedReplicas=2, replicas=2, availableReplicas=1),
            False,
            "ReplicasUnavailable",
        ),
        (
            deployment(observedGeneration=3, updatedReplicas=1, replicas=2, availableReplicas=2),
            False,
            "RolloutInProgress",
        ),
        (
            deployment(observedGeneration=3, updatedReplicas=2, replicas=3, availableReplicas=2),
            False,
            "OldReplicasPending",
        ),
        (deployment(want=0, observedGeneration=3), True, None),
        (
            {
                "kind": "StatefulSet",
                "metadata": {"generation": 1},
                "spec": {"replicas": 2},
                "status": {
                    "observedGeneration": 1,
                    "readyReplicas": 1,
                    "updatedReplicas": 2,
                    "currentRevision": "a",
                    "updateRevision": "a",
                },
            },
            False,
            "ReplicasNotReady",
        ),
        (
            {
                "kind": "DaemonSet",
                "metadata": {"generation": 1},
                "status": {
                    "observedGeneration": 1,
                    "desiredNumberScheduled": 3,
                    "updatedNumberScheduled": 3,
                    "numberAvailable": 3,
                },
            },
            True,
            None,
        ),
        (
            {"kind": "Job", "status": {"conditions": [{"type": "Complete", "status": "True"}]}},
            True,
            None,
        ),
        (
            {
                "kind": "Job",
                "status": {
                    "conditions": [
                        {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}
                    ]
                },
            },
            False,
            "BackoffLimitExceeded",
        ),
        ({"kind": "Job", "status": {"active": 1}}, False, "JobRunning"),
        ({"kind": "PersistentVolumeClaim", "status": {"phase": "Bound"}}, True, None),
        ({"kind": "PersistentVolumeClaim", "status": {"phase": "Pending"}}, False, "ClaimPending"),
        (
            {
                "kind": "Pod",
                "status": {
                    "phase": "Running",
                    "conditions": [{"type": "Ready", "status": "False"}],
                    "containerStatuses": [
                        {
                            "name": "app",
                            "ready": False,
                            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                        }
                    ],
                },
            },
            False,
            "CrashLoopBackOff",
        ),
        ({"kind": "Pod", "status": {"phase": "Succeeded"}}, True, None),
        (
            {
                "kind": "HorizontalPodAutoscaler",
                "status": {
                    "conditions": [
                        {"type": "ScalingActive", "status": "False", "reason": "FailedGetMetrics"}
                    ]
                },
            },
            False,
            "FailedGetMetrics",
        ),
        (
            {
                "kind": "Certificate",
                "status": {
                    "conditions": [{"type": "Ready", "status": "False", "reason": "Pending"}]
                },
            },
            False,
            "Pending",
        ),
        ({"kind": "ConfigMap", "data": {}}, True, None),
        (None, False, "NotFound"),
    ],
)
def test_each_kind_by_its_own_rule(obj: Any, ready: bool, reason: str | None) -> None:
    state = readiness(obj)
    assert (state.ready, state.reason) == (ready, reason), state


def test_a_service_needs_a_ready_pod_behind_its_selector() -> None:
    service = {"kind": "Service", "spec": {"selector": {"app": "web"}}}
    pod = {
        "metadata": {"labels": {"app": "web"}},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    }
    unready = {"metadata": {"labels": {"app": "web"}}, "status": {"phase": "Pending"}}
    other = dict(pod, metadata={"labels": {"app": "db"}})
    assert readiness(service, [pod]).ready is True
    assert readiness(service, [unready, other]).reason == "NoEndpoints"
    assert readiness(service, None).ready is None  # Pods unknown: not judged
    assert readiness({"kind": "Service", "spec": {}}, []).ready is True  # no selector
    lb = {"kind": "Service", "spec": {"type": "LoadBalancer", "selector": {"app": "web"}}}
    assert readiness(lb, [pod]).reason == "LoadBalancerPending"


def test_summary_names_what_is_not_ready() -> None:
    ok = readiness({"kind": "ConfigMap"})
    bad = readiness(None)
    assert summary([("ConfigMap", "a", ok)]) == (True, None)
    ready, message = summary([("ConfigMap", "a", ok), ("Deployment", "web", bad)])
    assert ready is False and message is not None and "Deployment web: NotFound" in message


def test_only_what_the_manifest_sets_is_compared() -> None:
    desired = {
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "replicas": 2,
            "template": {"spec": {"containers": [{"name": "c", "image": "i:1"}]}},
        },
    }
    live = {
        "kind": "Deployment",
        "metadata": {"name": "web", "uid": "u", "resourceVersion": "7", "labels": {"app": "web"}},
        "spec": {
            "replicas": 2,
            "strategy": {"type": "RollingUpdate"},
            "template": {
                "spec": {"containers": [{"name": "c", "image": "i:1", "imagePullPolicy": "Always"}]}
            },
        },
        "status": {"replicas": 2},
    }
    assert differences(desired, live) == []
    assert unified(desired, live, "deployment/web") == ""
    live["spec"]["template"]["spec"]["containers"][0]["image"] = "i:2"
    live["metadata"]["labels"] = {}
    assert set(differences(desired, live)) == {
        ".spec.template.spec.containers[0].image",
        ".metadata.labels.app",
    }
    text = unified(desired, live, "deployment/web")
    assert "-      - image: i:1" in text and "+      - image: i:2" in text


def test_a_manifest_value_shared_by_a_yaml_alias_is_rendered_in_full() -> None:
    # What yaml.safe_load makes of "labels: &l {app: web}" ... "labels: *l": one dict in two
    # places. The live object never shares; an "&id001" on the desired side only would show
    # an identical object as modified.
    labels = {"app": "web"}
    desired = {
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": labels},
        "spec": {"template": {"metadata": {"labels": labels}}},
    }
    live = {
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}, "uid": "u"},
        "spec": {"template": {"metadata": {"labels": {"app": "web"}}}},
    }
    assert unified(desired, live, "deployment/web") == ""
    live["spec"]["template"]["metadata"]["labels"] = {"app": "other"}  # type: ignore[index]
    text = unified(desired, live, "deployment/web")
    assert "&id" not in text and "*id" not in text
    assert "-        app: web\n+        app: other\n" in text


# -- relations: what a workload mounts, what a Service or NetworkPolicy selects ----------------


def _pod_spec(*volumes: dict[str, Any]) -> dict[str, Any]:
    return {"containers": [{"name": "c", "image": "i"}], "volumes": list(volumes)}


_CLAIM = {"name": "data", "persistentVolumeClaim": {"claimName": "web-data"}}
_CONFIG = {"name": "cfg", "configMap": {"name": "web-cfg"}}
_LABELS = {"app": "web", "tier": "front"}


@pytest.mark.parametrize("kind", ["Deployment", "DaemonSet", "ReplicaSet", "Job"])
def test_a_workload_relates_its_pod_templates_claims_and_labels(kind: str) -> None:
    obj = {
        "kind": kind,
        "metadata": {"name": "web", "labels": {"chart": "x"}},
        "spec": {"template": {"metadata": {"labels": _LABELS}, "spec": _pod_spec(_CLAIM, _CONFIG)}},
    }
    found = relations(obj)
    # The template's labels (what its pods carry), not the workload's own.
    assert found.claims == ("web-data",) and found.pod_labels == _LABELS
    assert found.selector is None
    assert found.fields() == {"claims": ["web-data"], "pod_labels": _LABELS, "selector": None}


def test_a_cronjob_relates_its_job_templates_pods() -> None:
    template = {"metadata": {"labels": _LABELS}, "spec": _pod_spec(_CLAIM)}
    obj = {"kind": "CronJob", "metadata": {"name": "nightly"},
           "spec": {"jobTemplate": {"spec": {"template": template}}}}  # fmt: skip
    assert relations(obj).claims == ("web-data",)
    assert relations(obj).pod_labels == _LABELS


def test_a_statefulset_claims_one_volume_per_replica_and_template() -> None:
    obj = {
        "kind": "StatefulSet",
        "metadata": {"name": "db"},
        "spec": {
            "replicas": 2,
            "template": {"metadata": {"labels": {"app": "db"}}, "spec": _pod_spec(_CLAIM)},
            "volumeClaimTemplates": [
                {"metadata": {"name": "pgdata"}},
                {"metadata": {"name": "wal"}},
            ],
        },
    }
    found = relations(obj)
    assert found.claims == ("web-data", "pgdata-db-0", "pgdata-db-1", "wal-db-0", "wal-db-1")
    assert found.pod_labels == {"app": "db"}
    # Replicas absent: one; a huge count is bounded.
    del obj["spec"]["replicas"]  # type: ignore[attr-defined]
    assert relations(obj).claims == ("web-data", "pgdata-db-0", "wal-db-0")
    obj["spec"]["replicas"] = 10**6  # type: ignore[index]
    assert len(relations(obj).claims or ()) == 1 + 2 * MAX_CLAIMS


def test_a_pod_relates_its_own_labels_and_claims() -> None:
    ephemeral = {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}}
    obj = {"kind": "Pod", "metadata": {"name": "p", "labels": _LABELS},
           "spec": _pod_spec(_CLAIM, ephemeral, _CONFIG)}  # fmt: skip
    assert relations(obj).claims == ("web-data", "p-scratch")
    assert relations(obj).pod_labels == _LABELS
    bare = relations({"kind": "Pod", "metadata": {"name": "q"}, "spec": {"containers": []}})
    assert bare.claims == () and bare.pod_labels == {}


def test_a_service_selects_by_its_selector_and_none_without_one() -> None:
    service = {"kind": "Service", "metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}}}
    found = relations(service)
    assert found.selector == {"matchLabels": {"app": "web"}}
    assert found.claims is None and found.pod_labels is None
    assert label_selector_matches(found.selector, _LABELS)
    assert not label_selector_matches(found.selector, {"app": "db"})
    # No selector (endpoints managed by hand), ExternalName: it selects no pod.
    assert relations({"kind": "Service", "spec": {"ports": []}}).selector is None
    assert relations({"kind": "Service", "spec": {"type": "ExternalName"}}).selector is None


def test_a_network_policy_selects_by_its_pod_selector() -> None:
    policy = {
        "kind": "NetworkPolicy",
        "metadata": {"name": "deny"},
        "spec": {"podSelector": {"matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["front", "edge"]},
            {"key": "legacy", "operator": "DoesNotExist"},
        ]}},
    }  # fmt: skip
    selector = relations(policy).selector
    assert selector is not None
    assert label_selector_matches(selector, _LABELS)
    assert not label_selector_matches(selector, {**_LABELS, "legacy": "1"})
    assert not label_selector_matches(selector, {"tier": "back"})
    # An empty podSelector: every pod of the namespace.
    everyone = relations({"kind": "NetworkPolicy", "spec": {"podSelector": {}}}).selector
    assert everyone == {} and label_selector_matches(everyone, {})


@pytest.mark.parametrize(
    ("expression", "labels", "matches"),
    [
        ({"key": "a", "operator": "NotIn", "values": ["1"]}, {"a": "2"}, True),
        ({"key": "a", "operator": "NotIn", "values": ["1"]}, {"a": "1"}, False),
        ({"key": "a", "operator": "NotIn", "values": ["1"]}, {}, True),
        ({"key": "a", "operator": "Exists"}, {"a": ""}, True),
        ({"key": "a", "operator": "Exists"}, {}, False),
        ({"key": "a", "operator": "In", "values": ["1"]}, {}, False),
        # An operator it does not know selects nothing rather than everything.
        ({"key": "a", "operator": "Gt", "values": ["1"]}, {"a": "2"}, False),
    ],
)
def test_label_selector_expressions(
    expression: dict[str, Any], labels: dict[str, str], matches: bool
) -> None:
    assert label_selector_matches({"matchExpressions": [expression]}, labels) is matches


def test_other_kinds_relate_nothing() -> None:
    found = relations({"kind": "ConfigMap", "metadata": {"name": "c"}})
    assert found.fields() == {"claims": None, "pod_labels": None, "selector": None}

"""Readiness of Kubernetes objects by each kind's own rule, written once for every adapter that
reads Kubernetes objects (Helm, Flux).

Each rule takes the object as the API server returns it (a JSON mapping, camelCase) and answers
a :class:`Readiness`: ``ready`` True/False with a short ``reason`` (CamelCase, like Kubernetes'
own condition reasons) and a ``message`` when not, and ``failed`` when the object itself says it
will not get there (a Job that failed, a Deployment past its progress deadline, a Pod that
ended in ``Failed``). The rules follow what the kind's controller publishes, always at the
current ``metadata.generation`` (a status the controller wrote for an older spec says nothing
about this one):

* Deployment: ``updatedReplicas``, ``availableReplicas`` ≥ ``spec.replicas`` and no old
  replicas left; ``ProgressDeadlineExceeded`` is a failure;
* StatefulSet: ``readyReplicas`` (and ``availableReplicas`` when published) ≥ replicas, and for
  a rolling update ``updatedReplicas`` ≥ replicas with ``currentRevision == updateRevision``;
* DaemonSet: ``numberAvailable`` and ``updatedNumberScheduled`` ≥ ``desiredNumberScheduled``;
* ReplicaSet: ``availableReplicas`` ≥ replicas;
* Job: condition ``Complete`` (ready) or ``Failed`` (failed); running otherwise;
* Pod: ``Succeeded``, or ``Running`` with condition ``Ready``; ``Failed`` is a failure;
  otherwise the waiting containers' reasons (``CrashLoopBackOff``…);
* PersistentVolumeClaim: phase ``Bound``;
* Service: ``ExternalName`` and selector-less Services are ready; a ``LoadBalancer`` needs an
  ingress address; a Service with a selector needs an endpoint: a ready Pod it selects (what
  the endpoints controller publishes), or any selected Pod with ``publishNotReadyAddresses``;
* HorizontalPodAutoscaler: conditions ``AbleToScale`` and ``ScalingActive`` not ``False``;
* any other kind with ``status.conditions``: ``Ready`` (or ``Available``) ``True``; ``Stalled``
  ``True`` is a failure;
* any other kind: present is ready (a ConfigMap has nothing more to say).

A missing object is not ready (``NotFound``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

JSON = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool | None
    reason: str | None = None
    message: str | None = None
    #: The object says it will not become ready by itself (a failed Job …).
    failed: bool = False


READY = Readiness(ready=True)


def _not(reason: str, message: str, *, failed: bool = False) -> Readiness:
    return Readiness(ready=False, reason=reason, message=message, failed=failed)


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _status(obj: JSON) -> JSON:
    status = obj.get("status")
    return status if isinstance(status, Mapping) else {}


def _spec(obj: JSON) -> JSON:
    spec = obj.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def conditions(obj: JSON) -> dict[str, JSON]:
    """``status.conditions`` by type."""
    found: dict[str, JSON] = {}
    for cond in _status(obj).get("conditions") or []:
        if isinstance(cond, Mapping) and isinstance(cond.get("type"), str):
            found[cond["type"]] = cond
    return found


def _is(cond: JSON | None, value: str) -> bool:
    return cond is not None and str(cond.get("status")) == value


def _stale(obj: JSON) -> Readiness | None:
    """Not ready while the controller has not observed the current generation."""
    generation = (obj.get("metadata") or {}).get("generation")
    observed = _status(obj).get("observedGeneration")
    if generation is None:
        return None
    if observed is None or _int(observed) < _int(generation):
        return _not(
            "ObservedGenerationStale",
            f"the controller has not observed generation {generation} yet "
            f"(observed {observed if observed is not None else 'none'})",
        )
    return None


def _deployment(obj: JSON, _: Sequence[JSON] | None) -> Readiness:
    stale = _stale(obj)
    if stale is not None:
        return stale
    spec, status = _spec(obj), _status(obj)
    want = _int(spec.get("replicas"), 1)
    progressing = conditions(obj).get("Progressing")
    if progressing is not None and progressing.get("reason") == "ProgressDeadlineExceeded":
        return _not(
            "ProgressDeadlineExceeded",
            str(progressing.get("message") or "the rollout exceeded its progress deadline"),
            failed=True,
        )
    updated = _int(status.get("updatedReplicas"))
    if updated < want:
        return _not("RolloutInProgress", f"{updated} of {want} replicas updated")
    total = _int(status.get("replicas"))
    if total > updated:
        return _not("OldReplicasPending", f"{total - updated} old replicas pending termination")
    available = _int(status.get("availableReplicas"))
    if available < want:
        return _not("ReplicasUnavailable", f"{available} of {want} replicas available")
    return READY


def _statefulset(obj: JSON, _: Sequence[JSON] | None) -> Readiness:
    stale = _stale(obj)
    if stale is not None:
        return stale
    spec, status = _spec(obj), _status(obj)
    want = _int(spec.get("replicas"), 1)
    strategy = (spec.get("updateStrategy") or {}).get("type", "RollingUpdate")
    if strategy == "RollingUpdate":
        partition = _int(
            ((spec.get("updateStrategy") or {}).get("rollingUpdate") or {}).get("partition")
        )
        updated = _int(status.get("updatedReplicas"))
        if updated < want - partition:
            return _not("RolloutInProgress", f"{updated} of {want} replicas updated")
        update_rev, current_rev = status.get("updateRevision"), status.get("currentRevision")
        if not partition and update_rev and current_rev and update_rev != current_rev:
            return _not("RolloutInProgress", f"revision {update_rev} not rolled out yet")
    ready = _int(status.get("readyReplicas"))
    if ready < want:
        return _not("ReplicasNotReady", f"{ready} of {want} replicas ready")
    if "availableReplicas" in status and _int(status.get("availableReplicas")) < want:
        return _not(
            "ReplicasUnavailable", f"{_int(status.get('availableReplicas'))} of {want} available"
        )
    return READY


def _daemonset(obj: JSON, _: Sequence[JSON] | None) -> Readiness:
    stale = _stale(obj)
    if stale is not None:
        return stale
    status = _status(obj)
    want = _int(status.get("desiredNumberScheduled"))
    updated = _int(status.get("updatedNumberScheduled"))
    if updated < want:
        return _not("RolloutInProgress", f"{updated} of {want} pods updated")
    available = _int(status.get("numberAvailable"))
    if available < want:
        return _not("PodsUnavailable", f"{available} of {want} pods available")
    return READY


def _replicaset(obj: JSON, _: Sequence[JSON] | None) -> Readiness:
    stale = _stale(obj)
    if stale is not None:
        return stale
    want = _int(_spec(obj).get("replicas"), 1)
    available = _int(_status(obj).get("availableReplicas"))
    if available < want:
        return _not("ReplicasUnavailable", f"{available} of {want} replicas available")
    return READY


def _job(obj: JSON, _: Sequence[JSON] | None) -> Readiness:
    conds = conditions(obj)
    if _is(conds.get("Failed"), "True"):
        failed = conds["Failed"]
        return _not(
            str(failed.get("reason") or "JobFailed"),
            str(failed.get("message") or "the job failed"),
            failed=True,
        )
    if _is(conds.get("Complete"), "True"):
        return READY
    active = _int(_status(obj).get("active"))
    return _not("JobRunning", f"the job has not completed ({active} active pods)")


def _waiting_reasons(pod: JSON) -> list[str]:
    reasons: list[str] = []
    for cs in _status(pod).get("containerStatuses") or []:
        if not isinstance(cs, Mapping) or cs.get("ready"):
            continue
        state = cs.get("state") or {}
        waiting = state.get("waiting") if isinstance(state, Mapping) else None
        if isinstance(waiting, Mapping) and waiting.get("reason"):
            reasons.append(f"{cs.get('name')}: {waiting['reason']}")
        else:
            reasons.append(f"{cs.get('name')}: not ready")
    return reasons


def pod_ready(pod: JSON) -> bool:
    return _status(pod).get("phase") == "Running" and _is(conditions(pod).get("Ready"), "True")


def _pod(obj: JSON, _: Sequence[JSON] | None) -> Readiness:
    phase = _status(obj).get("phase")
    if phase == "Succeeded":
        return READY
    if phase == "Failed":
        return _not(
            str(_status(obj).get("reason") or "PodFailed"),
            str(_status(obj).get("message") or "the pod failed"),
            failed=True,
        )
    if pod_ready(obj):
        return READY
    waiting = _waiting_reasons(obj)
    reason = "ContainersNotReady"
    if any("CrashLoopBackOff" in w for w in waiting):
        reason = "CrashLoopBackOff"
    return _not(
        reason, f"phase {phase or 'unknown'}" + (f"; {', '.join(waiting)}" if waiting else "")
    )


def _pvc(obj: JSON, _: Sequence[JSON] | None) -> Readiness:
    phase = _status(obj).get("phase")
    if phase == "Bound":
        return READY
    if phase == "Lost":
        return _not("ClaimLost", "the claim lost its volume", failed=True)
    return _not("ClaimPending", f"phase {phase or 'Pending'}, not Bound")


def selects(selector: JSON, obj: JSON) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return all(labels.get(k) == v for k, v in selector.items())


def _service(obj: JSON, pods: Sequence[JSON] | None) -> Readiness:
    spec = _spec(obj)
    kind = spec.get("type") or "ClusterIP"
    if kind == "ExternalName":
        return READY
    if kind == "LoadBalancer":
        ingress = ((_status(obj).get("loadBalancer") or {}).get("ingress")) or []
        if not ingress:
            return _not("LoadBalancerPending", "no load balancer address yet")
    selector = spec.get("selector")
    if not isinstance(selector, Mapping) or not selector:
        return READY  # endpoints are managed by hand: nothing to check
    if pods is None:
        return Readiness(ready=None)
    selected = [p for p in pods if selects(selector, p)]
    if spec.get("publishNotReadyAddresses") and selected:
        return READY
    if any(pod_ready(p) for p in selected):
        return READY
    return _not(
        "NoEndpoints",
        f"no ready pod matches its selector ({len(selected)} selected, none ready)",
    )


def _hpa(obj: JSON, _: Sequence[JSON] | None) -> Readiness:
    conds = conditions(obj)
    for kind in ("AbleToScale", "ScalingActive"):
        cond = conds.get(kind)
        if _is(cond, "False"):
            assert cond is not None
            return _not(str(cond.get("reason") or kind), str(cond.get("message") or kind))
    return READY


def _by_conditions(obj: JSON, _: Sequence[JSON] | None) -> Readiness:
    conds = conditions(obj)
    if not conds:
        return READY  # nothing published: present is all it says
    stalled = conds.get("Stalled")
    if _is(stalled, "True"):
        assert stalled is not None
        return _not(
            str(stalled.get("reason") or "Stalled"),
            str(stalled.get("message") or "stalled"),
            failed=True,
        )
    for kind in ("Ready", "Available"):
        cond = conds.get(kind)
        if cond is None:
            continue
        if _is(cond, "True"):
            stale = _stale(obj)
            return stale if stale is not None else READY
        return _not(
            str(cond.get("reason") or f"Not{kind}"),
            str(cond.get("message") or f"condition {kind} is {cond.get('status')}"),
        )
    return READY


Rule = Callable[[JSON, Sequence[JSON] | None], Readiness]

#: The per-kind rules, by ``kind`` (the API group does not change the rule for these names).
RULES: Mapping[str, Rule] = {
    "Deployment": _deployment,
    "StatefulSet": _statefulset,
    "DaemonSet": _daemonset,
    "ReplicaSet": _replicaset,
    "Job": _job,
    "Pod": _pod,
    "PersistentVolumeClaim": _pvc,
    "Service": _service,
    "HorizontalPodAutoscaler": _hpa,
}

#: Kinds whose rule needs the Pods of the namespace (the Service's endpoints).
NEEDS_PODS = frozenset({"Service"})

MISSING = Readiness(ready=False, reason="NotFound", message="the object does not exist")


def readiness(obj: JSON | None, pods: Sequence[JSON] | None = None) -> Readiness:
    """``obj``'s readiness by its kind's rule (``None``: the object does not exist).

    ``pods``: the Pods of the object's namespace, for the Service rule (``None``: unknown, the
    Service's readiness is then ``None``)."""
    if obj is None:
        return MISSING
    kind = str(obj.get("kind") or "")
    rule = RULES.get(kind, _by_conditions)
    return rule(obj, pods)


def summary(items: Iterable[tuple[str, str, Readiness]]) -> tuple[bool | None, str | None]:
    """A deployment's readiness from its resources' ``(kind, name, readiness)``: ``False`` when
    any is not ready (with a message naming them), ``True`` when all are, ``None`` when none
    could be judged."""
    judged = False
    problems: list[str] = []
    for kind, name, state in items:
        if state.ready is None:
            continue
        judged = True
        if not state.ready:
            problems.append(
                f"{kind} {name}: {state.reason}" + (f" ({state.message})" if state.message else "")
            )
    if problems:
        more = f" and {len(problems) - 3} more" if len(problems) > 3 else ""
        return False, "not ready: " + "; ".join(problems[:3]) + more
    return (True, None) if judged else (None, None)


# -- what a workload mounts and what a Service or NetworkPolicy selects ------------------------

#: Bound on the claims named for one StatefulSet's volumeClaimTemplates (one per replica).
MAX_CLAIMS = 1024

#: Where each workload kind keeps its pod template.
_TEMPLATE_PATHS: Mapping[str, tuple[str, ...]] = {
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}


@dataclass(frozen=True, slots=True)
class Relations:
    """How an object links to others: ``claims`` (the PersistentVolumeClaims its pods mount),
    ``pod_labels`` (the labels of the pods it makes) and ``selector`` (the pods a Service or
    NetworkPolicy selects, as a Kubernetes ``LabelSelector``: ``matchLabels`` and
    ``matchExpressions``). ``None``: not a kind that has it."""

    claims: tuple[str, ...] | None = None
    pod_labels: Mapping[str, str] | None = None
    selector: Mapping[str, Any] | None = None

    def fields(self) -> dict[str, Any]:
        """As ``ResourceStatus``'s fields (``claims``, ``pod_labels``, ``selector``)."""
        return {
            "claims": None if self.claims is None else list(self.claims),
            "pod_labels": None if self.pod_labels is None else dict(self.pod_labels),
            "selector": None if self.selector is None else dict(self.selector),
        }


def _at(obj: JSON, path: Sequence[str]) -> JSON | None:
    node: Any = obj
    for key in path:
        node = node.get(key) if isinstance(node, Mapping) else None
    return node if isinstance(node, Mapping) else None


def _labels(meta: Any) -> dict[str, str]:
    labels = meta.get("labels") if isinstance(meta, Mapping) else None
    if not isinstance(labels, Mapping):
        return {}
    return {str(k): str(v) for k, v in labels.items()}


def _pod_claims(pod_spec: JSON | None, pod_name: str | None) -> list[str]:
    claims: list[str] = []
    for volume in (pod_spec or {}).get("volumes") or []:
        if not isinstance(volume, Mapping):
            continue
        pvc = volume.get("persistentVolumeClaim")
        if isinstance(pvc, Mapping) and pvc.get("claimName"):
            claims.append(str(pvc["claimName"]))
        elif isinstance(volume.get("ephemeral"), Mapping) and pod_name and volume.get("name"):
            # A generic ephemeral volume's claim is named <pod>-<volume> (known for a Pod only).
            claims.append(f"{pod_name}-{volume['name']}")
    return claims


def relations(obj: JSON) -> Relations:
    """What ``obj`` (a live object as the API server returns it) mounts or selects.

    * a workload (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob): its pod
      template's labels and ``volumes[].persistentVolumeClaim.claimName``; a StatefulSet also
      claims ``<template>-<statefulset>-<ordinal>`` per replica for each volumeClaimTemplate
      (at most :data:`MAX_CLAIMS` replicas);
    * a Pod: its own labels and claims (a generic ephemeral volume's ``<pod>-<volume>`` too);
    * a Service: ``spec.selector`` as ``matchLabels`` (none: it selects no pod — its endpoints
      are managed by hand);
    * a NetworkPolicy: ``spec.podSelector`` (empty: every pod of its namespace).
    """
    kind = str(obj.get("kind") or "")
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), Mapping) else {}
    name = str((meta or {}).get("name") or "")
    if kind == "Pod":
        return Relations(claims=tuple(_pod_claims(_spec(obj), name)), pod_labels=_labels(meta))
    if kind in _TEMPLATE_PATHS:
        template = _at(obj, _TEMPLATE_PATHS[kind]) or {}
        claims = _pod_claims(_at(template, ("spec",)), None)
        if kind == "StatefulSet":
            replicas = min(max(_int(_spec(obj).get("replicas"), 1), 0), MAX_CLAIMS)
            for tpl in _spec(obj).get("volumeClaimTemplates") or []:
                tpl_name = (
                    (tpl.get("metadata") or {}).get("name") if isinstance(tpl, Mapping) else None
                )
                if tpl_name:
                    claims.extend(f"{tpl_name}-{name}-{i}" for i in range(replicas))
        return Relations(claims=tuple(claims), pod_labels=_labels(template.get("metadata")))
    if kind == "Service":
        selector = _spec(obj).get("selector")
        if isinstance(selector, Mapping) and selector:
            return Relations(
                selector={"matchLabels": {str(k): str(v) for k, v in selector.items()}}
            )
        return Relations()
    if kind == "NetworkPolicy":
        pod_selector = _spec(obj).get("podSelector")
        return Relations(selector=dict(pod_selector) if isinstance(pod_selector, Mapping) else {})
    return Relations()


def label_selector_matches(selector: JSON, labels: Mapping[str, str]) -> bool:
    """Whether a Kubernetes ``LabelSelector`` selects ``labels`` (an empty one selects all;
    an operator it does not know selects nothing)."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        if not isinstance(expression, Mapping):
            return False
        key, operator = expression.get("key"), expression.get("operator")
        if not isinstance(key, str):
            return False
        values = expression.get("values") or []
        if operator == "In":
            ok = key in labels and labels[key] in values
        elif operator == "NotIn":
            ok = key not in labels or labels[key] not in values
        elif operator == "Exists":
            ok = key in labels
        elif operator == "DoesNotExist":
            ok = key not in labels
        else:
            ok = False
        if not ok:
            return False
    return True


__all__ = [
    "MAX_CLAIMS",
    "MISSING",
    "NEEDS_PODS",
    "READY",
    "RULES",
    "Readiness",
    "Relations",
    "conditions",
    "label_selector_matches",
    "pod_ready",
    "readiness",
    "relations",
    "selects",
    "summary",
]

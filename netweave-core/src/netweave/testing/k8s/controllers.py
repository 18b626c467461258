"""Pluggable controllers: a work queue plus default reconcilers for built-in workloads.

Controllers run in one background thread fed by the store's write events, like
real controllers fed by informers. A reconciler is a callable
``(ctx, obj) -> None | float``; returning a number requeues the object after
that many seconds.

Default behaviour (per object, overridable):

* ``ready`` - Deployments, ReplicaSets, StatefulSets and DaemonSets get Pods
  that become Running and Ready (with log lines); Jobs complete; Pods with
  ``restartPolicy: Never``/``OnFailure`` succeed (so ``helm test`` passes).
* ``unready`` - Pods run but never become Ready.
* ``fail`` - Pods crash (or fail, for run-to-completion Pods), Jobs fail,
  Deployments report ``ProgressDeadlineExceeded``.
* ``hang`` - nothing happens: no Pods, no status.

Choose a behaviour with the annotation ``k8s-emulator.netweave.io/behavior``
on the workload (or its Pod template), ``k8s-emulator.netweave.io/ready-after``
(seconds) to delay readiness, or :meth:`ControllerManager.set_behavior`.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import heapq
import json
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from netweave.testing.k8s.errors import ApiError
from netweave.testing.k8s.resources import Resource
from netweave.testing.k8s.selectors import labels_match, selector_from_label_selector
from netweave.testing.k8s.util import (
    JSONDict,
    clone,
    clone_obj,
    now_rfc3339,
    random_hex,
    random_suffix,
)

if TYPE_CHECKING:
    from netweave.testing.k8s.api import ApiCore

ANNOTATION_BEHAVIOR = "k8s-emulator.netweave.io/behavior"
ANNOTATION_READY_AFTER = "k8s-emulator.netweave.io/ready-after"
ANNOTATION_LOGS = "k8s-emulator.netweave.io/logs"
BEHAVIORS = ("ready", "unready", "fail", "hang")

Reconciler = Callable[["ControllerContext", JSONDict], "float | None"]
_Key = tuple[str, str, str, str, str]  # (group, version, plural, namespace, name)


@dataclass
class BehaviorRule:
    name: str  # glob on metadata.name
    behavior: str
    kind: str | None = None
    namespace: str | None = None
    ready_after: float = 0.0


class ControllerContext:
    """What a reconciler may do: read and write objects, append pod logs."""

    def __init__(self, manager: ControllerManager) -> None:
        self._m = manager
        self.core: ApiCore = manager.core

    def _res(self, api_version: str, kind: str) -> Resource:
        return self.core.resource_for(api_version, kind)

    def get(self, api_version: str, kind: str, name: str, namespace: str = "") -> JSONDict | None:
        # Copies everywhere: reconcilers may mutate what they get, the store must not change.
        found = self.core.try_get(self._res(api_version, kind), namespace, name)
        return None if found is None else clone_obj(found)

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        selector: JSONDict | None = None,
        owner_uid: str | None = None,
    ) -> list[JSONDict]:
        res = self._res(api_version, kind)
        scope = namespace if res.namespaced else None
        if owner_uid is not None:
            # The store's owner index: a controller reads its children, not the whole kind.
            items = [
                o
                for _, o in self.core.store.owned(owner_uid, res.storage_key)
                if scope is None or (o["metadata"].get("namespace") or "") == scope
            ]
        else:
            items = self.core.store.items(res.storage_key, scope)
        reqs = selector_from_label_selector(selector) if selector is not None else []
        out = []
        for o in items:
            if reqs is None or not labels_match(reqs, o):
                continue
            if owner_uid is not None and not any(
                r.get("uid") == owner_uid for r in (o["metadata"].get("ownerReferences") or [])
            ):
                continue
            out.append(clone_obj(o))
        return out

    def create(self, obj: JSONDict) -> JSONDict:
        from netweave.testing.k8s.api import WriteOptions

        res = self._res(str(obj.get("apiVersion")), str(obj.get("kind")))
        ns = str((obj.get("metadata") or {}).get("namespace") or "")
        return clone_obj(self.core.create(res, ns, obj, WriteOptions(internal=True)))

    def update(self, obj: JSONDict) -> JSONDict:
        from netweave.testing.k8s.api import WriteOptions

        res = self._res(str(obj.get("apiVersion")), str(obj.get("kind")))
        m = obj["metadata"]
        return clone_obj(
            self.core.update(
                res, m.get("namespace") or "", m["name"], obj, WriteOptions(internal=True)
            )
        )

    def set_status(self, obj: JSONDict, status: JSONDict) -> JSONDict:
        """Replace ``status`` (through the status subresource when the kind has one)."""
        from netweave.testing.k8s.api import WriteOptions

        res = self._res(str(obj.get("apiVersion")), str(obj.get("kind")))
        m = obj["metadata"]
        cur = self.core.try_get(res, m.get("namespace") or "", m["name"])
        if cur is None or cur.get("status") == status:
            return clone_obj(cur or obj)
        new = dict(cur)
        new["status"] = status
        new["metadata"] = dict(cur["metadata"])
        new["metadata"].pop("resourceVersion", None)
        sub = "status" if res.status else None
        return self._copy_update(
            res,
            m.get("namespace") or "",
            m["name"],
            new,
            WriteOptions(internal=True),
            subresource=sub,
        )

    def _copy_update(self, *args: Any, **kwargs: Any) -> JSONDict:
        return clone_obj(self.core.update(*args, **kwargs))

    def patch_status(self, obj: JSONDict, changes: JSONDict) -> JSONDict:
        """Merge ``changes`` into the current status."""
        res = self._res(str(obj.get("apiVersion")), str(obj.get("kind")))
        m = obj["metadata"]
        cur = self.core.try_get(res, m.get("namespace") or "", m["name"])
        if cur is None:
            return obj
        status = clone(cur.get("status") or {})
        status.update(clone(changes))
        return self.set_status(cur, status)

    def delete(self, obj: JSONDict) -> None:
        res = self._res(str(obj.get("apiVersion")), str(obj.get("kind")))
        m = obj["metadata"]
        with contextlib.suppress(ApiError):
            self.core.delete(res, m.get("namespace") or "", m["name"])

    def append_log(self, pod: JSONDict, container: str, line: str) -> None:
        m = pod["metadata"]
        self.core.append_log(m.get("namespace") or "", m["name"], container, line)

    def behavior(self, obj: JSONDict) -> tuple[str, float]:
        return self._m.behavior_of(obj)

    def event(self, obj: JSONDict, reason: str, message: str, type_: str = "Normal") -> None:
        """Record a core/v1 Event about ``obj`` (what ``kubectl describe`` shows)."""
        m = obj["metadata"]
        now = now_rfc3339()
        ev = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{m['name']}.{random_hex(16)}",
                "namespace": m.get("namespace") or "default",
            },
            "involvedObject": {
                "apiVersion": obj.get("apiVersion"),
                "kind": obj.get("kind"),
                "name": m["name"],
                "namespace": m.get("namespace") or "",
                "uid": m.get("uid"),
            },
            "reason": reason,
            "message": message,
            "type": type_,
            "source": {"component": "k8s-emulator"},
            "reportingComponent": "k8s-emulator",
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        with contextlib.suppress(ApiError):  # the namespace may be going away
            self.create(ev)

    def age(self, obj: JSONDict) -> float:
        """Seconds since the controllers first saw this object (by uid)."""
        uid = str(obj["metadata"].get("uid"))
        with self._m._cond:
            first = self._m._first_seen.setdefault(uid, time.monotonic())
        return time.monotonic() - first


def conditions(
    old_status: JSONDict | None, wanted: list[tuple[str, str, str, str]]
) -> list[JSONDict]:
    """Build conditions, keeping ``lastTransitionTime`` when a condition did not change.

    Stable timestamps keep reconciles idempotent (no write, no event, no loop).
    """
    old = {
        c.get("type"): c for c in (old_status or {}).get("conditions") or [] if isinstance(c, dict)
    }
    now = now_rfc3339()
    out = []
    for typ, status, reason, message in wanted:
        prev = old.get(typ)
        stamp = (
            prev.get("lastTransitionTime", now) if prev and prev.get("status") == status else now
        )
        cond = {
            "type": typ,
            "status": status,
            "reason": reason,
            "message": message,
            "lastTransitionTime": stamp,
        }
        if (
            prev
            and prev.get("lastUpdateTime")
            and prev.get("status") == status
            and prev.get("reason") == reason
        ):
            cond["lastUpdateTime"] = prev["lastUpdateTime"]
        out.append(cond)
    return out


def _owner_ref(obj: JSONDict) -> JSONDict:
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _template_hash(template: Any) -> str:
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()
    return digest[:10]


def _pod_ready(pod: JSONDict) -> bool:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return bool(c.get("status") == "True")
    return False


def _replicas(obj: JSONDict) -> int:
    r = (obj.get("spec") or {}).get("replicas")
    return 1 if r is None else int(r)


class ControllerManager:
    """Runs reconcilers for kinds; ``emulator.controllers``."""

    def __init__(self, core: ApiCore, *, defaults: bool = True) -> None:
        self.core = core
        self._reconcilers: dict[tuple[str, str], list[Reconciler]] = {}
        self._cond = threading.Condition()
        self._queue: deque[_Key] = deque()  # popleft is O(1); list.pop(0) is O(n)
        self._queued: set[_Key] = set()
        self._delayed: list[tuple[float, _Key]] = []
        self._busy = False
        self._stop = False
        self._thread: threading.Thread | None = None
        self.rules: list[BehaviorRule] = []
        self.errors: list[str] = []
        self._failures: dict[_Key, int] = {}
        self._first_seen: dict[str, float] = {}
        self.ctx = ControllerContext(self)
        core.listeners.append(self._on_event)
        if defaults:
            self.install_defaults()

    # --- registration ---------------------------------------------------------------

    def register(
        self, kind: str, reconcile: Reconciler, *, group: str = "", replace: bool = True
    ) -> None:
        """Run ``reconcile`` for every change of ``kind`` in ``group``.

        With ``replace`` (the default), it replaces the reconcilers already registered
        for that kind, including the default one.
        """
        key = (group, kind)
        with self._cond:
            if replace or key not in self._reconcilers:
                self._reconcilers[key] = [reconcile]
            else:
                self._reconcilers[key].append(reconcile)
        # Reconcile what already exists, as a new controller's initial list would.
        for res in self.core.registry.all():
            if (
                res.group == group
                and res.kind == kind
                and (res.storage_version in (None, res.version))
            ):
                for obj in self.core.store.items(res.storage_key):
                    self.enqueue(res, obj)

    def unregister(self, kind: str, *, group: str = "") -> None:
        with self._cond:
            self._reconcilers.pop((group, kind), None)

    def install_defaults(self) -> None:
        self.register("Deployment", _reconcile_deployment, group="apps")
        self.register("ReplicaSet", _reconcile_replicaset, group="apps")
        self.register("StatefulSet", _reconcile_statefulset, group="apps")
        self.register("DaemonSet", _reconcile_daemonset, group="apps")
        self.register("Job", _reconcile_job, group="batch")
        self.register("Pod", _reconcile_pod)
        self.register("PersistentVolumeClaim", _reconcile_pvc)
        self.register("Service", _reconcile_service)
        self.register("PodDisruptionBudget", _reconcile_pdb, group="policy")

    def set_behavior(
        self,
        name: str,
        behavior: str,
        *,
        kind: str | None = None,
        namespace: str | None = None,
        ready_after: float = 0.0,
    ) -> BehaviorRule:
        """Make workloads whose name matches the glob ``name`` behave as asked."""
        if behavior not in BEHAVIORS:
            raise ValueError(f"behavior must be one of {BEHAVIORS}")
        rule = BehaviorRule(name, behavior, kind, namespace, ready_after)
        self.rules.insert(0, rule)
        return rule

    def behavior_of(self, obj: JSONDict) -> tuple[str, float]:
        """(behavior, ready_after) from annotations, owners (bounded walk) and rules."""
        cur: JSONDict | None = obj
        for _ in range(5):
            if cur is None:
                break
            m = cur.get("metadata") or {}
            ann = m.get("annotations") or {}
            tmpl_ann = (
                (((cur.get("spec") or {}).get("template") or {}).get("metadata") or {}).get(
                    "annotations"
                )
            ) or {}
            for source in (ann, tmpl_ann):
                if ANNOTATION_BEHAVIOR in source or ANNOTATION_READY_AFTER in source:
                    return str(source.get(ANNOTATION_BEHAVIOR, "ready")), float(
                        source.get(ANNOTATION_READY_AFTER, 0) or 0
                    )
            for rule in self.rules:
                if rule.kind is not None and rule.kind != cur.get("kind"):
                    continue
                if rule.namespace is not None and rule.namespace != m.get("namespace"):
                    continue
                if fnmatch.fnmatchcase(str(m.get("name", "")), rule.name):
                    return rule.behavior, rule.ready_after
            owner = next((r for r in m.get("ownerReferences") or [] if r.get("controller")), None)
            if owner is None:
                break
            try:
                res = self.core.resource_for(str(owner.get("apiVersion")), str(owner.get("kind")))
            except ApiError:
                break
            cur = self.core.try_get(res, m.get("namespace") or "", str(owner.get("name")))
        return "ready", 0.0

    # --- queue --------------------------------------------------------------------------

    def _on_event(self, res: Resource, etype: str, obj: JSONDict) -> None:
        m = obj.get("metadata") or {}
        if etype != "DELETED":
            self.enqueue(res, obj)
            with self._cond:
                self._first_seen.setdefault(str(m.get("uid")), time.monotonic())
        else:
            with self._cond:
                self._first_seen.pop(str(m.get("uid")), None)
        # Owners aggregate their children's status: wake them up too.
        m = obj.get("metadata") or {}
        for ref in m.get("ownerReferences") or []:
            if not isinstance(ref, dict) or not ref.get("controller"):
                continue
            try:
                ores = self.core.resource_for(str(ref.get("apiVersion")), str(ref.get("kind")))
            except ApiError:
                continue
            key = (
                ores.group,
                ores.version,
                ores.plural,
                m.get("namespace") or "",
                str(ref.get("name")),
            )
            self._push(key)

    def enqueue(self, res: Resource, obj: JSONDict, after: float = 0.0) -> None:
        with self._cond:
            if (res.group, res.kind) not in self._reconcilers:
                return
        m = obj.get("metadata") or {}
        key = (res.group, res.version, res.plural, m.get("namespace") or "", str(m.get("name")))
        self._push(key, after)

    def _push(self, key: _Key, after: float = 0.0) -> None:
        with self._cond:
            if after > 0:
                heapq.heappush(self._delayed, (time.monotonic() + after, key))
            elif key not in self._queued:
                self._queued.add(key)
                self._queue.append(key)
            self._cond.notify_all()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="k8s-emulator-controllers", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no reconcile is queued or running (delayed requeues aside)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(timeout=min(left, 0.1))
        return True

    def _next(self) -> _Key | None:
        with self._cond:
            # Bounded: each wait is at most 0.5 s and the loop ends on stop().
            while not self._stop:
                now = time.monotonic()
                while self._delayed and self._delayed[0][0] <= now:
                    _, key = heapq.heappop(self._delayed)
                    if key not in self._queued:
                        self._queued.add(key)
                        self._queue.append(key)
                if self._queue:
                    key = self._queue.popleft()
                    self._queued.discard(key)
                    self._busy = True
                    return key
                self._busy = False
                self._cond.notify_all()
                wait = 0.5
                if self._delayed:
                    wait = max(0.0, min(wait, self._delayed[0][0] - now))
                self._cond.wait(timeout=wait)
            return None

    def _run(self) -> None:
        while True:
            key = self._next()
            if key is None:
                return
            try:
                self._reconcile(key)
                self._failures.pop(key, None)
            except Exception:  # a reconciler error must not kill the controller thread
                self.errors.append(traceback.format_exc())
                # Requeue with exponential backoff, a bounded number of times, like client-go.
                n = self._failures.get(key, 0) + 1
                self._failures[key] = n
                if n <= 8:
                    self._push(key, min(0.05 * 2**n, 2.0))
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _reconcile(self, key: _Key) -> None:
        group, version, plural, ns, name = key
        res = self.core.registry.get(group, version, plural)
        if res is None:
            return
        with self._cond:
            funcs = list(self._reconcilers.get((res.group, res.kind), []))
        if not funcs:
            return
        obj = self.core.try_get(res, ns, name)
        if obj is None:
            return
        for fn in funcs:
            again = fn(self.ctx, clone_obj(obj))
            if again is not None and again >= 0:
                self._push(key, max(float(again), 0.01))
            obj = self.core.try_get(res, ns, name)
            if obj is None:
                return


# --- default reconcilers ----------------------------------------------------------------


def _ensure_pods(ctx: ControllerContext, owner: JSONDict, names: list[str] | int) -> list[JSONDict]:
    """Make the owner's Pods match the wanted count (or names); return the Pods."""
    m = owner["metadata"]
    ns = m.get("namespace") or ""
    template = clone((owner.get("spec") or {}).get("template") or {})
    pods = ctx.list("v1", "Pod", ns, owner_uid=m["uid"])
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    if isinstance(names, list):
        wanted = set(names)
        for p in live:
            if p["metadata"]["name"] not in wanted:
                ctx.delete(p)
        have = {p["metadata"]["name"] for p in live}
        missing = [n for n in names if n not in have]
    else:
        for p in live[names:]:
            ctx.delete(p)
        missing = [f"{m['name']}-{random_suffix()}" for _ in range(max(0, names - len(live)))]
    for pod_name in missing:
        tm = template.get("metadata") or {}
        labels = dict(tm.get("labels") or {})
        if owner["kind"] == "StatefulSet":
            labels["statefulset.kubernetes.io/pod-name"] = pod_name
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": pod_name,
                "namespace": ns,
                "labels": labels,
                "annotations": dict(tm.get("annotations") or {}),
                "ownerReferences": [_owner_ref(owner)],
            },
            "spec": clone(template.get("spec") or {"containers": []}),
        }
        with contextlib.suppress(ApiError):  # already there (a racing reconcile) or ns gone
            ctx.create(pod)
    return [
        p
        for p in ctx.list("v1", "Pod", ns, owner_uid=m["uid"])
        if not p["metadata"].get("deletionTimestamp")
    ]


def _reconcile_replicaset(ctx: ControllerContext, rs: JSONDict) -> None:
    if ctx.behavior(rs)[0] == "hang":
        return
    want = _replicas(rs)
    pods = _ensure_pods(ctx, rs, want)
    ready = sum(1 for p in pods if _pod_ready(p))
    labels = ((rs.get("spec") or {}).get("template") or {}).get("metadata", {}).get("labels") or {}
    status: JSONDict = {
        "replicas": len(pods),
        "fullyLabeledReplicas": len(pods) if labels else 0,
        "observedGeneration": rs["metadata"].get("generation", 1),
    }
    if ready:
        status["readyReplicas"] = ready
        status["availableReplicas"] = ready
    ctx.set_status(rs, status)


def _reconcile_deployment(ctx: ControllerContext, dep: JSONDict) -> float | None:
    behavior, _ = ctx.behavior(dep)
    if behavior == "hang":
        return None
    m = dep["metadata"]
    ns = m.get("namespace") or ""
    spec = dep.get("spec") or {}
    template = clone(spec.get("template") or {})
    phash = _template_hash(template)
    rs_list = ctx.list("apps/v1", "ReplicaSet", ns, owner_uid=m["uid"])
    new_name = f"{m['name']}-{phash}"
    revision = 1 + max(
        (
            int(
                (r["metadata"].get("annotations") or {}).get("deployment.kubernetes.io/revision", 0)
            )
            for r in rs_list
        ),
        default=0,
    )
    current = next((r for r in rs_list if r["metadata"]["name"] == new_name), None)
    want = _replicas(dep)
    if current is None:
        tm = template.setdefault("metadata", {})
        tm.setdefault("labels", {})["pod-template-hash"] = phash
        sel = clone(spec.get("selector") or {})
        sel.setdefault("matchLabels", {})["pod-template-hash"] = phash
        rs = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": new_name,
                "namespace": ns,
                "labels": dict(tm["labels"]),
                "annotations": {
                    "deployment.kubernetes.io/revision": str(revision),
                    "deployment.kubernetes.io/desired-replicas": str(want),
                },
                "ownerReferences": [_owner_ref(dep)],
            },
            "spec": {"replicas": want, "selector": sel, "template": template},
        }
        try:
            current = ctx.create(rs)
        except ApiError:
            return 0.05
        ctx.event(dep, "ScalingReplicaSet", f"Scaled up replica set {new_name} from 0 to {want}")
    elif _replicas(current) != want:
        upd = clone(current)
        upd["spec"]["replicas"] = want
        current = ctx.update(upd)
    for old in rs_list:
        if old["metadata"]["name"] != new_name and _replicas(old) != 0:
            upd = clone(old)
            upd["spec"]["replicas"] = 0
            ctx.update(upd)
    cstatus = current.get("status") or {}
    ready = int(cstatus.get("readyReplicas") or 0)
    total = sum(
        int((r.get("status") or {}).get("replicas") or 0)
        for r in ctx.list("apps/v1", "ReplicaSet", ns, owner_uid=m["uid"])
    )
    old_status = dep.get("status") or {}
    status: JSONDict = {
        "observedGeneration": m.get("generation", 1),
        "replicas": total,
        "updatedReplicas": int(cstatus.get("replicas") or 0),
    }
    if ready:
        status["readyReplicas"] = ready
        status["availableReplicas"] = ready
    if want - ready > 0:
        status["unavailableReplicas"] = want - ready
    if behavior == "fail":
        wanted = [
            (
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
            ),
            (
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                f'ReplicaSet "{new_name}" has timed out progressing.',
            ),
        ]
    elif ready >= want and total == want:
        wanted = [
            (
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
            ),
            (
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                f'ReplicaSet "{new_name}" has successfully progressed.',
            ),
        ]
    else:
        wanted = [
            (
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
            ),
            (
                "Progressing",
                "True",
                "ReplicaSetUpdated",
                f'ReplicaSet "{new_name}" is progressing.',
            ),
        ]
    status["conditions"] = conditions(old_status, wanted)
    ctx.set_status(dep, status)
    return None


def _reconcile_statefulset(ctx: ControllerContext, sts: JSONDict) -> None:
    if ctx.behavior(sts)[0] == "hang":
        return
    m = sts["metadata"]
    want = _replicas(sts)
    pods = _ensure_pods(ctx, sts, [f"{m['name']}-{i}" for i in range(want)])
    ready = sum(1 for p in pods if _pod_ready(p))
    revision = f"{m['name']}-{_template_hash((sts.get('spec') or {}).get('template'))}"
    status: JSONDict = {
        "observedGeneration": m.get("generation", 1),
        "replicas": len(pods),
        "currentReplicas": len(pods),
        "updatedReplicas": len(pods),
        "currentRevision": revision,
        "updateRevision": revision,
        "collisionCount": 0,
        "availableReplicas": ready,
    }
    if ready:
        status["readyReplicas"] = ready
    ctx.set_status(sts, status)


def _reconcile_daemonset(ctx: ControllerContext, ds: JSONDict) -> None:
    if ctx.behavior(ds)[0] == "hang":
        return
    pods = _ensure_pods(ctx, ds, 1)  # one emulated node
    ready = sum(1 for p in pods if _pod_ready(p))
    status: JSONDict = {
        "observedGeneration": ds["metadata"].get("generation", 1),
        "desiredNumberScheduled": 1,
        "currentNumberScheduled": len(pods),
        "updatedNumberScheduled": len(pods),
        "numberMisscheduled": 0,
        "numberReady": ready,
    }
    if ready:
        status["numberAvailable"] = ready
    else:
        status["numberUnavailable"] = 1
    ctx.set_status(ds, status)


def _reconcile_job(ctx: ControllerContext, job: JSONDict) -> None:
    behavior, _ = ctx.behavior(job)
    if behavior == "hang" or (job.get("spec") or {}).get("suspend"):
        return
    m = job["metadata"]
    ns = m.get("namespace") or ""
    spec = job.get("spec") or {}
    completions = int(spec.get("completions") or 1)
    old = job.get("status") or {}
    if any(
        c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
        for c in old.get("conditions") or []
    ):
        return
    pods = ctx.list("v1", "Pod", ns, owner_uid=m["uid"])
    succeeded = sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Succeeded")
    failed = sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Failed")
    running = [
        p for p in pods if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
    ]
    status: JSONDict = {"startTime": old.get("startTime") or now_rfc3339()}
    if failed:
        ctx.event(
            job, "BackoffLimitExceeded", "Job has reached the specified backoff limit", "Warning"
        )
        status["failed"] = failed
        status["conditions"] = conditions(
            old,
            [
                (
                    "FailureTarget",
                    "True",
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                ),
                (
                    "Failed",
                    "True",
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                ),
            ],
        )
        ctx.set_status(job, status)
        return
    if succeeded >= completions:
        ctx.event(job, "Completed", "Job completed")
        status["succeeded"] = succeeded
        status["completionTime"] = old.get("completionTime") or now_rfc3339()
        status["conditions"] = conditions(
            old,
            [
                (
                    "SuccessCriteriaMet",
                    "True",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                ),
                (
                    "Complete",
                    "True",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                ),
            ],
        )
        ctx.set_status(job, status)
        return
    missing = completions - succeeded - len(running)
    template = clone(spec.get("template") or {})
    tm = template.get("metadata") or {}
    for _ in range(max(0, missing)):
        labels = dict(tm.get("labels") or {})
        labels.update(
            {
                "job-name": m["name"],
                "batch.kubernetes.io/job-name": m["name"],
                "controller-uid": m["uid"],
            }
        )
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{m['name']}-{random_suffix()}",
                "namespace": ns,
                "labels": labels,
                "annotations": dict(tm.get("annotations") or {}),
                "ownerReferences": [_owner_ref(job)],
            },
            "spec": template.get("spec") or {"containers": []},
        }
        with contextlib.suppress(ApiError):
            ctx.create(pod)
    if running or missing:
        status["active"] = len(running) + max(0, missing)
    if succeeded:
        status["succeeded"] = succeeded
    ctx.set_status(job, status)


def _reconcile_pod(ctx: ControllerContext, pod: JSONDict) -> float | None:
    behavior, ready_after = ctx.behavior(pod)
    if behavior == "hang" or pod["metadata"].get("deletionTimestamp"):
        return None
    spec = pod.get("spec") or {}
    old = pod.get("status") or {}
    if old.get("phase") in ("Succeeded", "Failed"):
        return None
    containers = [c for c in spec.get("containers") or [] if isinstance(c, dict)]
    completes = spec.get("restartPolicy") in ("Never", "OnFailure")
    # creationTimestamp has one-second precision: time readiness from first sight instead.
    age = ctx.age(pod)
    start = old.get("startTime") or now_rfc3339()
    base: JSONDict = {
        "hostIP": "127.0.0.1",
        "podIP": "127.0.0.1",
        "podIPs": [{"ip": "127.0.0.1"}],
        "startTime": start,
        "qosClass": old.get("qosClass", "BestEffort"),
        "observedGeneration": pod["metadata"].get("generation", 1),
    }
    if ready_after and age < ready_after:
        status = dict(base, phase="Pending")
        status["conditions"] = conditions(
            old,
            [
                ("PodScheduled", "True", "", ""),
                ("Ready", "False", "ContainersNotReady", "containers with unready status"),
            ],
        )
        status["containerStatuses"] = [
            _cstatus(c, False, {"waiting": {"reason": "ContainerCreating"}}) for c in containers
        ]
        ctx.set_status(pod, status)
        return ready_after - age
    first_run = old.get("phase") in (None, "Pending")
    if first_run:
        _write_logs(ctx, pod, containers, behavior, completes)
        for c in containers:
            cname = c.get("name", "")
            ctx.event(
                pod, "Pulled", f'Container image "{c.get("image", "")}" already present on machine'
            )
            ctx.event(pod, "Started", f"Started container {cname}")
            if behavior == "fail" and not completes:
                ctx.event(
                    pod,
                    "BackOff",
                    f"Back-off restarting failed container {cname} in pod "
                    f"{pod['metadata']['name']}",
                    "Warning",
                )
    if completes:
        ok = behavior != "fail"
        phase = "Succeeded" if ok else "Failed"
        code = 0 if ok else 1
        reason = "Completed" if ok else "Error"
        status = dict(base, phase=phase)
        status["conditions"] = conditions(
            old,
            [
                ("PodScheduled", "True", "", ""),
                ("Initialized", "True", "", ""),
                ("Ready", "False", "PodCompleted", ""),
                ("ContainersReady", "False", "PodCompleted", ""),
            ],
        )
        term = {
            "terminated": {
                "exitCode": code,
                "reason": reason,
                "startedAt": start,
                "finishedAt": now_rfc3339(),
            }
        }
        status["containerStatuses"] = [_cstatus(c, False, term) for c in containers]
        ctx.set_status(pod, status)
        return None
    ready = behavior == "ready"
    status = dict(base, phase="Running")
    if behavior == "fail":
        state: JSONDict = {
            "waiting": {
                "reason": "CrashLoopBackOff",
                "message": "back-off restarting failed container",
            }
        }
    else:
        state = {"running": {"startedAt": start}}
    rtext = "True" if ready else "False"
    reason = "" if ready else "ContainersNotReady"
    status["conditions"] = conditions(
        old,
        [
            ("PodScheduled", "True", "", ""),
            ("Initialized", "True", "", ""),
            ("ContainersReady", rtext, reason, ""),
            ("Ready", rtext, reason, ""),
        ],
    )
    status["containerStatuses"] = [
        _cstatus(c, ready, state, restarts=1 if behavior == "fail" else 0) for c in containers
    ]
    ctx.set_status(pod, status)
    return None


def _cstatus(c: JSONDict, ready: bool, state: JSONDict, restarts: int = 0) -> JSONDict:
    return {
        "name": c.get("name", ""),
        "image": c.get("image", ""),
        "imageID": "",
        "ready": ready,
        "started": "running" in state,
        "restartCount": restarts,
        "state": state,
    }


def _write_logs(
    ctx: ControllerContext,
    pod: JSONDict,
    containers: list[JSONDict],
    behavior: str,
    completes: bool,
) -> None:
    ann = (pod["metadata"].get("annotations") or {}).get(ANNOTATION_LOGS)
    for c in containers:
        name = str(c.get("name", ""))
        if ann is not None:
            for line in str(ann).splitlines():
                ctx.append_log(pod, name, line)
            continue
        cmd = " ".join(str(x) for x in (c.get("command") or []) + (c.get("args") or []))
        ctx.append_log(
            pod, name, f"[k8s-emulator] container {name} started (image {c.get('image', '')})"
        )
        if cmd:
            ctx.append_log(pod, name, f"[k8s-emulator] running: {cmd}")
        if behavior == "fail":
            ctx.append_log(pod, name, f"[k8s-emulator] container {name} failed")
        elif completes:
            ctx.append_log(pod, name, f"[k8s-emulator] container {name} completed")
        else:
            ctx.append_log(pod, name, f"[k8s-emulator] container {name} ready")


def _reconcile_pvc(ctx: ControllerContext, pvc: JSONDict) -> None:
    spec = pvc.get("spec") or {}
    storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
    ctx.set_status(
        pvc,
        {
            "phase": "Bound",
            "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
            "capacity": {"storage": storage},
        },
    )


def _reconcile_service(ctx: ControllerContext, svc: JSONDict) -> None:
    if (svc.get("spec") or {}).get("type") == "LoadBalancer":
        # Loopback only: nothing connects to emulated load balancers.
        ctx.set_status(svc, {"loadBalancer": {"ingress": [{"ip": "127.0.0.1", "ipMode": "VIP"}]}})


def _reconcile_pdb(ctx: ControllerContext, pdb: JSONDict) -> None:
    old = pdb.get("status") or {}
    ctx.set_status(
        pdb,
        {
            "observedGeneration": pdb["metadata"].get("generation", 1),
            "currentHealthy": 1,
            "desiredHealthy": 0,
            "expectedPods": 1,
            "disruptionsAllowed": 1,
            "conditions": conditions(old, [("DisruptionAllowed", "True", "SufficientPods", "")]),
        },
    )

"""A simulated Flux: source-, helm- and kustomize-controller reconcilers for the K8s emulator.

They follow the controllers' documented behaviour (backends.md §2): finalizers, suspended objects
ignored, ``reconcile.fluxcd.io/requestedAt`` echoed in ``lastHandledReconcileAt`` (HelmRelease
``resetAt``/``forceAt`` with the same token: failure counters cleared, a forced release),
Reconciling → Ready transitions, HelmRelease ``status.history`` Snapshots (install, upgrade,
failed, rollback remediation, retries exhausted → Stalled), Kustomization history deduplicated
by digest, and deletion that uninstalls only when the object is not suspended. Instead of
rendering charts they apply one Deployment per release (replicas from the values), which the
emulator's workload controllers turn into Pods with logs.

Each Helm release revision is kept the way helm-controller's Helm keeps it: a Secret
``sh.helm.release.v1.<release>.v<N>`` (type ``helm.sh/release.v1``, labels ``owner=helm``,
``name``, ``version``, ``status``, ``modifiedAt``) in the storage namespace
(``spec.storageNamespace``, else the HelmRelease's namespace), ``data.release`` the release
JSON gzipped and base64-encoded, with the rendered ``manifest`` (origin labels included, as
helm-controller's post-renderer adds them) and the ``config`` values. Superseded revisions are
relabelled, ``maxHistory`` prunes the oldest, an uninstall deletes them all.

Failures are chosen by the test: chart versions in ``failing_chart_versions``, values with
``simulateFailure: true``, Kustomization paths containing ``fail``, sources named in
``broken_sources``, or every release and apply while :meth:`FluxSimulator.failing` is active.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import yaml
from netweave.testing.k8s import ControllerContext, KubernetesEmulator, conditions
from netweave_flux.manifests import digest_values

FINALIZER = "finalizers.fluxcd.io"
REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
RESET_AT = "reconcile.fluxcd.io/resetAt"
FORCE_AT = "reconcile.fluxcd.io/forceAt"
SOURCE_GROUP = "source.toolkit.fluxcd.io"
HELM_GROUP = "helm.toolkit.fluxcd.io"
KUSTOMIZE_GROUP = "kustomize.toolkit.fluxcd.io"
JSONDict = dict[str, Any]


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _sha(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


class FluxSimulator:
    def __init__(self, emulator: KubernetesEmulator, *, step_delay: float = 0.05) -> None:
        self.emulator = emulator
        self.step_delay = step_delay
        self.failing_chart_versions: set[str] = set()
        #: Chart versions whose chart also holds a ConfigMap ``<release>-cfg`` (so a test can
        #: check that an upgrade to a version without it removes it, as Helm does).
        self.config_chart_versions: set[str] = set()
        self.broken_sources: set[str] = set()
        #: While set (see :meth:`failing`), every Helm release action and Kustomization apply
        #: fails with this message.
        self.failing_message: str | None = None
        #: Digest values differently from netweave's mirror of helm-controller's algorithm.
        self.foreign_digest = False
        self.releases: list[tuple[str, str, str]] = []  # (action, ns/name, chartVersion)
        self.uninstalled: list[str] = []
        self._progress: dict[str, tuple[Any, float]] = {}
        self._done: dict[str, Any] = {}
        self._lock = threading.Lock()
        for kind in ("GitRepository", "OCIRepository", "HelmRepository"):
            emulator.register_controller(kind, self._source, group=SOURCE_GROUP)
        emulator.register_controller("HelmRelease", self._helmrelease, group=HELM_GROUP)
        emulator.register_controller("Kustomization", self._kustomization, group=KUSTOMIZE_GROUP)

    @contextlib.contextmanager
    def failing(self, message: str) -> Iterator[None]:
        """Inside the block helm-controller's install/upgrade/rollback and kustomize-controller's
        apply fail with ``message`` (Ready=False carrying it), as when the cluster refuses the
        objects (the kit's KitFaults)."""
        self.failing_message = message
        try:
            yield
        finally:
            self.failing_message = None

    # -- sources ----------------------------------------------------------------------------

    def _source(self, ctx: ControllerContext, obj: JSONDict) -> float | None:
        spec = obj.get("spec") or {}
        meta = obj["metadata"]
        if meta.get("deletionTimestamp") or spec.get("suspend"):
            return None
        old = obj.get("status") or {}
        ref = spec.get("ref") or {}
        label = ref.get("tag") or ref.get("branch") or ref.get("commit") or "latest"
        revision = f"{label}@sha1:{_sha(spec)[:40]}"
        if meta["name"] in self.broken_sources:
            conds = conditions(
                old,
                [
                    ("Ready", "False", "FetchFailed", f"failed to fetch {spec.get('url')}"),
                    ("FetchFailed", "True", "FetchFailed", f"failed to fetch {spec.get('url')}"),
                ],
            )
            ctx.set_status(obj, {"observedGeneration": meta.get("generation"), "conditions": conds})
            return None
        status = {
            "observedGeneration": meta.get("generation"),
            "url": f"http://source-controller.flux-system.svc/{obj['kind'].lower()}/"
            f"{meta['namespace']}/{meta['name']}/latest.tar.gz",
            "artifact": {
                "revision": revision,
                "digest": "sha256:" + _sha(spec),
                "path": f"{obj['kind'].lower()}/{meta['namespace']}/{meta['name']}/a.tar.gz",
                "url": f"http://source-controller.flux-system.svc/{meta['name']}.tar.gz",
                "lastUpdateTime": (old.get("artifact") or {}).get("lastUpdateTime", _now()),
            },
            "conditions": conditions(
                old,
                [
                    ("Ready", "True", "Succeeded", f"stored artifact for revision '{revision}'"),
                    ("ArtifactInStorage", "True", "Succeeded", "stored artifact"),
                ],
            ),
        }
        ctx.set_status(obj, status)
        return None

    def _source_ready(self, ctx: ControllerContext, ref: JSONDict, ns: str) -> JSONDict | None:
        kind = str(ref.get("kind"))
        src = ctx.get(f"{SOURCE_GROUP}/v1", kind, str(ref.get("name")), ref.get("namespace") or ns)
        if src is None or src["metadata"].get("deletionTimestamp"):
            return None
        for cond in (src.get("status") or {}).get("conditions") or []:
            if cond.get("type") == "Ready" and cond.get("status") == "True":
                return src
        return None

    # -- shared gating ----------------------------------------------------------------------

    def _gate(self, ctx: ControllerContext, obj: JSONDict) -> tuple[bool, float | None]:
        """(proceed, requeue): finalizer, suspend, and a visible Reconciling phase."""
        meta = obj["metadata"]
        if FINALIZER not in (meta.get("finalizers") or []):
            new = json.loads(json.dumps(obj))
            new["metadata"].setdefault("finalizers", []).append(FINALIZER)
            ctx.update(new)
            return False, None
        if (obj.get("spec") or {}).get("suspend"):
            return False, None
        key = meta["uid"]
        token = (meta.get("generation"), (meta.get("annotations") or {}).get(REQUESTED_AT))
        with self._lock:
            if self._done.get(key) == token:
                return False, None
            progress = self._progress.get(key)
            if progress is None or progress[0] != token:
                self._progress[key] = (token, time.monotonic())
                started = True
            else:
                started = False
        if started:
            old = obj.get("status") or {}
            status = dict(old)
            status["conditions"] = conditions(
                old,
                [
                    ("Reconciling", "True", "Progressing", "reconciliation in progress"),
                    ("Ready", "Unknown", "Progressing", "reconciliation in progress"),
                ],
            )
            ctx.set_status(obj, status)
            return False, self.step_delay
        waited = time.monotonic() - self._progress[key][1]
        if waited < self.step_delay:
            return False, self.step_delay - waited
        return True, None

    @staticmethod
    def _request(
        annotations: JSONDict, status: JSONDict, annotation: str, field: str, requested: Any
    ) -> bool:
        value = annotations.get(annotation)
        if not value or value == status.get(field):
            return False
        status[field] = value
        return bool(value == requested)

    def _finish(self, obj: JSONDict) -> None:
        meta = obj["metadata"]
        token = (meta.get("generation"), (meta.get("annotations") or {}).get(REQUESTED_AT))
        with self._lock:
            self._done[meta["uid"]] = token

    def _delete(self, ctx: ControllerContext, obj: JSONDict, uninstall: bool, what: str) -> None:
        meta = obj["metadata"]
        if FINALIZER not in (meta.get("finalizers") or []):
            return
        if uninstall:
            for entry in ((obj.get("status") or {}).get("inventory") or {}).get("entries") or []:
                ns, name, group, kind = entry["id"].split("_")
                live = ctx.get(f"{group}/v1" if group else "v1", kind, name, ns)
                if live is not None:
                    ctx.delete(live)
            self.uninstalled.append(what)
        new = json.loads(json.dumps(obj))
        new["metadata"]["finalizers"] = [f for f in meta["finalizers"] if f != FINALIZER]
        ctx.update(new)

    @staticmethod
    def _deployment_body(
        namespace: str, name: str, replicas: int, owner: str, origin: JSONDict
    ) -> JSONDict:
        """``origin``: the owner labels the controller puts on every object it applies
        (``helm.toolkit.fluxcd.io/name``/``namespace`` or kustomize-controller's)."""
        labels = {"app.kubernetes.io/instance": name, "app.kubernetes.io/managed-by": owner}
        labels.update(origin)
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app.kubernetes.io/instance": name}},
                "template": {
                    "metadata": {"labels": dict(labels)},
                    "spec": {"containers": [{"name": "app", "image": "example.org/app:1"}]},
                },
            },
        }

    @staticmethod
    def _apply(ctx: ControllerContext, body: JSONDict, *, whole: bool = False) -> JSONDict:
        """Create ``body``, or bring the live object to it: a Deployment's replicas only (what
        an ordinary upgrade of these charts changes), or with ``whole`` (a forced upgrade,
        Helm's ``--force``) every field the manifest sets. Its inventory entry."""
        meta = body["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        api_version, kind = body["apiVersion"], body["kind"]
        if ctx.get("v1", "Namespace", namespace) is None:
            ctx.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        cur = ctx.get(api_version, kind, name, namespace)
        if cur is None:
            ctx.create(json.loads(json.dumps(body)))
        elif whole:
            ctx.update(_merged(cur, body))
        elif kind == "Deployment":
            new = json.loads(json.dumps(cur))
            new["spec"]["replicas"] = body["spec"]["replicas"]
            ctx.update(new)
        group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
        return {"id": f"{namespace}_{name}_{group}_{kind}", "v": api_version.rsplit("/", 1)[-1]}

    def _workload(
        self,
        ctx: ControllerContext,
        namespace: str,
        name: str,
        replicas: int,
        owner: str,
        origin: JSONDict,
    ) -> JSONDict:
        return self._apply(ctx, self._deployment_body(namespace, name, replicas, owner, origin))

    def _render(
        self, target: str, release: str, replicas: int, version: str, hr_meta: JSONDict
    ) -> list[JSONDict]:
        """The release's objects for a chart version: the Deployment, and a ConfigMap for the
        versions in ``config_chart_versions``, with the origin labels helm-controller's
        post-renderer adds."""
        origin = {
            f"{HELM_GROUP}/name": hr_meta["name"],
            f"{HELM_GROUP}/namespace": hr_meta["namespace"],
        }
        objects = [self._deployment_body(target, release, replicas, "Helm", origin)]
        if version in self.config_chart_versions:
            labels = {"app.kubernetes.io/instance": release, "app.kubernetes.io/managed-by": "Helm"}
            labels.update(origin)
            objects.append(
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": f"{release}-cfg", "namespace": target, "labels": labels},
                    "data": {"chartVersion": version},
                }
            )
        return objects

    def _prune(self, ctx: ControllerContext, old: list[JSONDict], new: list[JSONDict]) -> None:
        """Delete the objects of ``old`` entries that ``new`` no longer lists (Helm's upgrade)."""
        keep = {e["id"] for e in new}
        for entry in old:
            if entry["id"] in keep:
                continue
            ns, name, group, kind = entry["id"].split("_")
            live = ctx.get(f"{group}/v1" if group else "v1", kind, name, ns)
            if live is not None:
                ctx.delete(live)

    # -- Helm's release storage ---------------------------------------------------------

    @staticmethod
    def _release_secrets(ctx: ControllerContext, storage: str, release: str) -> list[JSONDict]:
        found = ctx.list(
            "v1", "Secret", storage, {"matchLabels": {"owner": "helm", "name": release}}
        )
        return sorted(found, key=lambda s: int(s["metadata"]["labels"]["version"]))

    @staticmethod
    def _read_release(secret: JSONDict) -> JSONDict:
        blob = base64.b64decode(base64.b64decode(secret["data"]["release"]))
        return dict(json.loads(gzip.decompress(blob)))

    def _store_release(self, ctx: ControllerContext, storage: str, release: JSONDict) -> None:
        """Create or replace revision ``release['version']``'s Secret (Helm's Secret driver:
        JSON, gzip, base64; the Secret's data base64 again)."""
        encoded = base64.b64encode(gzip.compress(json.dumps(release).encode())).decode()
        name = f"sh.helm.release.v1.{release['name']}.v{release['version']}"
        labels = {
            "name": release["name"],
            "owner": "helm",
            "status": release["info"]["status"],
            "version": str(release["version"]),
            "modifiedAt": str(int(time.time())),
        }
        body: JSONDict = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "helm.sh/release.v1",
            "metadata": {"name": name, "namespace": storage, "labels": labels},
            "data": {"release": base64.b64encode(encoded.encode()).decode()},
        }
        if ctx.get("v1", "Namespace", storage) is None:
            ctx.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": storage}})
        cur = ctx.get("v1", "Secret", name, storage)
        if cur is None:
            ctx.create(body)
        else:
            body["metadata"]["resourceVersion"] = cur["metadata"].get("resourceVersion")
            ctx.update(body)

    def _release_status(
        self, ctx: ControllerContext, storage: str, release: str, version: int, status: str
    ) -> None:
        for secret in self._release_secrets(ctx, storage, release):
            if int(secret["metadata"]["labels"]["version"]) == version:
                rel = self._read_release(secret)
                rel["info"]["status"] = status
                self._store_release(ctx, storage, rel)

    def _prune_releases(
        self, ctx: ControllerContext, storage: str, release: str, keep: int | None
    ) -> None:
        """Delete the oldest revisions beyond ``keep`` (Helm's maxHistory; the deployed one
        stays), or all of them (``None``: an uninstall without keepHistory)."""
        secrets = self._release_secrets(ctx, storage, release)
        doomed = secrets if keep is None else secrets[: max(0, len(secrets) - keep)]
        for secret in doomed:
            if keep is not None and secret["metadata"]["labels"]["status"] == "deployed":
                continue
            ctx.delete(secret)

    # -- HelmRelease ------------------------------------------------------------------------

    def _chart(self, ctx: ControllerContext, hr: JSONDict) -> tuple[str, str] | None:
        spec = hr["spec"]
        ns = hr["metadata"]["namespace"]
        if "chartRef" in spec:
            src = self._source_ready(ctx, spec["chartRef"], ns)
            if src is None:
                return None
            url = str(src["spec"]["url"])
            return url.rstrip("/").rsplit("/", 1)[-1], str(src["spec"]["ref"].get("tag", "0.0.0"))
        chart = spec["chart"]["spec"]
        if self._source_ready(ctx, chart["sourceRef"], ns) is None:
            return None
        return str(chart["chart"]), str(chart.get("version") or "*")

    def _helmrelease(self, ctx: ControllerContext, hr: JSONDict) -> float | None:
        meta = hr["metadata"]
        spec = hr.get("spec") or {}
        target = spec.get("targetNamespace") or meta["namespace"]
        release = spec.get("releaseName") or f"{target}-{meta['name']}"
        storage = spec.get("storageNamespace") or meta["namespace"]
        if meta.get("deletionTimestamp"):
            # helm-controller uninstalls only when the object is not suspended.
            uninstall = not spec.get("suspend")
            if uninstall and FINALIZER in (meta.get("finalizers") or []):
                self._prune_releases(ctx, storage, release, None)
            self._delete(ctx, hr, uninstall, f"{meta['namespace']}/{meta['name']}")
            return None
        proceed, requeue = self._gate(ctx, hr)
        if not proceed:
            return requeue
        old = hr.get("status") or {}
        status = json.loads(json.dumps(old))
        gen = meta.get("generation")
        annotations = meta.get("annotations") or {}
        requested = annotations.get(REQUESTED_AT)
        if requested:
            status["lastHandledReconcileAt"] = requested
        # helm-controller's reset and force requests (v2 ShouldHandleResetRequest/-Force): each
        # handled once (lastHandled*At takes the annotation's value even when it does not
        # match), and acted on only when its token equals requestedAt's.
        reset = self._request(annotations, status, RESET_AT, "lastHandledResetAt", requested)
        force = self._request(annotations, status, FORCE_AT, "lastHandledForceAt", requested)
        if old.get("lastAttemptedGeneration") != gen or reset:
            for key in ("failures", "installFailures", "upgradeFailures"):
                status.pop(key, None)  # a new generation or a reset clears the counters
        chart = self._chart(ctx, hr)
        if chart is None:
            status["observedGeneration"] = gen
            status["conditions"] = conditions(
                old,
                [("Ready", "False", "ArtifactFailed", "HelmChart source is not ready")],
            )
            ctx.set_status(hr, status)
            self._finish(hr)
            return 0.2
        chart_name, chart_version = chart
        values = spec.get("values") or {}
        digest = "sha256:" + _sha(values) if self.foreign_digest else digest_values(values)
        history: list[JSONDict] = list(status.get("history") or [])
        head = history[0] if history else None
        deployed = next((h for h in history if h.get("status") == "deployed"), None)
        stalled = any(
            c.get("type") == "Stalled" and c.get("status") == "True"
            for c in old.get("conditions") or []
        )
        if stalled and old.get("lastAttemptedGeneration") == gen and not (reset or force):
            self._finish(hr)
            return None
        unchanged = (
            not force
            and deployed is not None
            and head is deployed
            and deployed["chartVersion"] == chart_version
            and deployed["configDigest"] == digest
        )
        status.update(
            observedGeneration=gen,
            lastAttemptedGeneration=gen,
            lastAttemptedRevision=chart_version,
            lastAttemptedConfigDigest=digest,
            lastAttemptedValuesChecksum=digest,
            storageNamespace=storage,
        )
        if "chart" in spec:
            status["helmChart"] = f"{meta['namespace']}/{meta['namespace']}-{meta['name']}"
        if unchanged:
            status["conditions"] = conditions(
                old,
                [
                    (
                        "Ready",
                        "True",
                        str(old_reason(old) or "UpgradeSucceeded"),
                        "release in sync",
                    ),
                    ("Released", "True", str(old_reason(old) or "UpgradeSucceeded"), "in sync"),
                ],
            )
            ctx.set_status(hr, status)
            self._finish(hr)
            return None
        action = "upgrade" if deployed is not None else "install"
        version = (int(head["version"]) if head else 0) + 1
        now = _now()

        def snapshot(ver: int, st: str, cv: str, cd: str, act: str) -> JSONDict:
            snap = {
                "apiVersion": "helm.toolkit.fluxcd.io/v2",
                "name": release,
                "namespace": target,
                "version": ver,
                "status": st,
                "chartName": chart_name,
                "chartVersion": cv,
                "appVersion": cv,
                "configDigest": cd,
                "firstDeployed": (history[-1]["firstDeployed"] if history else now),
                "lastDeployed": now,
                "action": act,
            }
            snap["digest"] = "sha256:" + _sha(snap)
            return snap

        def stored(ver: int, st: str, cv: str, config: JSONDict, manifest: str, act: str) -> None:
            first = next(iter(self._release_secrets(ctx, storage, release)), None)
            self._store_release(
                ctx,
                storage,
                {
                    "name": release,
                    "namespace": target,
                    "version": ver,
                    "info": {
                        "first_deployed": (
                            self._read_release(first)["info"]["first_deployed"] if first else now
                        ),
                        "last_deployed": now,
                        "deleted": "",
                        "description": f"{act} complete" if st == "deployed" else failure,
                        "status": st,
                    },
                    "chart": {
                        "metadata": {
                            "apiVersion": "v2",
                            "name": chart_name,
                            "version": cv,
                            "appVersion": cv,
                        }
                    },
                    "config": config,
                    "manifest": manifest,
                },
            )

        fails = chart_version in self.failing_chart_versions or values.get("simulateFailure")
        entries: list[JSONDict] = []
        failure = "simulated failure"
        if self.failing_message is not None:
            fails, failure = True, self.failing_message
        rendered = self._render(
            target, release, int(values.get("replicaCount", 1)), chart_version, meta
        )
        if not fails:
            # helm-controller waits for the release's workloads (install/upgrade disableWait
            # false): Reconciling while they come up, a failed release if one fails.
            entries = [self._apply(ctx, body, whole=force) for body in rendered]
            state = _workload_state(ctx.get("apps/v1", "Deployment", release, target))
            if state == "progressing":
                status["conditions"] = conditions(
                    old,
                    [
                        ("Reconciling", "True", "Progressing", "waiting for Deployment"),
                        ("Ready", "Unknown", "Progressing", "waiting for Deployment"),
                    ],
                )
                ctx.set_status(hr, status)
                return self.step_delay
            if state == "failed":
                fails = True
                failure = f"Deployment {target}/{release} failed: ProgressDeadlineExceeded"
        self.releases.append((action, f"{meta['namespace']}/{meta['name']}", chart_version))
        max_history = int(spec.get("maxHistory") or 5)
        if not fails:
            for h in history:
                if h.get("status") == "deployed":
                    h["status"] = "superseded"
            history.insert(0, snapshot(version, "deployed", chart_version, digest, action))
            self._prune(ctx, (old.get("inventory") or {}).get("entries") or [], entries)
            if deployed is not None:
                self._release_status(ctx, storage, release, int(deployed["version"]), "superseded")
            stored(
                version, "deployed", chart_version, values, _manifest(chart_name, rendered), action
            )
            self._prune_releases(ctx, storage, release, max_history)
            reason = "InstallSucceeded" if action == "install" else "UpgradeSucceeded"
            msg = f"Helm {action} succeeded for release {target}/{release}.v{version} with chart "
            msg += f"{chart_name}@{chart_version}"
            status.update(
                history=history[:max_history],
                failures=0,
                lastAttemptedReleaseAction=action,
                lastReleaseRevision=version,
                inventory={"entries": entries},
            )
            status.pop("installFailures", None)
            status.pop("upgradeFailures", None)
            status["conditions"] = conditions(
                old, [("Ready", "True", reason, msg), ("Released", "True", reason, msg)]
            )
            ctx.set_status(hr, status)
            self._finish(hr)
            return None
        # A failed release, then the configured remediation.
        counter = "installFailures" if action == "install" else "upgradeFailures"
        status["failures"] = int(status.get("failures") or 0) + 1
        status[counter] = int(status.get(counter) or 0) + 1
        status["lastAttemptedReleaseAction"] = action
        section = spec.get("install" if action == "install" else "upgrade") or {}
        retries = int((section.get("remediation") or {}).get("retries") or 0)
        failed_reason = "InstallFailed" if action == "install" else "UpgradeFailed"
        msg = f"Helm {action} failed for release {target}/{release} with chart "
        msg += f"{chart_name}@{chart_version}: {failure}"
        history.insert(0, snapshot(version, "failed", chart_version, digest, action))
        stored(version, "failed", chart_version, values, _manifest(chart_name, rendered), action)
        wanted = [("Ready", "False", failed_reason, msg), ("Released", "False", failed_reason, msg)]
        if action == "upgrade" and deployed is not None:
            strategy = (section.get("remediation") or {}).get("strategy") or "rollback"
            if strategy == "rollback":
                for h in history[1:]:
                    if h.get("status") == "deployed":
                        h["status"] = "superseded"
                history.insert(
                    0,
                    snapshot(
                        version + 1,
                        "deployed",
                        deployed["chartVersion"],
                        deployed["configDigest"],
                        "rollback",
                    ),
                )
                # Helm's rollback: a new revision with the previous one's chart, values and
                # manifest; the previous one superseded.
                previous = next(
                    (
                        self._read_release(secret)
                        for secret in self._release_secrets(ctx, storage, release)
                        if int(secret["metadata"]["labels"]["version"]) == int(deployed["version"])
                    ),
                    None,
                )
                if previous is not None:
                    self._release_status(
                        ctx, storage, release, int(deployed["version"]), "superseded"
                    )
                    stored(
                        version + 1,
                        "deployed",
                        deployed["chartVersion"],
                        previous.get("config") or {},
                        str(previous.get("manifest") or ""),
                        "rollback",
                    )
                wanted.append(
                    ("Remediated", "True", "RollbackSucceeded", "Helm rollback succeeded")
                )
        elif action == "install":
            history[0]["status"] = "uninstalled"
            self._prune(ctx, entries, [])  # the uninstall remediation removes what went in
            self._prune_releases(ctx, storage, release, None)  # and its storage (no keepHistory)
            wanted.append(("Remediated", "True", "UninstallSucceeded", "Helm uninstall succeeded"))
        exhausted = status[counter] > retries
        if exhausted:
            wanted.append(("Stalled", "True", "RetriesExceeded", "Failed to " + action))
        if action != "install":
            self._prune_releases(ctx, storage, release, max_history)
        status["history"] = history[:max_history]
        status["conditions"] = conditions(old, wanted)
        ctx.set_status(hr, status)
        self._finish(hr)
        if exhausted:
            return None
        with self._lock:
            self._done.pop(meta["uid"], None)  # retry
            self._progress.pop(meta["uid"], None)
        return self.step_delay

    # -- Kustomization ----------------------------------------------------------------------

    def _kustomization(self, ctx: ControllerContext, ks: JSONDict) -> float | None:
        meta = ks["metadata"]
        spec = ks.get("spec") or {}
        if meta.get("deletionTimestamp"):
            prune = bool(spec.get("prune")) and not spec.get("suspend")
            self._delete(ctx, ks, prune, f"{meta['namespace']}/{meta['name']}")
            return None
        proceed, requeue = self._gate(ctx, ks)
        if not proceed:
            return requeue
        old = ks.get("status") or {}
        status = json.loads(json.dumps(old))
        gen = meta.get("generation")
        requested = (meta.get("annotations") or {}).get(REQUESTED_AT)
        if requested:
            status["lastHandledReconcileAt"] = requested
        status["observedGeneration"] = gen
        src = self._source_ready(ctx, spec.get("sourceRef") or {}, meta["namespace"])
        if src is None:
            status["conditions"] = conditions(
                old, [("Ready", "False", "ArtifactFailed", "Source artifact not found")]
            )
            ctx.set_status(ks, status)
            self._finish(ks)
            return 0.2
        revision = src["status"]["artifact"]["revision"]
        status["lastAttemptedRevision"] = revision
        path = str(spec.get("path") or "./")
        subst = (spec.get("postBuild") or {}).get("substitute") or {}
        failing = self.failing_message
        if "fail" in path or failing is not None:
            msg = f"kustomize build failed: accumulating resources from '{path}'"
            reason = "BuildFailed"
            if failing is not None:
                msg, reason = f"Deployment/{meta['name']} apply failed: {failing}", "ApplyFailed"
            status["conditions"] = conditions(
                old,
                [("Ready", "False", reason, msg), ("Healthy", "False", reason, msg)],
            )
            ctx.set_status(ks, status)
            self._finish(ks)
            return None
        target = spec.get("targetNamespace") or meta["namespace"]
        origin = {
            f"{KUSTOMIZE_GROUP}/name": meta["name"],
            f"{KUSTOMIZE_GROUP}/namespace": meta["namespace"],
        }
        replicas = int(subst.get("replicas", 1))
        entry = self._workload(ctx, target, meta["name"], replicas, "Flux", origin)
        digest = "sha256:" + _sha({"path": path, "subst": subst, "rev": revision})
        history: list[JSONDict] = list(status.get("history") or [])
        now = _now()
        same = next(
            (
                h
                for h in history
                if h.get("digest") == digest
                and h.get("lastReconciledStatus") == "ReconciliationSucceeded"
            ),
            None,
        )
        if same is not None:
            history.remove(same)
            same.update(lastReconciled=now, totalReconciliations=same["totalReconciliations"] + 1)
            history.insert(0, same)
        else:
            history.insert(
                0,
                {
                    "digest": digest,
                    "firstReconciled": now,
                    "lastReconciled": now,
                    "lastReconciledDuration": "0.05s",
                    "lastReconciledStatus": "ReconciliationSucceeded",
                    "totalReconciliations": 1,
                    "metadata": {"revision": revision},
                },
            )
        msg = f"Applied revision: {revision}"
        status.update(
            lastAppliedRevision=revision,
            inventory={"entries": [entry]},
            history=history[:5],
        )
        status["conditions"] = conditions(
            old,
            [
                ("Ready", "True", "ReconciliationSucceeded", msg),
                ("Healthy", "True", "Succeeded", "Health check passed"),
            ],
        )
        ctx.set_status(ks, status)
        self._finish(ks)
        return None


def _merged(live: JSONDict, desired: JSONDict) -> JSONDict:
    """``live`` with every field ``desired`` sets (maps merged, the rest replaced)."""
    out = json.loads(json.dumps(live))
    for key, value in desired.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = json.loads(json.dumps(value))
    return out


def _manifest(chart: str, objects: list[JSONDict]) -> str:
    """Helm's rendered manifest: one ``# Source:`` document per template."""
    return "".join(
        f"---\n# Source: {chart}/templates/{obj['kind'].lower()}.yaml\n"
        + yaml.safe_dump(obj, sort_keys=False)
        for obj in objects
    )


def _workload_state(dep: JSONDict | None) -> str:
    """ready / failed / progressing, as helm's wait judges a Deployment."""
    if dep is None:
        return "progressing"
    conds = {c.get("type"): c for c in (dep.get("status") or {}).get("conditions") or []}
    if (conds.get("Progressing") or {}).get("status") == "False":
        return "failed"
    status = dep.get("status") or {}
    want = int((dep.get("spec") or {}).get("replicas", 1))
    current = int(status.get("observedGeneration") or 0) >= int(
        dep["metadata"].get("generation") or 1
    )
    return "ready" if current and int(status.get("readyReplicas") or 0) >= want else "progressing"


def old_reason(old: JSONDict) -> str | None:
    for cond in old.get("conditions") or []:
        if cond.get("type") == "Released":
            return str(cond.get("reason"))
    return None

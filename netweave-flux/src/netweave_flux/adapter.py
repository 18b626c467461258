"""``FluxAdapter``: NF deployments as Flux HelmReleases and Kustomizations.

References (``backend_ref``):

* packages: ``<namespace>/<Kind>/<name>`` of the Flux source, e.g.
  ``flux-system/HelmRepository/demo-1.2.0`` (Kind: GitRepository, OCIRepository, HelmRepository);
* deployments: ``<namespace>/<Kind>/<name>``, e.g. ``default/HelmRelease/web`` (Kind:
  HelmRelease or Kustomization). The object lives in the deployment's namespace and
  deploys into it (``spec.targetNamespace``).

Anything else is an unknown reference (``NotFound``).
"""

from __future__ import annotations

import asyncio
import difflib
import json
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import yaml
from netweave.adapters import (
    AdapterHealth,
    BackendChanges,
    Capability,
    DeploymentChange,
    DeploymentInfo,
    DeploymentSpec,
    DMSAdapter,
    OperationContext,
    PackageInfo,
    PackageUpload,
)
from netweave.adapters.idempotency import has_stamp, idempotency_stamp
from netweave.adapters.kubernetes import ObjectReader, cluster_source, stream_pod_logs
from netweave.adapters.polling import poll_until
from netweave.adapters.times import parse_time as _parse_time
from netweave.errors import (
    AlreadyExists,
    Conflict,
    InvalidInput,
    NetweaveError,
    NotFound,
    Unsupported,
)
from netweave.models import (
    DeploymentStatus,
    LogOptions,
    Preview,
    ResourceDiff,
    ResourceStatus,
    RevisionEntry,
)

from netweave_flux import manifests as m
from netweave_flux import releases
from netweave_flux.config import FluxConfig
from netweave_flux.kube import Kube
from netweave_flux.status import (
    MAX_JUDGED,
    conditions_of,
    has_failed,
    inventory,
    judge,
    map_status,
)
from netweave_flux.store import Change, ClusterStore, Mutation, ObjectStore
from netweave_flux.watch import watch_flux

_log = logging.getLogger("netweave_flux")
_REF = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?)/([A-Za-z]+)/([a-z0-9]([-a-z0-9.]*[a-z0-9])?)$")
#: Seconds between polls while waiting for the cluster (deletion, resume in git mode).
_POLL = 0.2
#: Helm release snapshot statuses of a release that did run (now or before).
_SUCCEEDED = frozenset({"deployed", "superseded"})
#: Helm revisions remembered per ledger entry.
_HELM_VERSIONS_KEPT = 20
#: Why ``GET …/diff`` has nothing to show for a Kustomization (the 501's message).
KUSTOMIZATION_NO_DIFF = (
    "no manifest diff for a Kustomization: kustomize-controller builds its objects from the "
    "source artifact and keeps no record of the manifests it applied (its inventory holds only "
    "object ids), and netweave writes only the Kustomization object, so there is no desired "
    "manifest to compare with; GET …/status reports its objects that were deleted (drift "
    "'missing'). The diff is available for HelmRelease deployments (Helm's release storage)"
)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_ref(ref: str, kinds: dict[str, m.Kind]) -> tuple[m.Kind, str, str]:
    match = _REF.match(ref)
    if match is None or match.group(3) not in kinds:
        raise NotFound(f"no Flux object with reference {ref!r}", details={"ref": ref})
    return kinds[match.group(3)], match.group(1), match.group(4)


def _ref(obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    return f"{meta['namespace']}/{obj['kind']}/{meta['name']}"


def _annotations(obj: dict[str, Any]) -> dict[str, str]:
    meta = obj.setdefault("metadata", {})
    ann = meta.get("annotations")
    if not isinstance(ann, dict):
        ann = {}
        meta["annotations"] = ann
    return ann


class FluxAdapter(DMSAdapter[FluxConfig]):
    TYPE: ClassVar[str] = "flux"
    DISTRIBUTION: ClassVar[str] = "netweave-flux"
    DESCRIPTION: ClassVar[str] = (
        "Flux CD: HelmReleases and Kustomizations written through the Kubernetes API or Git"
    )
    CAPABILITIES: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.GITOPS,
            Capability.SUSPEND,
            Capability.DRY_RUN,
            Capability.PACKAGE_MANAGEMENT,
            Capability.DEPLOYMENT_LIFECYCLE,
            Capability.ROLLBACK,
            Capability.SCALING,
            Capability.HISTORY,
            Capability.LOGS,
            # ``GET …/diff`` for HelmReleases (Helm's release storage vs live objects); a
            # Kustomization's applied manifests are kept nowhere: 501 for those.
            Capability.DRIFT,
        }
    )
    PACKAGE_TYPES: ClassVar[frozenset[str]] = frozenset(m.PACKAGE_KINDS)
    #: HelmRelease ``releaseName`` is limited to 53 characters (netweave sets it to the name).
    MAX_DEPLOYMENT_NAME_LENGTH: ClassVar[int] = 53

    #: HelmReleases, Kustomizations and their workloads are watched (list+watch), not polled.
    WATCHES: ClassVar[bool] = True

    def __init__(self, name: str, config: FluxConfig, *, data_dir: Path | None = None) -> None:
        super().__init__(name, config, data_dir=data_dir)
        self.kube = Kube(self.config.cluster, self.config.timeouts.read)
        self.store: ObjectStore = self._make_store()

    def _make_store(self) -> ObjectStore:
        if self.config.mode == "git":
            from netweave_flux.gitstore import GitStore

            assert self.config.git is not None
            return GitStore(self.config.git, self.name)
        return ClusterStore(self.kube, self.name)

    # -- lifecycle -------------------------------------------------------------------------

    async def _stop(self) -> None:
        await self.store.close()
        self.kube.close()

    def watch_deployments(self) -> AsyncIterator[BackendChanges]:
        if cluster_source(self.config.cluster) is None:
            # No cluster to watch (its reads will say so): polled, like any adapter.
            raise NotImplementedError("watch_deployments without a cluster")
        return watch_flux(self.kube.separate_client, self.name)

    async def _health(self) -> AdapterHealth:
        details: dict[str, Any] = {"mode": self.config.mode}
        try:
            details["kubernetes"] = await self.kube.version()
            if self.config.mode == "git":
                from netweave_flux.gitstore import GitStore

                assert isinstance(self.store, GitStore)
                details["gitHead"] = await self.store.remote_head()
        except NetweaveError as exc:
            return AdapterHealth(healthy=False, message=exc.message, details=details)
        return AdapterHealth(healthy=True, details=details)

    # -- packages (Flux sources) -------------------------------------------------------------

    def _package_type(self, upload: PackageUpload) -> str:
        if upload.package_type:
            return upload.package_type
        uri = upload.package_uri or ""
        if uri.startswith("oci://"):
            return "oci"
        if upload.source.get("chart"):
            return "helm"
        return "git-repo"

    def _source_object(self, upload: PackageUpload) -> dict[str, Any]:
        ptype = self._package_type(upload)
        kind = m.PACKAGE_KINDS[ptype]
        uri = upload.package_uri or ""
        src = dict(upload.source)
        scheme = urlsplit(uri).scheme
        ann: dict[str, str] = {
            m.ANN_PACKAGE_NAME: upload.name,
            m.ANN_PACKAGE_VERSION: upload.version,
            m.ANN_PACKAGE_TYPE: ptype,
        }
        if upload.description:
            ann[m.ANN_DESCRIPTION] = upload.description[:1000]
        spec: dict[str, Any] = {"url": uri, "interval": self.config.source_interval}

        def text(key: str) -> str | None:
            value = src.get(key)
            if value is None:
                return None
            if not isinstance(value, str) or not value or len(value) > 1000:
                raise InvalidInput(
                    f"source.{key} must be a non-empty string", details={"field": f"source.{key}"}
                )
            return value

        if ptype == "git-repo":
            if scheme not in ("http", "https", "ssh"):
                raise InvalidInput(
                    "a git-repo package needs a packageUri with http://, https:// or ssh://",
                    details={"field": "packageUri"},
                )
            refs = {k: text(k) for k in ("commit", "tag", "semver", "branch", "name")}
            ref = {k: v for k, v in refs.items() if v is not None}
            spec["ref"] = ref or {"branch": "main"}
            path = text("path") or "./"
            parts = path.strip("/").split("/")
            if path.startswith("/") or ".." in parts:
                raise InvalidInput(
                    "source.path must be a relative path inside the repository",
                    details={"field": "source.path"},
                )
            ann[m.ANN_PATH] = path
        elif ptype == "oci":
            if scheme != "oci":
                raise InvalidInput(
                    "an oci package needs a packageUri with oci://", details={"field": "packageUri"}
                )
            ref = {"tag": text("tag") or upload.version}
            if text("digest"):
                ref = {"digest": str(src["digest"])}
            spec["ref"] = ref
            # A Helm chart in an OCI registry: the HelmRelease uses it through chartRef.
            spec["layerSelector"] = {"mediaType": m.HELM_OCI_MEDIA_TYPE, "operation": "copy"}
            ann[m.ANN_CHART_VERSION] = text("chartVersion") or ref.get("tag", upload.version)
        else:
            if scheme not in ("http", "https", "oci"):
                raise InvalidInput(
                    "a helm package needs the repository URL (http://, https:// or oci://) "
                    "as packageUri",
                    details={"field": "packageUri"},
                )
            chart = text("chart")
            if chart is None:
                raise InvalidInput(
                    "a helm package needs source.chart (the chart's name in the repository)",
                    details={"field": "source.chart"},
                )
            if scheme == "oci":
                spec["type"] = "oci"
            ann[m.ANN_CHART] = chart
            ann[m.ANN_CHART_VERSION] = text("version") or upload.version
        for key in ("secretRef", "certSecretRef"):
            secret = text(key)
            if secret is not None:
                spec[key] = {"name": secret}
        return {
            "apiVersion": kind.api_version,
            "kind": kind.kind,
            "metadata": {
                "name": m.object_name(upload.name, upload.version),
                "namespace": self.config.source_namespace,
                "labels": m.labels(self.name),
                "annotations": ann,
            },
            "spec": spec,
        }

    def _package_info(self, obj: dict[str, Any]) -> PackageInfo:
        meta = obj.get("metadata") or {}
        ann = meta.get("annotations") or {}
        spec = obj.get("spec") or {}
        conds = conditions_of(obj)
        ready = conds.get("Ready") or {}
        ext: dict[str, Any] = {
            "kind": obj.get("kind"),
            "namespace": meta.get("namespace"),
            "objectName": meta.get("name"),
            "ready": ready.get("status"),
        }
        if ready.get("message"):
            ext["readyMessage"] = ready["message"]
        for key, ann_key in (
            ("chart", m.ANN_CHART),
            ("chartVersion", m.ANN_CHART_VERSION),
            ("path", m.ANN_PATH),
        ):
            if ann.get(ann_key):
                ext[key] = ann[ann_key]
        if spec.get("ref"):
            ext["ref"] = spec["ref"]
        artifact = (obj.get("status") or {}).get("artifact") or {}
        if artifact.get("revision"):
            ext["artifactRevision"] = artifact["revision"]
        return PackageInfo(
            backend_ref=_ref(obj),
            name=str(ann.get(m.ANN_PACKAGE_NAME) or meta.get("name")),
            version=str(ann.get(m.ANN_PACKAGE_VERSION) or ""),
            package_type=str(ann.get(m.ANN_PACKAGE_TYPE) or "git-repo"),
            package_uri=spec.get("url"),
            description=ann.get(m.ANN_DESCRIPTION),
            extensions=ext,
        )

    def _managed(self, obj: dict[str, Any] | None) -> bool:
        if obj is None or (obj.get("metadata") or {}).get("deletionTimestamp"):
            return False
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(labels.get(k) == v for k, v in m.labels(self.name).items())

    async def _source(self, ref: str) -> dict[str, Any]:
        kind, namespace, name = _parse_ref(ref, m.SOURCE_KINDS)
        obj = await self.store.get(kind, namespace, name)
        if not self._managed(obj):
            raise NotFound(f"no package {ref!r} registered by {self.name!r}", details={"ref": ref})
        assert obj is not None
        return obj

    async def _list_packages(self) -> list[PackageInfo]:
        out: list[PackageInfo] = []
        for kind in m.SOURCE_KINDS.values():
            for obj in await self.store.list(kind, self.config.source_namespace):
                if self._managed(obj):
                    out.append(self._package_info(obj))
        return out

    async def _get_package(self, backend_ref: str) -> PackageInfo:
        return self._package_info(await self._source(backend_ref))

    async def _upload_package(self, upload: PackageUpload) -> PackageInfo:
        if upload.archive is not None:
            raise InvalidInput(
                "the Flux adapter registers Flux sources (GitRepository, OCIRepository, "
                "HelmRepository) by reference: send packageUri and source details, not an archive",
                details={"field": "packageUri"},
            )
        obj = self._source_object(upload)
        name = obj["metadata"]["name"]
        for kind in m.SOURCE_KINDS.values():
            if await self.store.get(kind, self.config.source_namespace, name) is not None:
                raise AlreadyExists(
                    f"package {upload.name} {upload.version} is already registered "
                    f"({kind.kind} {self.config.source_namespace}/{name})"
                )
        created = await self.store.create(obj, Change("register package"))
        return self._package_info(created)

    async def _delete_package(self, backend_ref: str) -> None:
        obj = await self._source(backend_ref)
        kind, namespace, name = _parse_ref(backend_ref, m.SOURCE_KINDS)
        del obj
        await self.store.delete(kind, namespace, name, Change("delete package"))

    # -- deployments ---------------------------------------------------------------------------

    def _ledger(self, obj: dict[str, Any]) -> list[dict[str, Any]]:
        raw = ((obj.get("metadata") or {}).get("annotations") or {}).get(m.ANN_LEDGER)
        if not raw:
            return []
        try:
            data = json.loads(raw)
        except ValueError:
            return []
        return [e for e in data if isinstance(e, dict)] if isinstance(data, list) else []

    @staticmethod
    def _bind(ledger: list[dict[str, Any]], live: dict[str, Any] | None) -> None:
        """Note on ledger entries the config digest Flux computed for their values.

        When Flux has attempted the object's current generation, ``lastAttemptedConfigDigest``
        is the digest of the values in its spec; entries with exactly those values and that
        chart version get it as ``fluxDigest``. netweave's own digest mirrors helm-controller's;
        this makes finding a revision's values independent of that mirror being exact, and
        never binds values someone else wrote (they differ from every entry's).
        """
        if not live or live.get("kind") != "HelmRelease":
            return
        meta = live.get("metadata") or {}
        status = live.get("status") or {}
        digest = status.get("lastAttemptedConfigDigest")
        revision = str(status.get("lastAttemptedRevision") or "")
        if digest and status.get("lastAttemptedGeneration") == meta.get("generation"):
            values = (live.get("spec") or {}).get("values") or {}
            for entry in ledger:
                version = str(entry.get("chartVersion") or "")
                same_chart = revision == version or revision.startswith(version + "+")
                if same_chart and entry.get("values") == values:
                    entry["fluxDigest"] = digest
        # Which Helm revisions ran each entry's values: Flux keeps its history only back to the
        # previous successful release (its remediation adds revisions too), so a rollback to
        # an older revision finds its values here once Flux has forgotten it.
        for snap in status.get("history") or []:
            if not isinstance(snap, dict) or snap.get("status") not in _SUCCEEDED:
                continue
            for entry in ledger:
                if FluxAdapter._matches(entry, snap):
                    seen = {int(v) for v in entry.get("helmVersions") or []}
                    seen.add(int(snap.get("version") or 0))
                    entry["helmVersions"] = sorted(seen)[-_HELM_VERSIONS_KEPT:]

    @staticmethod
    def _matches(entry: dict[str, Any], snap: dict[str, Any]) -> bool:
        digest = snap.get("configDigest")
        return bool(digest) and (
            entry.get("chartVersion") == snap.get("chartVersion")
            and digest in (entry.get("digest"), entry.get("fluxDigest"))
        )

    def _record(self, obj: dict[str, Any], entry: dict[str, Any], token: str) -> None:
        """Prepend what netweave applied to the object's bounded ledger annotation.

        Flux's ``status.history`` keeps chart versions and config digests, not values, so a
        rollback needs netweave's own record of the values behind each digest. ``token`` is
        the ``requestedAt`` value written with it.
        """
        ledger = self._ledger(obj)
        entry = dict(entry)
        entry["token"] = token
        entry["n"] = (max((int(e.get("n", 0)) for e in ledger), default=0)) + 1
        entry["at"] = _now()
        if len(json.dumps(entry)) > self.config.ledger_max_bytes // 2:
            entry["values"] = None  # too large to keep: a rollback to it is refused
            entry["truncated"] = True
        ledger = [entry, *ledger][: self.config.ledger_entries]
        while len(ledger) > 1 and len(json.dumps(ledger)) > self.config.ledger_max_bytes:
            ledger.pop()
        _annotations(obj)[m.ANN_LEDGER] = json.dumps(ledger, separators=(",", ":"))

    def _deployment_kind(self, source: dict[str, Any]) -> m.Kind:
        return m.KUSTOMIZATION if source["kind"] == "GitRepository" else m.HELM_RELEASE

    def _apply_source(
        self, obj: dict[str, Any], source: dict[str, Any], values: dict[str, Any]
    ) -> dict[str, Any]:
        """Point ``obj`` at ``source`` with ``values``; returns the ledger entry."""
        spec = obj.setdefault("spec", {})
        smeta = source["metadata"]
        sann = smeta.get("annotations") or {}
        version = str(sann.get(m.ANN_PACKAGE_VERSION) or "")
        source_ref = {
            "kind": source["kind"],
            "name": smeta["name"],
            "namespace": smeta["namespace"],
        }
        ann = _annotations(obj)
        ann[m.ANN_PACKAGE_REF] = _ref(source)
        ann[m.ANN_PACKAGE_VERSION] = version
        if obj["kind"] == "HelmRelease":
            spec.pop("chart", None)
            spec.pop("chartRef", None)
            chart_version = str(sann.get(m.ANN_CHART_VERSION) or version)
            if source["kind"] == "OCIRepository":
                spec["chartRef"] = source_ref
            else:
                spec["chart"] = {
                    "spec": {
                        "chart": str(sann.get(m.ANN_CHART) or ""),
                        "version": chart_version,
                        "sourceRef": source_ref,
                        "interval": self.config.source_interval,
                    }
                }
            if values:
                spec["values"] = values
            else:
                spec.pop("values", None)
            return {
                "digest": m.digest_values(values),
                "chartVersion": chart_version,
                "packageRef": _ref(source),
                "packageVersion": version,
                "values": values,
            }
        subst = m.flat_substitutions(values)
        spec["sourceRef"] = source_ref
        spec["path"] = str(sann.get(m.ANN_PATH) or "./")
        if subst:
            spec.setdefault("postBuild", {})["substitute"] = subst
        else:
            spec.pop("postBuild", None)
        return {
            "digest": self._ks_digest(spec),
            "packageRef": _ref(source),
            "packageVersion": version,
            "values": subst,
        }

    @staticmethod
    def _ks_digest(spec: dict[str, Any]) -> str:
        return m.digest_config(
            {
                "sourceRef": spec.get("sourceRef"),
                "path": spec.get("path"),
                "substitute": (spec.get("postBuild") or {}).get("substitute") or {},
            }
        )

    def _deployment_object(
        self, spec: DeploymentSpec, source: dict[str, Any], ctx: OperationContext
    ) -> dict[str, Any]:
        kind = self._deployment_kind(source)
        token = _now()
        body: dict[str, Any] = {"interval": self.config.interval, "targetNamespace": spec.namespace}
        if self.config.timeout:
            body["timeout"] = self.config.timeout
        if kind is m.HELM_RELEASE:
            rem = self.config.remediation
            body["releaseName"] = spec.name
            body["install"] = {
                "createNamespace": self.config.create_namespace,
                "remediation": {"retries": rem.install_retries},
            }
            body["upgrade"] = {
                "remediation": {
                    "retries": rem.upgrade_retries,
                    "strategy": rem.upgrade_strategy,
                    "remediateLastFailure": rem.remediate_last_failure,
                }
            }
        else:
            body["prune"] = self.config.prune
        obj: dict[str, Any] = {
            "apiVersion": kind.api_version,
            "kind": kind.kind,
            "metadata": {
                "name": spec.name,
                "namespace": spec.namespace,
                "labels": m.labels(self.name),
                "annotations": {
                    m.ANN_IDEMPOTENCY: idempotency_stamp(ctx.idempotency_key),
                    m.ANN_DEPLOYMENT_ID: spec.deployment_id,
                    m.ANN_REQUESTED_AT: token,
                },
            },
            "spec": body,
        }
        entry = self._apply_source(obj, source, dict(spec.values))
        self._record(obj, entry, token)
        if kind is m.HELM_RELEASE:
            m.check_helmrelease(obj)
        return obj

    async def _create_deployment(
        self, spec: DeploymentSpec, ctx: OperationContext
    ) -> DeploymentInfo:
        source = await self._source(spec.package.backend_ref)
        obj = self._deployment_object(spec, source, ctx)
        kind = m.DEPLOYMENT_KINDS[obj["kind"]]
        existing = await self.store.get(kind, spec.namespace, spec.name)
        if existing is not None:
            if has_stamp(_annotations(existing).get(m.ANN_IDEMPOTENCY), ctx.idempotency_key):
                return await self._get_deployment(_ref(existing))
            raise AlreadyExists(f"{kind.kind} {spec.namespace}/{spec.name} already exists")
        try:
            await self.store.create(obj, Change("create", ctx.operation_id))
        except AlreadyExists:
            # A concurrent retry of the same operation won the race: not an error.
            again = await self.store.get(kind, spec.namespace, spec.name)
            if again is None or not has_stamp(
                _annotations(again).get(m.ANN_IDEMPOTENCY), ctx.idempotency_key
            ):
                raise
        return await self._get_deployment(_ref(obj))

    async def _live(self, ref: str) -> tuple[m.Kind, str, str, dict[str, Any] | None]:
        kind, namespace, name = _parse_ref(ref, m.DEPLOYMENT_KINDS)
        live = await self.kube.get(kind, namespace, name)
        if live is not None and not self._managed_any(live):
            live = None
        return kind, namespace, name, live

    def _managed_any(self, obj: dict[str, Any]) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(labels.get(k) == v for k, v in m.labels(self.name).items())

    def _revision(self, obj: dict[str, Any]) -> int:
        status = obj.get("status") or {}
        if obj.get("kind") == "HelmRelease":
            history = status.get("history") or []
            if history and isinstance(history[0], dict):
                return int(history[0].get("version") or 0)
            return 0
        # Kustomization: netweave's ledger number of the configuration the cluster has applied.
        if not status.get("lastAppliedRevision") and not status.get("history"):
            return 0
        digest = self._ks_digest(obj.get("spec") or {})
        for entry in self._ledger(obj):
            if entry.get("digest") == digest:
                return int(entry.get("n") or 0)
        return 0

    def _info(self, live: dict[str, Any], desired: dict[str, Any] | None) -> DeploymentInfo:
        mapped = map_status(live)
        status, message = mapped.status, mapped.message
        desired_token = ((desired or {}).get("metadata") or {}).get("annotations") or {}
        live_token = (live.get("metadata") or {}).get("annotations") or {}
        if desired is not None and desired_token.get(m.ANN_REQUESTED_AT) != live_token.get(
            m.ANN_REQUESTED_AT
        ):
            # Git mode: a committed change Flux has not synced into the cluster yet.
            status, message = DeploymentStatus.DEPLOYING, "a Git commit is waiting for Flux"
        spec = live.get("spec") or {}
        ann = (live.get("metadata") or {}).get("annotations") or {}
        lstatus = live.get("status") or {}
        values: dict[str, Any]
        if live.get("kind") == "HelmRelease":
            values = dict(spec.get("values") or {})
        else:
            values = dict((spec.get("postBuild") or {}).get("substitute") or {})
        ext: dict[str, Any] = {"kind": live.get("kind"), "suspended": spec.get("suspend") is True}
        for key in ("lastAttemptedRevision", "lastAppliedRevision", "lastHandledReconcileAt"):
            if lstatus.get(key):
                ext[key] = lstatus[key]
        history = lstatus.get("history") or []
        if live.get("kind") == "HelmRelease" and history and isinstance(history[0], dict):
            ext["chartVersion"] = history[0].get("chartVersion")
            ext["helmStatus"] = history[0].get("status")
        resources: list[ResourceStatus] = []
        for entry in ((lstatus.get("inventory") or {}).get("entries") or [])[:200]:
            parts = str(entry.get("id", "")).split("_")
            if len(parts) == 4:
                resources.append(
                    ResourceStatus(kind=parts[3], name=parts[1], namespace=parts[0] or None)
                )
        return DeploymentInfo(
            backend_ref=_ref(live),
            status=status,
            revision=self._revision(live),
            message=message,
            backend_status=mapped.backend_status,
            package_version=ann.get(m.ANN_PACKAGE_VERSION),
            values=values,
            resources=tuple(resources),
            extensions=ext,
        )

    async def _get_deployment(self, backend_ref: str) -> DeploymentInfo:
        kind, namespace, name, live = await self._live(backend_ref)
        desired = await self.store.get(kind, namespace, name) if self.config.mode == "git" else None
        if live is None:
            if desired is not None and self._managed_any(desired):
                return DeploymentInfo(
                    backend_ref=backend_ref,
                    status=DeploymentStatus.PENDING,
                    message="committed to Git; waiting for Flux to create it in the cluster",
                    package_version=_annotations(desired).get(m.ANN_PACKAGE_VERSION),
                    extensions={"kind": kind.kind},
                )
            raise NotFound(f"no deployment {backend_ref!r}", details={"ref": backend_ref})
        if self.config.mode == "git" and desired is None:
            info = self._info(live, None)
            return replace(
                info,
                status=DeploymentStatus.DELETING,
                message="removed from Git; waiting for Flux to prune it from the cluster",
            )
        return await self._judged(self._info(live, desired), live)

    async def _judged(self, info: DeploymentInfo, live: dict[str, Any]) -> DeploymentInfo:
        """A deployment Flux reports ready, with its inventory's workloads judged by their own
        readiness rules and the ones gone as drift (``netweave_flux.status``)."""
        if info.status is not DeploymentStatus.DEPLOYED:
            return info  # Flux is at work or failed: its inventory is not the answer yet
        entries = inventory(live)
        judged = [e for e in entries if e.judged][:MAX_JUDGED]
        objects = await asyncio.gather(
            *(self.kube.get_workload(e.group, e.kind, e.namespace, e.name) for e in judged)
        )
        resources, drift = judge(entries, dict(zip(judged, objects, strict=True)))
        return replace(info, resources=resources, drift=drift)

    async def _change(
        self,
        backend_ref: str,
        ctx: OperationContext,
        action: str,
        *,
        source_ref: str | None = None,
        values: dict[str, Any] | None = None,
        values_mode: str = "merge",
        suspend: bool | None = None,
    ) -> DeploymentInfo:
        """Read-modify-write of a deployment object; every change requests a reconcile."""
        kind, namespace, name = _parse_ref(backend_ref, m.DEPLOYMENT_KINDS)
        mutate = await self._mutation(backend_ref, ctx, source_ref, values, values_mode, suspend)
        await self.store.mutate(kind, namespace, name, mutate, Change(action, ctx.operation_id))
        return await self._get_deployment(backend_ref)

    async def _mutation(
        self,
        backend_ref: str,
        ctx: OperationContext,
        source_ref: str | None,
        values: dict[str, Any] | None,
        values_mode: str,
        suspend: bool | None,
    ) -> Mutation:
        """The edit a change makes to the deployment object (run by the store, maybe again
        after a conflict); the sources it needs are read here, before."""
        kind, namespace, name = _parse_ref(backend_ref, m.DEPLOYMENT_KINDS)
        source = await self._source(source_ref) if source_ref else None
        if source is not None and self._deployment_kind(source) is not kind:
            raise InvalidInput(
                f"package {source_ref} is a {source['kind']}; a {kind.kind} cannot use it",
                details={"field": "packageId"},
            )

        # The package a values-only change keeps, read before the synchronous mutation.
        kept: dict[str, dict[str, Any]] = {}
        if source is None and values is not None:
            cur = await self.store.get(kind, namespace, name)
            if cur is None or not self._managed_any(cur):
                raise NotFound(f"no deployment {backend_ref!r}", details={"ref": backend_ref})
            pref = _annotations(cur).get(m.ANN_PACKAGE_REF, "")
            try:
                kept = {pref: await self._source(pref)}
            except NotFound as exc:
                raise Conflict(
                    f"the package {pref!r} of deployment {backend_ref!r} is no longer registered"
                ) from exc

        # In git mode the file has no status: bind the ledger with the cluster's view.
        live = await self.kube.get(kind, namespace, name) if self.config.mode == "git" else None
        token = _now()

        def mutate(obj: dict[str, Any]) -> bool:
            ann = _annotations(obj)
            if not self._managed_any(obj):
                raise NotFound(f"no deployment {backend_ref!r}")
            if has_stamp(ann.get(m.ANN_IDEMPOTENCY), ctx.idempotency_key):
                # This operation step already wrote its change. A later attempt of it (the
                # client's retry of a failed operation) asks Flux to try that change again,
                # as `flux reconcile helmrelease --reset` does: helm-controller leaves a
                # release whose retries are exhausted (Stalled) alone until a reset request
                # (resetAt equal to requestedAt) clears its failure counters.
                current = live if live is not None else obj
                if ctx.attempt > 1 and kind is m.HELM_RELEASE and has_failed(current):
                    ann[m.ANN_REQUESTED_AT] = token
                    ann[m.ANN_RESET_AT] = token
                    return True
                return False
            ledger = self._ledger(obj)
            if ledger:
                # Before the spec changes: bind what Flux reported for the current spec.
                self._bind(ledger, live if live is not None else obj)
                ann[m.ANN_LEDGER] = json.dumps(ledger, separators=(",", ":"))
            spec = obj.setdefault("spec", {})
            if source is not None or values is not None:
                current_values: dict[str, Any]
                if kind is m.HELM_RELEASE:
                    current_values = dict(spec.get("values") or {})
                else:
                    current_values = dict((spec.get("postBuild") or {}).get("substitute") or {})
                if values is None:
                    new_values = current_values
                elif values_mode == "replace":
                    new_values = dict(values)
                else:
                    new_values = m.merge_values(current_values, values)
                src = source
                if src is None:
                    src = kept.get(ann.get(m.ANN_PACKAGE_REF, ""))
                if src is None:
                    raise NotFound("the deployment's package is no longer registered")
                entry = self._apply_source(obj, src, new_values)
                self._record(obj, entry, token)
            if suspend is True:
                spec["suspend"] = True
            elif suspend is False:
                spec.pop("suspend", None)
            if kind is m.HELM_RELEASE:
                m.check_helmrelease(obj)
            ann[m.ANN_IDEMPOTENCY] = idempotency_stamp(ctx.idempotency_key)
            ann[m.ANN_REQUESTED_AT] = token
            return True

        return mutate

    async def _update_deployment(
        self, backend_ref: str, change: DeploymentChange, ctx: OperationContext
    ) -> DeploymentInfo:
        return await self._change(
            backend_ref,
            ctx,
            "update",
            source_ref=change.package.backend_ref if change.package else None,
            values=change.values,
            values_mode=change.values_mode,
            suspend=change.suspend,
        )

    async def _repair_deployment(
        self, backend_ref: str, spec: DeploymentSpec, ctx: OperationContext
    ) -> DeploymentInfo:
        # The recorded package and values written back, and for a HelmRelease a forced upgrade
        # (forceAt = requestedAt): a plain reconcile of an unchanged release applies nothing,
        # so objects deleted or edited behind Flux's back would stay so. kustomize-controller
        # applies every object on each reconcile: the request is enough there.
        kind, namespace, name = _parse_ref(backend_ref, m.DEPLOYMENT_KINDS)
        mutate = await self._mutation(
            backend_ref, ctx, spec.package.backend_ref, dict(spec.values), "replace", None
        )

        def forced(obj: dict[str, Any]) -> bool:
            if not mutate(obj):
                return False
            if kind is m.HELM_RELEASE:
                ann = _annotations(obj)
                ann[m.ANN_FORCE_AT] = ann[m.ANN_REQUESTED_AT]
            return True

        await self.store.mutate(kind, namespace, name, forced, Change("repair", ctx.operation_id))
        return await self._get_deployment(backend_ref)

    async def _diff_deployment(self, backend_ref: str, revision: int) -> list[ResourceDiff]:
        """Desired = the manifest of Helm release revision ``revision`` (the one the gateway
        recorded when its operation completed) from Helm's storage, as helm-controller wrote
        it; live = the cluster's objects. Not the newest revision: one made after a change
        behind the gateway's back (the HelmRelease edited) is part of the drift, not the
        desired state. When the recorded revision has left Helm's storage, the newest one
        running what netweave last wrote (``netweave_flux.releases.recorded_release``)."""
        kind, _, _, live = await self._live(backend_ref)
        if live is None:
            raise NotFound(f"no deployment {backend_ref!r}", details={"ref": backend_ref})
        if kind is m.KUSTOMIZATION:
            raise Unsupported(
                KUSTOMIZATION_NO_DIFF,
                details={
                    "capability": Capability.DRIFT.value,
                    "adapter": self.name,
                    "kind": kind.kind,
                },
            )
        ledger = self._ledger(live)
        wanted = max(ledger, key=lambda e: int(e.get("n") or 0)) if ledger else None
        release = releases.release_name(live)
        storage = releases.storage_namespace(live)
        spec = live.get("spec") or {}
        target = str(spec.get("targetNamespace") or live["metadata"]["namespace"])
        timeout = self.kube.read_timeout

        def run(api: Any) -> list[ResourceDiff]:
            reader = ObjectReader(api, timeout)
            recorded = releases.recorded_release(reader, storage, release, revision, wanted, target)
            if recorded.version != revision:
                _log.info(
                    "%s: Helm revision %s is gone from storage; diffing revision %s, which "
                    "runs the chart and values netweave wrote",
                    backend_ref,
                    revision,
                    recorded.version,
                )
            return releases.diff_release(reader, recorded.manifest, recorded.namespace)

        return await self.kube.call(f"diff of {backend_ref}", run)

    async def _scale_deployment(
        self, backend_ref: str, replicas: int, ctx: OperationContext
    ) -> DeploymentInfo:
        kind, _, _ = _parse_ref(backend_ref, m.DEPLOYMENT_KINDS)
        if kind is m.HELM_RELEASE:
            values = m.set_path({}, self.config.scale_value_path, replicas)
        else:
            values = {self.config.scale_substitute_key: replicas}
        return await self._change(backend_ref, ctx, "scale", values=values)

    async def _rollback_deployment(
        self, backend_ref: str, revision: int, ctx: OperationContext
    ) -> DeploymentInfo:
        kind, namespace, name, live = await self._live(backend_ref)
        if live is None:
            raise NotFound(f"no deployment {backend_ref!r}", details={"ref": backend_ref})
        desired = await self.store.get(kind, namespace, name) or live
        if has_stamp(_annotations(desired).get(m.ANN_IDEMPOTENCY), ctx.idempotency_key):
            return self._info(live, desired)  # this rollback was already applied
        ledger = self._ledger(desired)
        target: dict[str, Any] | None
        if kind is m.HELM_RELEASE:
            history = [h for h in (live.get("status") or {}).get("history") or [] if h]
            if not history:
                raise Conflict(f"{backend_ref} has no release history to roll back to")
            current = int(history[0].get("version") or 0)
            if revision == 0:
                older = [
                    h
                    for h in history[1:]
                    if h.get("status") in ("deployed", "superseded")
                    and int(h.get("version") or 0) < current
                ]
                if not older:
                    raise Conflict(
                        f"{backend_ref} has no earlier successful release in status.history "
                        "(Flux keeps the history only up to the previous successful release)"
                    )
                snap = older[0]
            else:
                found = [h for h in history if int(h.get("version") or 0) == revision]
                snap = found[0] if found else None
            self._bind(ledger, live)
            if snap is None:
                # Gone from Flux's history; netweave's ledger may know the values it ran.
                target = next(
                    (e for e in ledger if revision in (e.get("helmVersions") or [])), None
                )
                if target is None:
                    raise InvalidInput(
                        f"revision {revision} is not in the release history of {backend_ref} "
                        f"(known: {[int(h.get('version') or 0) for h in history]})",
                        details={"field": "revision"},
                    )
                wanted = f"Helm revision {revision} (chart {target.get('chartVersion')})"
            else:
                target = next(
                    (e for e in ledger if self._matches(e, snap) and e.get("values") is not None),
                    None,
                )
                wanted = f"Helm revision {snap.get('version')} (chart {snap.get('chartVersion')})"
        else:
            current = self._revision(live)
            number = revision or max(
                (int(e.get("n") or 0) for e in ledger if int(e.get("n") or 0) < current),
                default=0,
            )
            if number == 0:
                raise Conflict(f"{backend_ref} has no earlier revision recorded by netweave")
            target = next((e for e in ledger if int(e.get("n") or 0) == number), None)
            if target is None and revision:
                raise InvalidInput(
                    f"revision {revision} is not among the revisions netweave recorded for "
                    f"{backend_ref} (known: {[e.get('n') for e in ledger]})",
                    details={"field": "revision"},
                )
            wanted = f"revision {number}"
        if target is None or target.get("values") is None:
            raise Conflict(
                f"cannot roll {backend_ref} back to {wanted}: netweave has no record of the "
                "values applied then (not applied by netweave, too large, or older than the "
                f"{self.config.ledger_entries} revisions it keeps); refusing to guess",
                details={"revision": revision},
            )
        return await self._change(
            backend_ref,
            ctx,
            "rollback",
            source_ref=str(target.get("packageRef")),
            values=dict(target["values"]),
            values_mode="replace",
        )

    async def _get_history(self, backend_ref: str) -> list[RevisionEntry]:
        kind, _, _, live = await self._live(backend_ref)
        if live is None:
            raise NotFound(f"no deployment {backend_ref!r}", details={"ref": backend_ref})
        ledger = self._ledger(live)
        self._bind(ledger, live)
        out: list[RevisionEntry] = []
        if kind is m.HELM_RELEASE:
            for snap in (live.get("status") or {}).get("history") or []:
                if not isinstance(snap, dict):
                    continue
                match = next((e for e in ledger if self._matches(e, snap)), None)
                out.append(
                    RevisionEntry(
                        revision=int(snap.get("version") or 0),
                        status=str(snap.get("status") or "unknown"),
                        package_version=(match or {}).get("packageVersion")
                        or snap.get("chartVersion"),
                        description=(
                            f"{snap.get('action') or 'release'} of chart "
                            f"{snap.get('chartName')} {snap.get('chartVersion')}"
                        ),
                        deployed_at=_parse_time(snap.get("lastDeployed")),
                        values=(match or {}).get("values"),
                    )
                )
            return out
        current = self._revision(live)
        mapped = map_status(live)
        for entry in ledger:
            n = int(entry.get("n") or 0)
            if n == current:
                state = mapped.status.value
            elif n < current:
                state = "SUPERSEDED"
            else:
                state = "PENDING" if mapped.status is not DeploymentStatus.FAILED else "FAILED"
            out.append(
                RevisionEntry(
                    revision=n,
                    status=state,
                    package_version=entry.get("packageVersion"),
                    description=f"configuration applied by netweave ({entry.get('packageRef')})",
                    deployed_at=_parse_time(entry.get("at")),
                    values=entry.get("values"),
                )
            )
        return out

    def _manifest_name(self, obj: dict[str, Any]) -> str:
        meta = obj["metadata"]
        rel = f"{meta['namespace']}/{str(obj['kind']).lower()}-{meta['name']}.yaml"
        if self.config.mode == "git" and self.config.git is not None:
            return f"{self.config.git.path}/{rel}"
        return rel

    async def _preview_deployment(
        self, spec: DeploymentSpec, change: DeploymentChange | None
    ) -> Preview:
        """The Flux object netweave would write (Flux, not netweave, renders the chart)."""
        preview_ctx = OperationContext(operation_id="preview", idempotency_key=f"preview:{_now()}")
        note = (
            "the Flux object netweave would write; helm-controller / kustomize-controller render "
            "the chart or kustomization from it"
        )
        if change is None:
            source = await self._source(spec.package.backend_ref)
            obj = self._deployment_object(spec, source, preview_ctx)
            exists = await self.store.get(
                m.DEPLOYMENT_KINDS[obj["kind"]], spec.namespace, spec.name
            )
            if exists is not None:
                note += "; an object of this name exists already, so a create would be refused"
            return Preview(manifests={self._manifest_name(obj): m.to_yaml(obj)}, notes=note)
        kind = self._deployment_kind(await self._source(spec.package.backend_ref))
        ref = f"{spec.namespace}/{kind.kind}/{spec.name}"
        cur = await self.store.get(kind, spec.namespace, spec.name)
        if cur is None or not self._managed_any(cur):
            raise NotFound(f"no deployment {ref!r}", details={"ref": ref})
        mutate = await self._mutation(
            ref,
            preview_ctx,
            change.package.backend_ref if change.package else None,
            change.values,
            change.values_mode,
            change.suspend,
        )
        before = {k: v for k, v in cur.items() if k != "status"}
        after = json.loads(json.dumps(before))
        mutate(after)

        def text(obj: dict[str, Any]) -> list[str]:
            dumped = yaml.safe_dump(obj.get("spec") or {}, sort_keys=True)
            return dumped.splitlines(keepends=True)

        diff = "".join(
            difflib.unified_diff(
                text(before),
                text(after),
                "spec (current)",
                "spec (after the change)",
            )
        )
        return Preview(
            manifests={self._manifest_name(after): m.to_yaml(after)},
            notes=note,
            extensions={"diff": diff},
        )

    async def _wait(self, what: str, seconds: float, done: Any) -> None:
        """Poll ``done()`` (async) until true, at most ``seconds`` (core's one deadline rule)."""
        await poll_until(done, bool, within=seconds, interval=_POLL, what=what)

    async def _delete_deployment(self, backend_ref: str, ctx: OperationContext) -> None:
        kind, namespace, name, live = await self._live(backend_ref)
        desired = await self.store.get(kind, namespace, name)
        if live is None and (desired is None or not self._managed_any(desired)):
            raise NotFound(f"no deployment {backend_ref!r}", details={"ref": backend_ref})
        suspended = any(
            (o.get("spec") or {}).get("suspend") is True for o in (live, desired) if o is not None
        )
        if (
            suspended
            and desired is not None
            and not (desired.get("metadata") or {}).get("deletionTimestamp")
        ):
            # Flux does not uninstall a suspended HelmRelease (nor prune a suspended
            # Kustomization) when it is deleted: resume it first.
            await self._change(backend_ref, ctx, "resume before delete", suspend=False)
            if self.config.mode == "git" and live is not None:

                async def resumed() -> bool:
                    cur = await self.kube.get(kind, namespace, name)
                    return cur is None or (cur.get("spec") or {}).get("suspend") is not True

                assert self.config.git is not None
                await self._wait(
                    "Flux syncing the resumed object", self.config.git.resume_wait, resumed
                )
        await self.store.delete(kind, namespace, name, Change("delete", ctx.operation_id))

        async def gone() -> bool:
            return await self.kube.get(kind, namespace, name) is None

        if self.config.mode == "git" and live is None:
            return  # never reached the cluster: removing it from Git is all there is
        # The object carries Flux's finalizer: it is gone only once the controller uninstalled.
        await self._wait(
            f"deletion of {backend_ref} (Flux's finalizer)", self.config.timeouts.write * 0.9, gone
        )

    # -- logs -----------------------------------------------------------------------------------

    async def _pods(self, live: dict[str, Any]) -> list[dict[str, Any]]:
        pods: dict[str, dict[str, Any]] = {}
        entries = ((live.get("status") or {}).get("inventory") or {}).get("entries") or []
        for entry in entries[:200]:
            parts = str(entry.get("id", "")).split("_")
            if len(parts) != 4:
                continue
            namespace, name, group, kind = parts
            if not namespace:
                continue
            if (group, kind) == ("", "Pod"):
                for pod in await self.kube.pods(namespace, ""):
                    if pod["metadata"]["name"] == name:
                        pods[f"{namespace}/{name}"] = pod
                continue
            workload = await self.kube.get_workload(group, kind, namespace, name)
            match = ((workload or {}).get("spec") or {}).get("selector") or {}
            labels = match.get("matchLabels") or {}
            if not labels:
                continue
            sel = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
            for pod in await self.kube.pods(namespace, sel):
                pods[f"{namespace}/{pod['metadata']['name']}"] = pod
        return [pods[k] for k in sorted(pods)]

    async def _stream_logs(self, backend_ref: str, options: LogOptions) -> AsyncIterator[str]:
        _, _, _, live = await self._live(backend_ref)
        if live is None:
            raise NotFound(f"no deployment {backend_ref!r}", details={"ref": backend_ref})
        streams: list[tuple[str, str, str]] = []
        for pod in await self._pods(live):
            meta = pod["metadata"]
            for container in (pod.get("spec") or {}).get("containers") or []:
                cname = str(container.get("name"))
                if options.container and cname != options.container:
                    continue
                streams.append((meta["namespace"], meta["name"], cname))
        api = await self.kube.api_client()
        async for line in stream_pod_logs(
            api, streams, options, read_timeout=self.kube.read_timeout
        ):
            yield line


__all__ = ["FluxAdapter"]

"""``ArgoCDAdapter``: NF deployments as Argo CD Applications, over argocd-server's REST API.

- A package is an Argo CD source (Git path or Helm chart), encoded in its ``backend_ref``
  (:mod:`netweave_argocd.sources`); nothing is uploaded.
- A deployment is an Application named after the deployment, in the configured project and
  application namespace; its ``backend_ref`` is ``<appNamespace>/<name>``.
- Every call names the project (query ``project``/``appNamespace`` or the same body fields):
  without it Argo CD answers 403 for a missing app, which this adapter must report as 404.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import re
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

import httpx
import yaml
from netweave.adapters import (
    AdapterHealth,
    Capability,
    DeploymentChange,
    DeploymentInfo,
    DeploymentSpec,
    DMSAdapter,
    OperationContext,
    PackageInfo,
    PackageUpload,
)
from netweave.adapters.http import BackendClient
from netweave.adapters.idempotency import has_stamp, idempotency_stamp
from netweave.adapters.times import parse_time as _parse_time
from netweave.adapters.values import merge_values as deep_merge
from netweave.errors import (
    AlreadyExists,
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    Conflict,
    InvalidInput,
    NetweaveError,
    NotFound,
)
from netweave.models import LogOptions, ResourceDiff, ResourceStatus, RevisionEntry

from netweave_argocd.auth import SessionAuth, StaticTokenAuth
from netweave_argocd.config import ArgoCDConfig
from netweave_argocd.sources import HELM, PACKAGE_TYPES, PackageSource, source_from_upload
from netweave_argocd.status import (
    automated_enabled,
    drift_of,
    managed_resource_diff,
    map_status,
    resource_readiness,
)

_log = logging.getLogger("netweave.adapters.argocd")

API = "/api/v1"
FINALIZER = "resources-finalizer.argocd.argoproj.io"
MANAGED_BY = "app.kubernetes.io/managed-by"
ANNOTATION_DEPLOYMENT = "netweave.io/deployment-id"
ANNOTATION_PACKAGE = "netweave.io/package"
#: Progress of the last rollback (its operation's idempotency key, target, saved auto-sync).
ANNOTATION_ROLLBACK = "netweave.io/rollback"
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_SPEC_DIFFERS = "existing application spec is different"
_IN_PROGRESS = "another operation is already in progress"


class ArgoPermissionDenied(BackendError):
    """Argo CD answered PermissionDenied (7) / 403. On an app call this may mean "no such app"."""


class ArgoUnauthenticated(BackendError):
    """Argo CD refused the gateway's credentials (Unauthenticated, 16 / 401)."""


def argo_error(response: httpx.Response) -> NetweaveError | None:
    """Map argocd-server's grpc-gateway error body ``{error, code, message}`` to the taxonomy."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    code = body.get("code")
    message = str(body.get("message") or body.get("error") or f"HTTP {response.status_code}")
    message = " ".join(message.split())[:500]
    status = response.status_code
    text = f"Argo CD: {message}"
    if code == 5 or (code is None and status == 404):
        return NotFound(text)
    if code == 6 or (code is None and status == 409):
        return AlreadyExists(text)
    if code == 3 or (code is None and status == 400):
        if _SPEC_DIFFERS in message:
            return AlreadyExists(text)
        return InvalidInput(text)
    if code == 9:
        # FailedPrecondition: the app's state forbids it (operation running, auto-sync on …).
        return Conflict(text)
    if code == 7 or status == 403:
        return ArgoPermissionDenied(f"Argo CD denied the gateway's request: {message}")
    if code == 16 or status == 401:
        return ArgoUnauthenticated("Argo CD refused the gateway's credentials (Unauthenticated)")
    if code == 14 or status == 503:
        return BackendUnavailable(f"Argo CD is unavailable: {message}")
    if code == 4 or status == 504:
        return BackendTimeout(f"Argo CD timed out: {message}")
    return None


def _values_of(source: dict[str, Any]) -> dict[str, Any]:
    helm = source.get("helm") or {}
    if isinstance(helm.get("valuesObject"), dict):
        return dict(helm["valuesObject"])
    if isinstance(helm.get("values"), str) and helm["values"].strip():
        loaded = yaml.safe_load(helm["values"])
        return dict(loaded) if isinstance(loaded, dict) else {}
    return {}


def _with_values(source: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    updated = copy.deepcopy(source)
    helm = dict(updated.get("helm") or {})
    # valuesObject takes precedence in Argo CD; drop the YAML string so the two cannot disagree.
    helm.pop("values", None)
    if values:
        helm["valuesObject"] = values
    else:
        helm.pop("valuesObject", None)
    if helm:
        updated["helm"] = helm
    else:
        updated.pop("helm", None)
    return updated


def _annotate(app: dict[str, Any], key: str, value: str | None) -> dict[str, Any]:
    """A JSON patch op setting (or, with None, removing) one annotation, keeping the others."""
    annotations = dict((app.get("metadata") or {}).get("annotations") or {})
    if value is None:
        annotations.pop(key, None)
    else:
        annotations[key] = value
    return {"op": "add", "path": "/metadata/annotations", "value": annotations}


def _revision(entry: dict[str, Any]) -> int:
    """The gateway's revision of a history entry: Argo CD's id + 1.

    Argo CD numbers history from 0, while the gateway's revision 0 means "none" / "the
    previous one" (rollback), so revision N is history id N-1.
    """
    return int(entry.get("id") or 0) + 1


def _history(app: dict[str, Any]) -> list[dict[str, Any]]:
    entries = [h for h in (app.get("status") or {}).get("history") or () if isinstance(h, dict)]
    return sorted(entries, key=lambda h: int(h.get("id") or 0))


class ArgoCDAdapter(DMSAdapter[ArgoCDConfig]):
    TYPE: ClassVar[str] = "argocd"
    DISTRIBUTION: ClassVar[str] = "netweave-argocd"
    CAPABILITIES: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.GITOPS,
            Capability.DRIFT,
            Capability.PACKAGE_MANAGEMENT,
            Capability.DEPLOYMENT_LIFECYCLE,
            Capability.ROLLBACK,
            Capability.SCALING,
            Capability.HISTORY,
            Capability.LOGS,
        }
    )
    PACKAGE_TYPES: ClassVar[frozenset[str]] = PACKAGE_TYPES
    DESCRIPTION: ClassVar[str] = "NF deployments as Argo CD Applications (Git and Helm sources)"

    def __init__(
        self,
        name: str,
        config: ArgoCDConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        data_dir: Path | None = None,
    ) -> None:
        super().__init__(name, config, data_dir=data_dir)
        self._transport = transport
        self._client: BackendClient | None = None
        #: The Application list in flight, shared by the batched reads that ask meanwhile.
        self._listing: asyncio.Task[dict[tuple[str, str], dict[str, Any]]] | None = None

    # -- plumbing ----------------------------------------------------------------------------

    @property
    def http(self) -> BackendClient:
        if self._client is None:
            cfg = self.config
            auth: httpx.Auth
            if cfg.auth_token is not None:
                auth = StaticTokenAuth(cfg.auth_token.get_secret_value())
            else:
                assert cfg.username is not None
                assert cfg.password is not None
                auth = SessionAuth(cfg.username, cfg.password.get_secret_value())
            self._client = BackendClient(
                cfg.server_url,
                backend="Argo CD",
                settings=cfg.http,
                auth=auth,
                error_mapper=argo_error,
                transport=self._transport,
                headers={"Accept": "application/json"},
            )
        return self._client

    def _scope(self) -> dict[str, str]:
        return {"project": self.config.default_project, "appNamespace": self.config.app_namespace}

    def _ref(self, backend_ref: str) -> tuple[str, str]:
        """``<appNamespace>/<name>`` (or a bare name) → (namespace, name); junk is NotFound."""
        namespace, _, name = backend_ref.rpartition("/")
        namespace = namespace or self.config.app_namespace
        if not (_NAME.match(name) and _NAME.match(namespace)):
            raise NotFound(f"no Argo CD Application {backend_ref!r}")
        if namespace != self.config.app_namespace:
            # Another instance's application namespace: not ours to touch.
            raise NotFound(
                f"Application {backend_ref!r} is not in this adapter's namespace "
                f"{self.config.app_namespace!r}"
            )
        return namespace, name

    @staticmethod
    def _app_path(name: str, suffix: str = "") -> str:
        return f"{API}/applications/{quote(name, safe='')}{suffix}"

    async def _call(self, method: str, url: str, *, app: str | None = None, **kwargs: Any) -> Any:
        """One JSON call; a 403 on an app call is checked against a project-scoped GET."""
        try:
            response = await self.http.request(method, url, **kwargs)
        except ArgoPermissionDenied:
            if app is None:
                raise
            await self._disambiguate_denied(app)
            raise
        if not response.content:
            return {}
        try:
            return response.json()
        except ValueError as exc:
            raise BackendError(f"Argo CD answered {method} {url} with non-JSON") from exc

    async def _disambiguate_denied(self, name: str) -> None:
        # Argo CD hides a missing app behind 403 when it cannot tell the project: ask with the
        # project (a real 404 then) before reporting a permission problem.
        try:
            await self.http.request("GET", self._app_path(name), params=self._scope())
        except NotFound as exc:
            raise NotFound(f"no Argo CD Application {name!r}") from exc
        except ArgoPermissionDenied:
            pass

    async def _get_app(self, name: str) -> dict[str, Any]:
        app = await self._call("GET", self._app_path(name), app=name, params=self._scope())
        if not isinstance(app, dict):
            raise BackendError("Argo CD answered a GET of an Application with a non-object")
        return app

    async def _patch(self, name: str, ops: list[dict[str, Any]]) -> dict[str, Any]:
        body = {
            "name": name,
            "patch": json.dumps(ops),
            "patchType": "json",
            **self._scope(),
        }
        app = await self._call("PATCH", self._app_path(name), app=name, json=body)
        return dict(app)

    async def _sync(
        self, name: str, ctx: OperationContext, *, joins_running: bool = False
    ) -> dict[str, Any]:
        """``joins_running``: a sync already running does the work (Argo CD's self-heal)."""
        body = {"name": name, "prune": self.config.sync_policy.prune, **self._scope()}
        try:
            app = await self._call(
                "POST", self._app_path(name, "/sync"), app=name, json=body, retry=False
            )
        except Conflict as exc:
            if (ctx.attempt > 1 or joins_running) and _IN_PROGRESS in exc.message:
                # A retried step whose sync already started: that sync is ours.
                return await self._get_app(name)
            raise
        return dict(app)

    def _info(
        self, app: dict[str, Any], *, resources: tuple[ResourceStatus, ...] = ()
    ) -> DeploymentInfo:
        mapped = map_status(app)
        metadata = app.get("metadata") or {}
        spec = app.get("spec") or {}
        source = spec.get("source") or {}
        status = app.get("status") or {}
        history = _history(app)
        name = str(metadata.get("name", ""))
        namespace = str(metadata.get("namespace") or self.config.app_namespace)
        extensions: dict[str, Any] = {
            "argocd.application": name,
            "argocd.appNamespace": namespace,
            "argocd.project": spec.get("project"),
            "argocd.syncStatus": (status.get("sync") or {}).get("status"),
            "argocd.healthStatus": (status.get("health") or {}).get("status"),
            "argocd.operationPhase": (status.get("operationState") or {}).get("phase"),
            "argocd.syncedRevision": (status.get("sync") or {}).get("revision"),
            "argocd.targetRevision": source.get("targetRevision"),
            "argocd.repoURL": source.get("repoURL"),
        }
        return DeploymentInfo(
            backend_ref=f"{namespace}/{name}",
            status=mapped.status,
            revision=_revision(history[-1]) if history else 0,
            message=mapped.message,
            backend_status=mapped.backend_status,
            package_version=source.get("targetRevision"),
            values=_values_of(source),
            resources=resources,
            drift=drift_of(app),
            updated_at=_parse_time(
                (status.get("operationState") or {}).get("finishedAt") or status.get("reconciledAt")
            ),
            extensions={k: v for k, v in extensions.items() if v is not None},
        )

    # -- lifecycle -----------------------------------------------------------------------------

    async def _stop(self) -> None:
        if self._listing is not None:
            self._listing.cancel()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _health(self) -> AdapterHealth:
        info = await self._call("GET", f"{API}/session/userinfo")
        if not info.get("loggedIn"):
            return AdapterHealth(healthy=False, message="Argo CD does not accept the credentials")
        version = await self._call("GET", "/api/version")
        return AdapterHealth(
            healthy=True,
            details={"server": self.config.server_url, "version": version.get("Version")},
        )

    # -- packages --------------------------------------------------------------------------------

    async def _upload_package(self, upload: PackageUpload) -> PackageInfo:
        source = source_from_upload(upload)
        if self.config.verify_sources:
            await self._verify_source(source)
        return source.info(upload)

    async def _verify_source(self, source: PackageSource) -> None:
        repo = quote(source.repo_url, safe="")
        if source.package_type == HELM:
            if source.repo_url.startswith("oci://"):
                # Argo CD lists OCI tags only for registered OCI repositories; the Application's
                # validation on create checks the rest.
                return
            charts = await self._read_repository(f"{API}/repositories/{repo}/helmcharts", source)
            versions = {
                str(item.get("name")): {str(v) for v in item.get("versions") or ()}
                for item in charts.get("items") or ()
            }
            chart = str(source.chart)
            if chart not in versions:
                raise InvalidInput(
                    f"chart {chart!r} is not in the Helm repository {source.repo_url}",
                    details={"field": "source.chart"},
                )
            if source.target_revision not in versions[chart]:
                raise InvalidInput(
                    f"chart {chart!r} has no version {source.target_revision!r} in "
                    f"{source.repo_url} (it has {sorted(versions[chart])[-10:]})",
                    details={"field": "source.targetRevision"},
                )
            return
        refs = await self._read_repository(f"{API}/repositories/{repo}/refs", source)
        names = set(refs.get("branches") or ()) | set(refs.get("tags") or ())
        revision = source.target_revision
        is_commit = re.fullmatch(r"[0-9a-f]{7,40}", revision) is not None
        if revision != "HEAD" and not is_commit and revision not in names:
            raise InvalidInput(
                f"revision {revision!r} is neither a branch nor a tag of {source.repo_url}",
                details={"field": "source.targetRevision"},
            )

    async def _read_repository(self, url: str, source: PackageSource) -> dict[str, Any]:
        try:
            found = await self._call("GET", url, params={"appProject": self.config.default_project})
        except (ArgoPermissionDenied, ArgoUnauthenticated, BackendUnavailable, BackendTimeout):
            raise  # the gateway's or Argo CD's problem, not the package's
        except NetweaveError as exc:
            # Argo CD could not read the repository (unknown, unreachable, not a repository):
            # the package is at fault.
            raise InvalidInput(
                f"Argo CD cannot read the repository {source.repo_url}: {exc.message}",
                details={"field": "source.repoURL"},
            ) from exc
        return dict(found)

    async def _get_package(self, backend_ref: str) -> PackageInfo:
        source = PackageSource.from_ref(backend_ref)
        if self.config.verify_sources:
            # The package as Argo CD sees it now: a chart version or revision that vanished
            # from its repository is gone for deployments too.
            try:
                await self._verify_source(source)
            except InvalidInput as exc:
                raise NotFound(f"package source no longer available: {exc.message}") from exc
        return source.info()

    async def _delete_package(self, backend_ref: str) -> None:
        # Nothing of a package lives in Argo CD: the gateway's registration is all there is.
        PackageSource.from_ref(backend_ref)

    async def _list_packages(self) -> list[PackageInfo]:
        """The sources of this project's netweave-managed Applications (Argo CD lists no more)."""
        listed = await self._call(
            "GET",
            f"{API}/applications",
            params={
                "projects": self.config.default_project,
                "appNamespace": self.config.app_namespace,
                "selector": f"{MANAGED_BY}=netweave",
            },
        )
        found: dict[str, PackageInfo] = {}
        for app in listed.get("items") or ():
            ref = ((app.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_PACKAGE)
            if not isinstance(ref, str):
                continue
            try:
                found.setdefault(ref, PackageSource.from_ref(ref).info())
            except NotFound:
                _log.warning("Application with an unreadable package annotation: %s", ref)
        return sorted(found.values(), key=lambda p: (p.name, p.version))

    # -- deployments -----------------------------------------------------------------------------

    def application(self, spec: DeploymentSpec) -> dict[str, Any]:
        """The Application ``create`` sends (public for previews and tests)."""
        cfg = self.config
        try:
            source = PackageSource.from_ref(spec.package.backend_ref)
        except NotFound as exc:
            raise InvalidInput(
                f"package {spec.package.name} {spec.package.version} is not an Argo CD source",
                details={"field": "packageId"},
            ) from exc
        argo_source = _with_values(source.to_argo(), dict(spec.values))
        destination: dict[str, Any] = {"namespace": spec.namespace}
        if cfg.destination.server is not None:
            destination["server"] = cfg.destination.server
        else:
            destination["name"] = cfg.destination.name
        sync_policy: dict[str, Any] = {}
        if cfg.sync_policy.automated:
            sync_policy["automated"] = {
                "enabled": True,
                "prune": cfg.sync_policy.prune,
                "selfHeal": cfg.sync_policy.self_heal,
            }
        if cfg.sync_policy.sync_options:
            sync_policy["syncOptions"] = list(cfg.sync_policy.sync_options)
        app_spec: dict[str, Any] = {
            "project": cfg.default_project,
            "destination": destination,
            "source": argo_source,
        }
        if sync_policy:
            app_spec["syncPolicy"] = sync_policy
        # No apiVersion/kind: argocd-server's Application message has neither (swagger.json).
        return {
            "metadata": {
                "name": spec.name,
                "namespace": cfg.app_namespace,
                "labels": {MANAGED_BY: "netweave"},
                "annotations": {
                    ANNOTATION_DEPLOYMENT: spec.deployment_id,
                    ANNOTATION_PACKAGE: spec.package.backend_ref,
                },
                # Deleting the Application deletes its resources (cascade).
                "finalizers": [FINALIZER],
            },
            "spec": app_spec,
        }

    async def _create_deployment(
        self, spec: DeploymentSpec, ctx: OperationContext
    ) -> DeploymentInfo:
        manifest = self.application(spec)
        try:
            app = await self._call(
                "POST",
                f"{API}/applications",
                params={"upsert": "false", "validate": "true"},
                json=manifest,
            )
        except AlreadyExists:
            existing = await self._get_app(spec.name)
            owner = ((existing.get("metadata") or {}).get("annotations") or {}).get(
                ANNOTATION_DEPLOYMENT
            )
            if owner != spec.deployment_id:
                raise AlreadyExists(
                    f"an Argo CD Application named {spec.name!r} already exists in "
                    f"{self.config.app_namespace!r} and belongs to another deployment",
                    details={"field": "name"},
                ) from None
            app = existing  # our own earlier attempt at this step
        if not automated_enabled(app):
            app = await self._sync(spec.name, ctx)
        return self._info(app)

    async def _get_deployment(self, backend_ref: str) -> DeploymentInfo:
        _, name = self._ref(backend_ref)
        app = await self._get_app(name)
        return self._info(app, resources=await self._resources(name))

    #: The reconciler's poll round is one Application list (``_get_deployments``): the list
    #: answers every Application of the project, so a round of thousands is still one call.
    BATCH_READS: ClassVar[bool] = True
    BATCH_READ_SIZE: ClassVar[int] = 10_000

    async def _get_deployments(
        self, backend_refs: list[str]
    ) -> dict[str, DeploymentInfo | NetweaveError]:
        # One list of the project's Applications instead of a GET and a resource tree per
        # deployment; each app's status.resources carries its top-level resources' health.
        # A round's batches (the reconciler reads up to 500 deployments per call) asking while
        # a list is in flight share it: every call lists the whole project anyway.
        if self._listing is None or self._listing.done():
            self._listing = asyncio.ensure_future(self._list_apps())
            # Retrieved even when every caller gave up (their timeout) before it ended.
            self._listing.add_done_callback(lambda t: t.cancelled() or t.exception())
        apps = await asyncio.shield(self._listing)
        out: dict[str, DeploymentInfo | NetweaveError] = {}
        for ref in backend_refs:
            try:
                namespace, name = self._ref(ref)
            except NotFound as exc:
                out[ref] = exc
                continue
            app = apps.get((namespace, name))
            if app is None:
                out[ref] = NotFound(f"no Argo CD Application {ref!r}")
                continue
            nodes = ((app.get("status") or {}).get("resources")) or ()
            out[ref] = self._info(app, resources=_readiness(nodes))
        return out

    async def _list_apps(self) -> dict[tuple[str, str], dict[str, Any]]:
        answer = await self._call(
            "GET",
            f"{API}/applications",
            params={
                "projects": self.config.default_project,
                "appNamespace": self.config.app_namespace,
            },
        )
        apps: dict[tuple[str, str], dict[str, Any]] = {}
        for app in (answer.get("items") if isinstance(answer, dict) else None) or ():
            meta = app.get("metadata") or {}
            namespace = str(meta.get("namespace") or self.config.app_namespace)
            apps[(namespace, str(meta.get("name") or ""))] = app
        return apps

    async def _resources(self, name: str) -> tuple[ResourceStatus, ...]:
        try:
            tree = await self._call(
                "GET",
                self._app_path(name, "/resource-tree"),
                app=name,
                params=self._scope(),
            )
        except NotFound:
            return ()  # not reconciled yet: no tree
        # Only the resources the app manages, not their children.
        return _readiness(n for n in tree.get("nodes") or () if not n.get("parentRefs"))

    async def _diff_deployment(self, backend_ref: str, revision: int) -> list[ResourceDiff]:
        # Argo CD's own comparison: each managed resource's target state (rendered from the
        # Application's source, which is the gateway's recorded one unless changed behind its
        # back — drift then says so) and its live state, normalized as Argo CD compares them.
        _, name = self._ref(backend_ref)
        answer = await self._call(
            "GET", self._app_path(name, "/managed-resources"), app=name, params=self._scope()
        )
        return [
            managed_resource_diff(item)
            for item in (answer.get("items") or ())
            if isinstance(item, dict) and not item.get("hook")
        ]

    async def _update_deployment(
        self, backend_ref: str, change: DeploymentChange, ctx: OperationContext
    ) -> DeploymentInfo:
        _, name = self._ref(backend_ref)
        app, _ = await self._apply_change(name, change)
        if not automated_enabled(app):
            app = await self._sync(name, ctx)
        return self._info(app)

    async def _repair_deployment(
        self, backend_ref: str, spec: DeploymentSpec, ctx: OperationContext
    ) -> DeploymentInfo:
        # The recorded source and values applied again, then a sync, which applies every object
        # again (undoing edits and deletions in the cluster) — under auto-sync too: without
        # selfHeal Argo CD reports such drift and leaves it. Only a changed source under
        # auto-sync is left to Argo CD, which syncs a new target by itself.
        _, name = self._ref(backend_ref)
        change = DeploymentChange(
            values=dict(spec.values), package=spec.package, values_mode="replace"
        )
        app, changed = await self._apply_change(name, change)
        automated = automated_enabled(app)
        if automated and changed:
            return self._info(app)
        return self._info(await self._sync(name, ctx, joins_running=automated))

    async def _apply_change(
        self, name: str, change: DeploymentChange
    ) -> tuple[dict[str, Any], bool]:
        """The Application with ``change`` patched into its spec; True when the spec changed."""
        app = await self._get_app(name)
        current = dict((app.get("spec") or {}).get("source") or {})
        source = current
        ops: list[dict[str, Any]] = []
        if change.package is not None:
            try:
                new = PackageSource.from_ref(change.package.backend_ref)
            except NotFound as exc:
                raise InvalidInput(
                    f"package {change.package.name} {change.package.version} is not an Argo CD "
                    "source",
                    details={"field": "packageId"},
                ) from exc
            source = {**new.to_argo(), **({"helm": current["helm"]} if "helm" in current else {})}
            ops.append(
                {
                    "op": "add",
                    "path": "/metadata/annotations",
                    "value": {
                        **((app.get("metadata") or {}).get("annotations") or {}),
                        ANNOTATION_PACKAGE: change.package.backend_ref,
                    },
                }
            )
        if change.values is not None:
            values = (
                deep_merge(_values_of(current), change.values)
                if change.values_mode == "merge"
                else dict(change.values)
            )
            source = _with_values(source, values)
        if source != current:
            ops.append({"op": "replace", "path": "/spec/source", "value": source})
        if ops:
            app = await self._patch(name, ops)
        return app, source != current

    async def _scale_deployment(
        self, backend_ref: str, replicas: int, ctx: OperationContext
    ) -> DeploymentInfo:
        values: dict[str, Any] = {}
        cursor = values
        *parents, leaf = self.config.scale_value_path.split(".")
        for part in parents:
            cursor = cursor.setdefault(part, {})
        cursor[leaf] = replicas
        # A merge: the deployment's other values stay as they are.
        return await self._update_deployment(
            backend_ref, DeploymentChange(values=values, values_mode="merge"), ctx
        )

    async def _delete_deployment(self, backend_ref: str, ctx: OperationContext) -> None:
        _, name = self._ref(backend_ref)
        await self._call(
            "DELETE",
            self._app_path(name),
            app=name,
            params={
                "cascade": "true",
                "propagationPolicy": self.config.propagation_policy,
                **self._scope(),
            },
        )

    async def _rollback_deployment(
        self, backend_ref: str, revision: int, ctx: OperationContext
    ) -> DeploymentInfo:
        _, name = self._ref(backend_ref)
        app = await self._get_app(name)
        annotations = (app.get("metadata") or {}).get("annotations") or {}
        try:
            progress = json.loads(annotations.get(ANNOTATION_ROLLBACK) or "{}")
        except ValueError:
            progress = {}
        if isinstance(progress, dict) and has_stamp(progress.get("key"), ctx.idempotency_key):
            return await self._resume_rollback(name, app, progress)
        history = _history(app)
        if revision == 0:
            if len(history) < 2:
                raise InvalidInput(
                    f"Application {name!r} has no previous revision to roll back to",
                    details={"field": "revision"},
                )
            entry = history[-2]
        else:
            found = [h for h in history if _revision(h) == revision]
            if not found:
                raise InvalidInput(
                    f"revision {revision} is not in the history of {name!r} "
                    f"(revisions: {[_revision(h) for h in history]})",
                    details={"field": "revision"},
                )
            entry = found[0]
        body = {
            "name": name,
            "id": int(entry.get("id") or 0),
            "prune": self.config.sync_policy.prune,
            **self._scope(),
        }
        progress = {
            "key": idempotency_stamp(ctx.idempotency_key),
            "id": body["id"],
            # Argo CD refuses a rollback while auto-sync is on: remember it to restore it.
            "automated": (
                ((app.get("spec") or {}).get("syncPolicy") or {}).get("automated")
                if automated_enabled(app)
                else None
            ),
            "done": False,
        }
        ops: list[dict[str, Any]] = [_annotate(app, ANNOTATION_ROLLBACK, json.dumps(progress))]
        if progress["automated"] is not None:
            ops.append({"op": "remove", "path": "/spec/syncPolicy/automated"})
        app = await self._patch(name, ops)
        try:
            await self._call(
                "POST", self._app_path(name, "/rollback"), app=name, json=body, retry=False
            )
        except NetweaveError:
            restore = [_annotate(app, ANNOTATION_ROLLBACK, None)]
            if progress["automated"] is not None:
                restore.append(
                    {
                        "op": "add",
                        "path": "/spec/syncPolicy/automated",
                        "value": progress["automated"],
                    }
                )
            await self._patch(name, restore)
            raise
        return await self._finish_rollback(name, app, entry, progress)

    async def _resume_rollback(
        self, name: str, app: dict[str, Any], progress: dict[str, Any]
    ) -> DeploymentInfo:
        """The same rollback step again (a retry or a restart): finish it, never redo it."""
        if progress.get("done"):
            return self._info(app)
        found = [h for h in _history(app) if int(h.get("id") or 0) == progress.get("id")]
        if not found:
            raise InvalidInput(f"revision to roll back to left the history of {name!r}")
        if progress.get("automated") is None and automated_enabled(app):
            raise Conflict(f"auto-sync of {name!r} was switched on during its rollback")
        body = {"name": name, "id": progress["id"], "prune": self.config.sync_policy.prune}
        try:
            await self._call(
                "POST",
                self._app_path(name, "/rollback"),
                app=name,
                json={**body, **self._scope()},
                retry=False,
            )
        except Conflict as exc:
            if _IN_PROGRESS not in exc.message:
                raise  # an operation is running: the rollback the first attempt started
        return await self._finish_rollback(name, app, found[0], progress)

    async def _finish_rollback(
        self, name: str, app: dict[str, Any], entry: dict[str, Any], progress: dict[str, Any]
    ) -> DeploymentInfo:
        # Make the rolled-back source the desired state, so neither the restored auto-sync nor
        # the next update undoes the rollback.
        current = dict((app.get("spec") or {}).get("source") or {})
        if isinstance(entry.get("source"), dict) and entry["source"].get("repoURL"):
            target = dict(entry["source"])
        else:
            target = {
                **current,
                "targetRevision": entry.get("revision") or current.get("targetRevision"),
            }
        done = json.dumps({**progress, "done": True})
        ops: list[dict[str, Any]] = [
            {"op": "replace", "path": "/spec/source", "value": target},
            _annotate(app, ANNOTATION_ROLLBACK, done),
        ]
        if progress.get("automated") is not None:
            ops.append(
                {"op": "add", "path": "/spec/syncPolicy/automated", "value": progress["automated"]}
            )
        return self._info(await self._patch(name, ops))

    async def _get_history(self, backend_ref: str) -> list[RevisionEntry]:
        _, name = self._ref(backend_ref)
        history = _history(await self._get_app(name))
        entries = []
        for index, item in enumerate(history):
            source: dict[str, Any] = item["source"] if isinstance(item.get("source"), dict) else {}
            initiated = item.get("initiatedBy") or {}
            who = "auto-sync" if initiated.get("automated") else initiated.get("username")
            revision = item.get("revision") or ""
            entries.append(
                RevisionEntry(
                    revision=_revision(item),
                    status="deployed" if index == len(history) - 1 else "superseded",
                    package_version=source.get("targetRevision") or revision or None,
                    description=f"synced {revision}" + (f" by {who}" if who else ""),
                    deployed_at=_parse_time(item.get("deployedAt")),
                    values=_values_of(source) if source else None,
                )
            )
        return entries

    async def _stream_logs(self, backend_ref: str, options: LogOptions) -> AsyncIterator[str]:
        _, name = self._ref(backend_ref)
        params: dict[str, Any] = {**self._scope(), "follow": "true" if options.follow else "false"}
        if options.container:
            params["container"] = options.container
        if options.tail_lines is not None:
            params["tailLines"] = str(options.tail_lines)
        if options.since_seconds is not None:
            params["sinceSeconds"] = str(options.since_seconds)
        http = self.config.http
        # A followed stream may stay quiet for long: no read timeout, only the connect one.
        timeout = httpx.Timeout(
            http.request_timeout,
            connect=http.connect_timeout,
            read=None if options.follow else http.request_timeout,
        )
        url = self._app_path(name, "/logs")
        try:
            async with self.http.stream("GET", url, params=params, timeout=timeout) as resp:
                async for line in resp.aiter_lines():
                    if not line.strip():
                        continue
                    try:
                        chunk = json.loads(line)
                    except ValueError as exc:
                        raise BackendError(
                            "Argo CD sent a log stream line that is not JSON"
                        ) from exc
                    if chunk.get("error"):
                        error = chunk["error"]
                        message = f"Argo CD log stream: {error.get('message') or 'error'}"
                        if error.get("grpc_code") == 5 or error.get("http_code") == 404:
                            raise NotFound(message)
                        raise BackendError(message)
                    result = chunk.get("result") or {}
                    if result.get("last") and not result.get("content"):
                        continue  # the end marker of the stream
                    pod = result.get("podName")
                    content = str(result.get("content", ""))
                    yield f"[{pod}] {content}" if pod else content
        except ArgoPermissionDenied:
            await self._disambiguate_denied(name)
            raise


def _readiness(nodes: Iterable[dict[str, Any]]) -> tuple[ResourceStatus, ...]:
    """Resource tree nodes or ``status.resources`` entries, each judged by its Argo CD health."""
    resources = []
    for node in nodes:
        ready, reason, message = resource_readiness(node.get("health"))
        resources.append(
            ResourceStatus(
                kind=str(node.get("kind", "")),
                name=str(node.get("name", "")),
                namespace=node.get("namespace") or None,
                ready=ready,
                reason=reason,
                message=message,
            )
        )
    return tuple(resources)


__all__ = ["ArgoCDAdapter", "argo_error", "deep_merge"]

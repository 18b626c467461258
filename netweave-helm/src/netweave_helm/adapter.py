"""``HelmAdapter``: charts in a chart repository, releases through the Helm v4 SDK.

Backend references:

* packages: ``<chart name>:<chart version>`` (e.g. ``free5gc:1.1.7``);
* deployments: ``<namespace>/<release name>`` (e.g. ``ran/cu-01``).

Idempotency: every install and upgrade stamps the release with the label
``netweave-op=<sha256(idempotency key)[:40]>``. A retried or resumed create (after a timeout,
a crash, a lease take-over) that hits Helm's "cannot re-use a name that is still in use" looks
at the existing release: with this operation's stamp and ``deployed``, it is the release this
very operation created before (not installed again); with this operation's stamp and left
``pending-install`` or ``failed`` by the interrupted attempt, it is uninstalled with Helm and
installed again (one release at the end, never two); any other release of that name is a 409.
An upgrade (or scale) whose stamp is already on the latest ``deployed`` revision is not run
again; one that finds its own revision left ``pending-upgrade`` rolls it back with Helm and
upgrades again. A release left ``pending-*`` by anything else (a ``helm`` CLI that crashed) is a
409 that says how to recover it. Uninstall ignores an already missing release. Rollback has no
stamp (the SDK takes no labels for it); a retried rollback to the same revision makes one more
identical revision, and a rollback finishes a release left ``pending-rollback`` (Helm's own way
out of every ``pending-*`` but ``pending-install``).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import functools
import hashlib
import json
import logging
import re
import shutil
import tempfile
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable, Container
from pathlib import Path
from typing import Any, ClassVar

import yaml
from netweave.adapters import (
    AdapterHealth,
    BackendChanges,
    Capability,
    DeploymentChange,
    DeploymentInfo,
    DeploymentSpec,
    DMSAdapter,
    KnownState,
    OperationContext,
    PackageDescription,
    PackageInfo,
    PackageListing,
    PackageUpload,
    read_begins,
)
from netweave.adapters.idempotency import idempotency_stamp
from netweave.adapters.kubernetes import ObjectReader
from netweave.adapters.times import parse_time as _parse_time
from netweave.adapters.values import merge_values as deep_merge
from netweave.config import FetchSettings
from netweave.errors import (
    AlreadyExists,
    BackendError,
    BackendTimeout,
    ClusterNotConfigured,
    Conflict,
    InvalidInput,
    NetweaveError,
    NotFound,
    Unsupported,
)
from netweave.fetching import FetchPolicy, fetch_to_file
from netweave.models import (
    DeploymentStatus,
    LogOptions,
    Preview,
    ResourceDiff,
    ResourceStatus,
    RevisionEntry,
)

from netweave_helm import live, sdk
from netweave_helm.archives import check_schema_references, inspect_archive
from netweave_helm.cluster import ClusterAccess
from netweave_helm.config import HelmConfig, LocalStorage
from netweave_helm.dependencies import DependencyFetcher, vendor
from netweave_helm.describe import replica_candidates, sentinels, workloads
from netweave_helm.hooks import HOOKS, HelmHooks
from netweave_helm.logs import stream_release_logs
from netweave_helm.rendering import (
    RenderPool,
    WorkerLost,
    cluster_options,
    deploy_release,
    render_preview,
)
from netweave_helm.status import deployment_status, history_status
from netweave_helm.storage import ChartEntry, ChartStore, LocalChartStore, make_store
from netweave_helm.storage.oci import pull_reference
from netweave_helm.validation import (
    SpareCheck,
    ValidatedChart,
    extensions_from_metadata,
    validate_archive,
)
from netweave_helm.watch import WATCHED_OBJECTS, watch_releases

_log = logging.getLogger("netweave_helm")
OP_LABEL = "netweave-op"
DEPLOYMENT_LABEL = "netweave-deployment"
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_SOURCE = re.compile(r"^# Source: (.+)$", re.M)
_REVISION_MISSING = re.compile(r"has no (\d+) version|revision .* not found", re.I)
#: Helm's statuses of a release whose install/upgrade/rollback began and has not ended: Helm
#: refuses every other change until it is resolved.
_PENDING = frozenset({"pending-install", "pending-upgrade", "pending-rollback"})
#: What an interrupted install of this operation can leave behind: uninstalled, then installed
#: again. (``uninstalling``: an interrupted clean-up of the same.)
_REINSTALL = frozenset({"pending-install", "failed", "uninstalling"})
_DONE = frozenset({"deployed", "superseded"})
_ROLLBACK_TO = re.compile(r"^Rollback to (\d+)$")


def key_label(idempotency_key: str) -> str:
    """The release's ``netweave-op`` label: core's one idempotency stamp."""
    return idempotency_stamp(idempotency_key)


def _label_value(value: str) -> str:
    return value if _LABEL_VALUE.match(value) else hashlib.sha256(value.encode()).hexdigest()[:40]


def parse_package_ref(backend_ref: str) -> tuple[str, str]:
    name, sep, version = backend_ref.partition(":")
    if not sep or not name or not version:
        raise NotFound(f"no chart {backend_ref!r} (expected <name>:<version>)")
    return name, version


def parse_release_ref(backend_ref: str) -> tuple[str, str]:
    namespace, sep, name = backend_ref.partition("/")
    if not sep or not namespace or not name:
        raise NotFound(f"no release {backend_ref!r} (expected <namespace>/<release>)")
    return namespace, name


def nested_value(dotted: str, value: Any) -> dict[str, Any]:
    result: dict[str, Any] = {}
    cursor = result
    parts = dotted.split(".")
    for part in parts[:-1]:
        cursor[part] = {}
        cursor = cursor[part]
    cursor[parts[-1]] = value
    return result


def split_manifest(manifest: str) -> dict[str, str]:
    """Helm's rendered manifest (``---`` documents with ``# Source:`` comments) by source."""
    manifests: dict[str, str] = {}
    for document in re.split(r"^---\s*$", manifest, flags=re.M):
        body = document.strip()
        if not body:
            continue
        match = _SOURCE.search(body)
        source = match.group(1).strip() if match else f"document-{len(manifests)}"
        manifests[source] = (manifests[source] + "\n---\n" + body) if source in manifests else body
    return manifests


# A line that starts a top-level key of a block mapping: anything but indentation, a comment,
# a document marker or a sequence entry at column 0.
_TOP_LEVEL_KEY = re.compile(r"^[^\s#\-.]")
_HEADLINE_KEYS = ("apiVersion:", "kind:", "metadata:")


def _headline(document: str) -> str:
    """A document's top-level ``apiVersion``, ``kind`` and ``metadata`` entries only (Helm
    renders block mappings, one top-level key per column-0 line): the whole of a Deployment's
    spec need not be parsed to name it."""
    kept: list[str] = []
    keeping = False
    for line in document.splitlines():
        if _TOP_LEVEL_KEY.match(line):
            keeping = line.startswith(_HEADLINE_KEYS)
        if keeping:
            kept.append(line)
    return "\n".join(kept)


def _documents(chunk: str) -> list[Any]:
    """The YAML documents of one ``---``-separated chunk: its headline alone when that names
    a resource, else every document read whole (another style than Helm's, or no resource)."""
    try:
        doc = yaml.load(_headline(chunk), Loader=yaml.CSafeLoader)
    except yaml.YAMLError:
        doc = None
    if isinstance(doc, dict) and "kind" in doc:
        return [doc]
    return list(yaml.load_all(chunk, Loader=yaml.CSafeLoader))


_DOCUMENT = re.compile(r"^---\s*$", re.M)
# Values the fast path takes as written: a lowercase DNS name starting with a letter, and a
# CamelCase kind. Any other value (quoted, starting with a digit as YAML numbers do, an alias, a
# comment after it...) is left to the YAML parser, as are the words YAML 1.1 reads as booleans
# or null.
_PLAIN_NAME = re.compile(r"[a-z]([a-z0-9.-]*[a-z0-9])?\Z")
_PLAIN_KIND = re.compile(r"[A-Z][A-Za-z0-9]*\Z")
_YAML_WORDS = frozenset({"yes", "no", "true", "false", "on", "off", "null"})


def _plain(value: str, pattern: re.Pattern[str]) -> bool:
    return pattern.match(value) is not None and value.lower() not in _YAML_WORDS


def _simple_resource(chunk: str) -> tuple[str, str, str | None] | None:
    """Kind, name and namespace of a document written as Helm renders one (block style, plain
    values), read line by line without a YAML parser; None whenever anything is unusual,
    then the parser decides. About ten times cheaper than parsing the headline."""
    kind: str | None = None
    name: str | None = None
    namespace: str | None = None
    seen: set[str] = set()
    in_metadata = False
    child_indent: int | None = None
    for line in chunk.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if line[0] != " ":  # a top-level key (a tab, a list or a marker: unusual)
            key, colon, value = line.partition(":")
            if not colon or key in seen or line[0] in "\t-\"'{[&*!%@`|>?":
                return None
            seen.add(key)
            value = value.strip()
            in_metadata = key == "metadata"
            if in_metadata and value:
                return None  # flow style, an anchor...
            if key == "kind":
                if not _plain(value, _PLAIN_KIND):
                    return None
                kind = value
            continue
        if not in_metadata:
            continue
        indent = len(line) - len(line.lstrip(" "))
        if line[indent] == "\t":
            return None
        if child_indent is None:
            child_indent = indent
        if indent != child_indent:
            continue  # deeper: labels, annotations...
        key, colon, value = stripped.partition(":")
        if key in ("name", "namespace"):
            value = value.strip()
            if key in seen or not _plain(value, _PLAIN_NAME):
                return None
            seen.add(key)
            if key == "name":
                name = value
            else:
                namespace = value
    if kind is None or name is None:
        return None
    return kind, name, namespace


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def resources_of(manifest: str, namespace: str) -> tuple[ResourceStatus, ...]:
    """The resources (kind, name, namespace) of Helm's rendered manifest, in order; none if
    any document is not YAML. Each carries a digest of its rendered document, so that two
    revisions tell which objects an upgrade changed (the ETSI face's resourceChanges)."""
    found: list[ResourceStatus] = []
    try:
        for chunk in _DOCUMENT.split(manifest):
            if not chunk.strip():
                continue  # before the first separator, or between two: no document
            simple = _simple_resource(chunk)
            if simple is not None:
                kind, name, own_namespace = simple
                found.append(
                    ResourceStatus(
                        kind=kind,
                        name=name,
                        namespace=own_namespace or namespace,
                        digest=_digest(chunk.strip()),
                    )
                )
                continue
            for doc in _documents(chunk):
                if isinstance(doc, dict) and "kind" in doc:
                    meta = doc.get("metadata") or {}
                    meta = meta if isinstance(meta, dict) else {}
                    found.append(
                        ResourceStatus(
                            kind=str(doc["kind"]),
                            name=str(meta.get("name", "")),
                            namespace=str(meta.get("namespace", namespace)),
                            digest=_digest(json.dumps(doc, sort_keys=True, default=str)),
                        )
                    )
    except yaml.YAMLError:
        return ()
    return tuple(found)


# Where :func:`_parsing` leaves a release's parsed resources in the SDK's answer.
_RESOURCES = "__netweave_resources"


def _parsing(func: Callable[..., dict[str, Any]], namespace: str) -> Callable[..., dict[str, Any]]:
    """``func`` (an SDK call answering a release, or ``get all``'s ``{"summary": ...}``) that
    also parses the release's manifest, on the worker thread that runs it: parsing YAML takes
    milliseconds the event loop is better spent on."""

    def call(*args: Any, **kwargs: Any) -> dict[str, Any]:
        answer = func(*args, **kwargs)
        target = answer.get("summary") if isinstance(answer.get("summary"), dict) else answer
        if isinstance(target, dict) and "manifest" in target:
            target[_RESOURCES] = resources_of(str(target.get("manifest") or ""), namespace)
        return answer

    return call


def _has_key(values: Any, dotted: str) -> bool:
    for part in dotted.split("."):
        if not isinstance(values, dict) or part not in values:
            return False
        values = values[part]
    return True


def _stuck(namespace: str, name: str, summary: dict[str, Any]) -> Conflict:
    """A release left ``pending-*`` by something other than this operation: what happened and
    how to get out of it."""
    status = str(summary.get("status") or "")
    revision = summary.get("revision")
    if status == "pending-install":
        how = (
            f"check what it holds, then remove it with `helm uninstall {name} -n {namespace}` "
            "and create the deployment again"
        )
    else:
        how = (
            f"roll it back with `helm rollback {name} -n {namespace}`, or through the gateway "
            "(POST /o2dms/v1/operations/{operationId}/rollback of the failed operation, or "
            "POST /o2dms/v1/nfDeployments/{deploymentId}/rollback), then try again"
        )
    return Conflict(
        f"release {namespace}/{name} is stuck in {status} (revision {revision}): a Helm client "
        "or an earlier operation (not this one) started to change it and never finished, and "
        f"Helm refuses every other change until that is resolved; {how}",
        details={"release": f"{namespace}/{name}", "helmStatus": status, "revision": revision},
    )


class _ReleaseLock:
    """One release's writes, one at a time (Helm: concurrent writes to one release can corrupt
    its history). An SDK call the holder stopped waiting for (a timeout) keeps the lock until
    it returns: Helm's release storage writes go on after a cancellation, and the next attempt
    must see what they left, not race them."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._late: list[asyncio.Future[Any]] = []
        self._token: contextvars.Token[list[asyncio.Future[Any]] | None] | None = None

    async def __aenter__(self) -> None:
        await self._lock.acquire()
        self._late = []
        self._token = sdk.outliving.set(self._late)

    async def __aexit__(self, *exc_info: object) -> None:
        if self._token is not None:
            sdk.outliving.reset(self._token)
            self._token = None
        running = [future for future in self._late if not future.done()]
        if not running:
            self._lock.release()
            return
        remaining = len(running)

        def returned(_: asyncio.Future[Any]) -> None:
            nonlocal remaining
            remaining -= 1
            if remaining == 0:
                self._lock.release()

        for future in running:
            future.add_done_callback(returned)


def _known_revision(ctx: OperationContext, summary: dict[str, Any] | None) -> KnownState | None:
    """The gateway's record of the release (``ctx.known``) when Helm's latest revision is the
    one it records, so its values and chart need no Helm read; else ``None`` (changed
    behind the gateway's back, or rolled back just now: read Helm)."""
    known = ctx.known
    if known is None or summary is None or known.revision <= 0:
        return None
    try:
        revision = int(summary.get("revision") or 0)
    except (TypeError, ValueError):
        return None
    return known if revision == known.revision else None


#: An upgrade's outcome before it is described: Helm's answer and the user values and
#: description it applied, or a failure already described.
_Upgraded = tuple[dict[str, Any], tuple[dict[str, Any], str]] | DeploymentInfo


def _upgrade_base(ctx: OperationContext, change: DeploymentChange) -> KnownState | None:
    """The gateway's record of the release to upgrade from without reading Helm's latest
    revision first: on a first attempt only (a retried one reads what the interrupted attempt
    left), with a recorded revision and the chart to deploy known."""
    known = ctx.known
    if ctx.attempt != 1 or known is None or known.revision <= 0:
        return None
    if change.package is None and known.package is None:
        return None
    return known


def _revision_of(release: dict[str, Any]) -> int:
    try:
        return int(release.get("revision") or 0)
    except (TypeError, ValueError):
        return 0


#: The collections (plurals) whose objects' changes the adapter's watch reports, and Secrets
#: (its release storage, by label: a chart's Secret so labelled is reported too).
_WATCHED = frozenset({path.rsplit("/", 1)[1] for path in WATCHED_OBJECTS} | {"secrets"})


def _history(config: sdk.Config, name: str) -> list[dict[str, Any]]:
    """Revisions oldest first, each with its description and user values (Helm's history
    summaries carry neither)."""
    entries = config.history(name)
    for entry in entries:
        revision = entry.get("revision")
        if revision is None:
            continue
        everything = config.get_all(name, revision=int(revision))
        entry["description"] = (everything.get("info") or {}).get("description")
        entry["values"] = everything.get("config") or {}
    return entries


class HelmAdapter(DMSAdapter[HelmConfig]):
    """Helm charts and releases on the Helm v4 Go SDK (helm-python-sdk); no helm binary."""

    TYPE: ClassVar[str] = "helm"
    DISTRIBUTION: ClassVar[str] = "netweave-helm"
    DESCRIPTION: ClassVar[str] = (
        "Helm charts (local repository, OCI, ChartMuseum, HTTP) and releases"
    )
    CAPABILITIES: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.PACKAGE_MANAGEMENT,
            Capability.DEPLOYMENT_LIFECYCLE,
            Capability.ROLLBACK,
            Capability.SCALING,
            Capability.HISTORY,
            Capability.LOGS,
            Capability.DRY_RUN,
            Capability.DRIFT,
        }
    )
    #: Releases and their objects are watched (list+watch), not polled: see ``watch``.
    WATCHES: ClassVar[bool] = True
    PACKAGE_TYPES: ClassVar[frozenset[str]] = frozenset({"helm"})
    MAX_DEPLOYMENT_NAME_LENGTH: ClassVar[int] = 53
    #: pluggy hooks the loader registers for this adapter type.
    hooks: ClassVar[HelmHooks] = HOOKS

    def __init__(
        self,
        name: str,
        config: HelmConfig,
        *,
        data_dir: Path | None = None,
        fetch: FetchSettings | None = None,
    ) -> None:
        super().__init__(name, config, data_dir=data_dir, fetch=fetch)
        config = self.config
        self.cluster = ClusterAccess(config.cluster, name)
        self._runner = self._new_runner()
        self._validations = asyncio.Semaphore(config.cluster.max_concurrency)
        #: A chart-check child started ahead of the next upload (its SDK loads between them).
        self._spare_check = SpareCheck(config.render)
        #: Capped processes that render charts: installs, upgrades, scales and previews.
        self._renders: RenderPool | None = None
        self._store: ChartStore | None = None
        self._work_dir: Path | None = None
        self._release_locks: dict[str, _ReleaseLock] = {}
        #: Deletions of charts stored by uploads that had given up (``_put``).
        self._background: set[asyncio.Future[None]] = set()
        #: (path, size, mtime) of chart archives whose schemas were checked (``_chart_path``).
        self._vetted: set[tuple[str, int, int]] = set()
        #: Scans under way per archive key: a burst of creates of one chart scans it once.
        self._vetting: dict[tuple[str, int, int], asyncio.Future[None]] = {}
        storage = config.storage
        self.serves_repository = isinstance(storage, LocalStorage) and storage.serve
        self.requested_serve_path = (
            storage.serve_path if isinstance(storage, LocalStorage) else None
        )
        # The store exists from construction on so the app-init hook (which may run before
        # start()) can mount the repository; its directory is created in start().
        self._store = make_store(
            config,
            local_dir=self._local_dir(),
            served_at=self.requested_serve_path,
        )

    # -- lifecycle -------------------------------------------------------------------------

    def _new_runner(self) -> sdk.SdkRunner:
        # A timed-out call is given at most the write timeout (and 30 s) to unwind.
        unwind = min(30.0, self.config.timeouts.write)
        return sdk.SdkRunner(self.config.cluster.max_concurrency, unwind=unwind)

    def _local_dir(self) -> Path:
        storage = self.config.storage
        if isinstance(storage, LocalStorage) and storage.repository_dir is not None:
            return storage.repository_dir
        # ``dataDir`` in the configuration wins over the instance directory the loader gives.
        data_dir = self.config.data_dir or self.data_dir
        if data_dir is not None:
            return data_dir / "charts"
        # Outside the gateway's loader (scripts, tests): the gateway's default data directory.
        return Path(".netweave") / "adapters" / self.name / "charts"

    @property
    def store(self) -> ChartStore:
        assert self._store is not None
        return self._store

    @property
    def local_store(self) -> LocalChartStore | None:
        return self._store if isinstance(self._store, LocalChartStore) else None

    async def _check_deployment(self, spec: DeploymentSpec, dry_run: bool) -> None:
        # 503 ClusterNotConfigured, saying how to configure one, before the core accepts a
        # deployment; a preview renders without a cluster.
        if not dry_run:
            self.cluster.require()

    async def _start(self) -> None:
        store = self.store
        self._work_dir = Path(tempfile.mkdtemp(prefix=f"netweave-helm-{self.name}-"))
        # A semaphore belongs to the event loop that first waits on it: a fresh one per start.
        self._validations = asyncio.Semaphore(self.config.cluster.max_concurrency)
        await store.start()
        if not store.read_only:
            await self._spare_check.open(self._work_dir)
        if self.cluster.source() is not None:
            # The render pool keeps one worker once it has one: started now, in the
            # background, the first install need not wait for it to load the Helm SDK.
            self._render_pool().prestart(1)

    async def _stop(self) -> None:
        await self._spare_check.close()
        await self.store.close()
        if not isinstance(self._store, LocalChartStore):
            # A remote store's HTTP client is closed for good: a fresh one, so that a stopped
            # adapter can start again (the local store, mounted by the app, reopens itself).
            self._store = make_store(
                self.config, local_dir=self._local_dir(), served_at=self.requested_serve_path
            )
        self._runner.close()
        if self._renders is not None:
            renders, self._renders = self._renders, None
            await renders.close()
        # Locks belong to this run's event loop (one may still be held for a call abandoned
        # at shutdown): a restarted adapter starts with none.
        self._release_locks = {}
        self._vetting = {}
        # A fresh pool (its threads start on demand), so a stopped adapter can start again.
        self._runner = self._new_runner()
        await asyncio.to_thread(self.cluster.close)
        if self._work_dir is not None:
            shutil.rmtree(self._work_dir, ignore_errors=True)
            self._work_dir = None

    async def _health(self) -> AdapterHealth:
        """Healthy when the chart storage answers (package work); the cluster is reported in
        ``details`` (``clusterReachable``), since deployments are refused without it anyway."""
        healthy, message = await self.store.health()
        details: dict[str, Any] = {
            "storage": self.store.kind,
            "repository": self.store.location,
            "cluster": self.cluster.source() or "not configured",
        }
        if self.cluster.source() is not None:
            details["clusterReachable"], problem = await self._cluster_reachable()
            if problem:
                details["clusterMessage"] = problem
        return AdapterHealth(healthy=healthy, message=message, details=details)

    async def _cluster_reachable(self) -> tuple[bool, str | None]:
        try:
            config = await self._helm(self.config.cluster.namespace)
            await asyncio.wait_for(
                self._runner.run("probing the cluster", config.check_reachable),
                min(10.0, self.config.timeouts.read),
            )
        except (NetweaveError, TimeoutError) as exc:
            return False, exc.message if isinstance(exc, NetweaveError) else "probe timed out"
        return True, None

    def _work(self) -> Path:
        if self._work_dir is None:
            self._work_dir = Path(tempfile.mkdtemp(prefix=f"netweave-helm-{self.name}-"))
        return self._work_dir

    def _render_pool(self) -> RenderPool:
        if self._renders is None:
            render = self.config.render
            # As many as the SDK calls that may run at once (installs may wait on the
            # cluster for long); started on demand, idle ones ended after a minute.
            size = render.workers or self.config.cluster.max_concurrency
            self._renders = RenderPool(render, size, self._work())
        return self._renders

    async def _deploy(
        self,
        action: str,
        chart: Path,
        name: str,
        values: dict[str, Any],
        namespace: str,
        **options: Any,
    ) -> dict[str, Any]:
        """Helm's ``install``/``upgrade`` made in a capped render worker (Helm renders the chart
        in that call, and a chart's templates must not take the gateway's memory or CPU). Its
        manifest's resources are parsed by :meth:`_describe`, off the event loop."""
        what = f"{'upgrading' if action == 'upgrade' else 'installing'} release {name}"
        return await deploy_release(
            self._render_pool(),
            action,
            chart,
            release=name,
            values=values,
            namespace=namespace,
            cluster=cluster_options(self.config.cluster),
            options=options,
            what=what,
            unwind=min(30.0, self.config.timeouts.write),
        )

    # -- packages --------------------------------------------------------------------------

    def _package_info(self, entry: ChartEntry, warnings: tuple[str, ...] = ()) -> PackageInfo:
        metadata = entry.metadata
        extensions = extensions_from_metadata({**metadata, "version": entry.version})
        extensions["repository"] = self.store.location
        extensions["storage"] = self.store.kind
        if entry.created:
            extensions["created"] = entry.created
        if entry.digest:
            extensions["digest"] = entry.digest
        maintainers = metadata.get("maintainers") or []
        provider = None
        if maintainers and isinstance(maintainers[0], dict):
            provider = maintainers[0].get("name")
        return PackageInfo(
            backend_ref=f"{entry.name}:{entry.version}",
            name=entry.name,
            version=entry.version,
            package_type="helm",
            package_uri=entry.uri,
            checksum=entry.digest,
            description=metadata.get("description"),
            provider=str(provider) if provider else None,
            extensions=extensions,
            warnings=warnings,
        )

    async def _list_packages(self) -> list[PackageInfo]:
        return [self._package_info(entry) for entry in await self.store.list_charts()]

    async def _list_packages_since(
        self, token: str | None, known_refs: Container[str]
    ) -> PackageListing:
        def known(name: str, version: str) -> bool:
            return f"{name}:{version}" in known_refs  # the backend_ref _package_info makes

        listing = await self.store.listing_since(token, known)
        return PackageListing(
            token=listing.token,
            packages=[self._package_info(entry) for entry in listing.entries],
            complete=listing.complete,
        )

    async def _get_package(self, backend_ref: str) -> PackageInfo:
        name, version = parse_package_ref(backend_ref)
        return self._package_info(await self.store.get(name, version))

    async def _delete_package(self, backend_ref: str) -> None:
        name, version = parse_package_ref(backend_ref)
        await self.store.delete(name, version)

    async def set_package_deprecated(self, backend_ref: str, deprecated: bool) -> None:
        # The served local repository marks it as Helm does; other repositories are not ours.
        store = self.local_store
        if store is not None:
            name, version = parse_package_ref(backend_ref)
            await store.set_deprecated(name, version, deprecated)

    async def _upload_package(self, upload: PackageUpload) -> PackageInfo:
        if upload.archive is None:
            return await self._register_by_reference(upload)
        checksum = (
            upload.checksum if upload.checksum and upload.checksum.startswith("sha256:") else None
        )
        return await self._ingest(
            upload.archive, upload.name, upload.version, checksum, package_id=upload.package_id
        )

    async def _ingest(
        self,
        archive: Path,
        name: str | None,
        version: str | None,
        checksum: str | None = None,
        *,
        package_id: str | None = None,
    ) -> PackageInfo:
        if self.store.read_only:
            # Refuse before the work: the repository cannot take it anyway.
            raise Unsupported(
                f"the {self.store.kind} chart repository {self.store.location} is read-only; "
                "register charts it holds by packageUri <name>:<version>",
                details={"capability": "package-upload", "adapter": self.name},
            )
        started = time.monotonic()
        validated = await self._validate(
            archive,
            expected_name=name,
            expected_version=version,
            dependency_resolvable=self._dependency_resolvable,
            known_digest=checksum,
        )
        if await self.store.exists(validated.name, validated.version):
            raise AlreadyExists(
                f"chart {validated.name}:{validated.version} already exists",
                details={"name": validated.name, "version": validated.version},
            )
        if not validated.to_vendor:
            entry = await self._put(
                archive, validated.name, validated.version, validated.metadata, validated.digest
            )
            self._log_stored(entry, validated.size, started, package_id)
            return self._package_info(entry, validated.warnings)
        with tempfile.TemporaryDirectory(dir=self._work()) as tmp:
            rebuilt = await self._vendor(archive, Path(tmp), validated)
            final = await self._validate(
                rebuilt, expected_name=validated.name, expected_version=validated.version
            )
            entry = await self._put(
                rebuilt, final.name, final.version, final.metadata, final.digest
            )
        self._log_stored(entry, final.size, started, package_id)
        note = (
            f"[INFO] dependencies {', '.join(validated.to_vendor)} were fetched from their "
            "repositories and vendored into the stored archive (its checksum differs from the "
            "uploaded file's)"
        )
        return self._package_info(entry, (*final.warnings, note))

    async def _put(
        self, archive: Path, name: str, version: str, metadata: dict[str, Any], digest: str
    ) -> ChartEntry:
        """``store.put`` that leaves nothing behind when its caller gives up (the core's write
        timeout, a client gone): the put itself cannot be stopped half-way (a thread, a push),
        so it runs to its end and what it stored is then deleted again."""
        task = asyncio.ensure_future(self.store.put(archive, name, version, metadata, digest))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(lambda done: self._take_back(done, name, version))
            raise

    def _take_back(self, put: asyncio.Future[ChartEntry], name: str, version: str) -> None:
        if put.cancelled() or put.exception() is not None:
            return
        deletion = asyncio.ensure_future(self.store.delete(name, version))
        self._background.add(deletion)
        deletion.add_done_callback(self._background.discard)
        _log.warning(
            "adapter %s: chart %s:%s was stored after its upload gave up; deleting it",
            self.name,
            name,
            version,
        )

    async def _validate(
        self,
        archive: Path,
        *,
        expected_name: str | None,
        expected_version: str | None,
        dependency_resolvable: Callable[[dict[str, Any]], bool] | None = None,
        known_digest: str | None = None,
    ) -> ValidatedChart:
        # Each validation starts a child process holding the chart in memory: bound how many
        # run at once, like the SDK calls made in this process.
        async with self._validations:
            return await validate_archive(
                archive,
                expected_name=expected_name,
                expected_version=expected_version,
                config=self.config,
                time_limit=self.config.timeouts.write,
                work_dir=self._work(),
                dependency_resolvable=dependency_resolvable,
                known_digest=known_digest,
                spare=self._spare_check,
            )

    def _log_stored(
        self, entry: ChartEntry, size: int, started: float, package_id: str | None
    ) -> None:
        _log.info(
            "adapter %s stored chart %s:%s (%d bytes, %s) in %s in %.3f s",
            self.name,
            entry.name,
            entry.version,
            size,
            entry.digest,
            self.store.location,
            time.monotonic() - started,
            extra={
                "adapter": self.name,
                # The gateway's id as it gave it (never rebuilt here: it may carry a suffix).
                "packageId": package_id,
                "size": size,
                "checksum": entry.digest,
                "repository": self.store.location,
                "durationMs": round((time.monotonic() - started) * 1000),
            },
        )

    def _dependency_resolvable(self, dependency: dict[str, Any]) -> bool:
        repository = str(dependency.get("repository") or "").rstrip("/")
        allowed = {repo.url for repo in self.config.dependency_repositories}
        if self.store.kind in {"oci", "http", "chartmuseum"}:
            allowed.add(self.store.location.rstrip("/"))
        return bool(repository) and repository in allowed

    async def _vendor(self, archive: Path, directory: Path, validated: ValidatedChart) -> Path:
        """The archive with the dependencies it does not carry added to ``charts/``, fetched by
        the gateway through the fetch policy (never by the Helm SDK; see
        :mod:`netweave_helm.dependencies`)."""
        wanted = set(validated.to_vendor)
        declared = validated.metadata.get("dependencies") or []
        remote_store = self.store.kind in {"oci", "http", "chartmuseum"}
        fetcher = DependencyFetcher(
            self._fetch_policy(),
            store=self.store if remote_store else None,
            max_bytes=self.config.limits.max_uncompressed_bytes,
            timeout=self.config.http_timeout,
        )
        return await vendor(
            archive,
            directory,
            top=validated.facts.top,
            dependencies=[d for d in declared if str(d.get("name")) in wanted],
            fetcher=fetcher,
        )

    async def _register_by_reference(self, upload: PackageUpload) -> PackageInfo:
        """``packageUri``: a chart already in this repository, or an archive to fetch."""
        uri = upload.package_uri or ""
        own = await self._find_in_store(uri, upload.name, upload.version)
        if own is not None:
            # Found, not stored by this call: a failed onboarding must not delete it.
            return dataclasses.replace(self._package_info(own), stored=False)
        parts = urllib.parse.urlsplit(uri)
        with tempfile.TemporaryDirectory(dir=self._work()) as tmp:
            if parts.scheme in {"http", "https", "oci"}:
                await self._check_remote_host(uri)
            if parts.scheme in {"http", "https"}:
                path = await self._download_uri(uri, Path(tmp))
            elif parts.scheme == "oci":
                path = await self._pull_oci(uri, Path(tmp), upload.version)
            else:
                raise InvalidInput(
                    f"packageUri {uri!r} is neither a chart of this repository "
                    "(<name>:<version>) nor an http(s):// or oci:// chart",
                    details={"field": "packageUri"},
                )
            return await self._ingest(
                path, upload.name, upload.version, package_id=upload.package_id
            )

    async def _find_in_store(self, uri: str, name: str, version: str) -> ChartEntry | None:
        if uri in {f"{name}:{version}", f"{name}-{version}"}:
            try:
                return await self.store.get(name, version)
            except NotFound:
                if self.store.read_only:
                    raise
                return None
        if self.store.location and uri.startswith(self.store.location):
            with contextlib.suppress(NotFound):
                entry = await self.store.get(name, version)
                if entry.uri in (uri, None) or uri.rstrip("/") == self.store.location:
                    return entry
        return None

    def _fetch_policy(self) -> FetchPolicy:
        """Core's policy for fetches a client's content causes (``packageUri``, dependency
        repositories): the SSRF rules with the gateway's ``fetch.allowedCidrs``."""
        return FetchPolicy.from_settings(
            self.config.fetch if self.config.fetch is not None else self.gateway_fetch,
            allow_private=self.config.allow_private_package_uris,
            allow_hint="allowPrivatePackageUris in the adapter's config",
        )

    async def _check_remote_host(self, uri: str) -> None:
        """A client-supplied URL must not make the gateway fetch from its own network: core's
        fetch policy (no link-local, metadata, multicast or reserved addresses ever; loopback
        and private ones only with ``allowPrivatePackageUris``)."""
        await self._fetch_policy().check(uri, field="packageUri")

    async def _download_uri(self, uri: str, directory: Path) -> Path:
        """Stream ``uri`` to a file (bounded) through core's fetch policy: each redirect hop
        checked, the connection pinned to the checked address, no server words echoed."""
        return await fetch_to_file(
            self._fetch_policy(),
            uri,
            directory / "chart.tgz",
            limit=self.config.limits.max_uncompressed_bytes,
            timeout=self.config.http_timeout,
            field="packageUri",
        )

    async def _pull_oci(self, uri: str, directory: Path, version: str) -> Path:
        """The chart at ``oci://…`` pulled by the gateway through the fetch policy (token
        realm and blob redirects included, each connection pinned), not by the Helm SDK."""
        return await pull_reference(
            uri,
            directory,
            policy=self._fetch_policy(),
            version=version,
            max_bytes=self.config.limits.max_uncompressed_bytes,
            timeout=self.config.http_timeout,
            field="packageUri",
        )

    async def _chart_path(self, package: PackageInfo) -> Path:
        """A local archive of ``package`` that Helm may load: its schemas refer nowhere else
        (checked once per file; a chart registered from a remote repository was never
        uploaded through the gateway's checks)."""
        path = await self._chart_archive(package)
        stat = path.stat()  # inline: one local stat costs less than a thread hand-over
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        if key not in self._vetted:
            scan = self._vetting.get(key)
            if scan is None:
                scan = asyncio.ensure_future(
                    asyncio.to_thread(check_schema_references, path, self.config.limits)
                )
                self._vetting[key] = scan
                scan.add_done_callback(functools.partial(self._scanned, key))
            # Shielded: one waiter giving up (a timeout) does not stop the others' scan.
            await asyncio.shield(scan)
        return path

    def _scanned(self, key: tuple[str, int, int], scan: asyncio.Future[None]) -> None:
        self._vetting.pop(key, None)
        if scan.cancelled() or scan.exception() is not None:
            return  # not vetted: the next use scans again (its waiters got the error)
        if len(self._vetted) >= 4096:
            self._vetted.clear()  # bounded; a miss only costs one more scan
        self._vetted.add(key)

    async def _package_archive(self, backend_ref: str) -> Path | None:
        return await self._chart_archive(await self._get_package(backend_ref))

    async def _describe_package(self, backend_ref: str) -> PackageDescription | None:
        """Render the chart offline with its defaults, then with a sentinel in each
        replica-like value (see :mod:`netweave_helm.describe`), both in a capped render worker."""
        package = await self._get_package(backend_ref)
        chart = await self._chart_path(package)
        facts = await asyncio.to_thread(inspect_archive, chart, self.config.limits)
        # The release named after the chart: Helm's usual fullname then is the chart's name.
        release = re.sub(r"[^a-z0-9-]", "-", package.name.lower())[:53].strip("-") or "vnf"

        async def render(values: dict[str, Any]) -> str:
            result = await render_preview(
                chart,
                release=release,
                namespace=self.config.cluster.namespace,
                values=values,
                upgrade=False,
                cluster=None,
                caps=self.config.render,
                time_limit=self.config.timeouts.write,
                work_dir=self._work(),
                pool=self._render_pool(),
            )
            return str(result.get("manifest") or "")

        defaults = await render({})
        candidates = replica_candidates(facts.values or {})
        overlay, by_value = sentinels(candidates)
        probed = None
        if candidates:
            try:
                probed = await render(overlay)
            except NetweaveError:
                probed = None  # a chart that refuses such counts: no replica keys known
        return PackageDescription(
            workloads=workloads(defaults, probed, by_value), metadata=dict(facts.chart_yaml)
        )

    async def _chart_archive(self, package: PackageInfo) -> Path:
        """A local archive of ``package``: the local repository's own file, or a download
        cached per digest (a re-uploaded version with other content is fetched again)."""
        name, version = parse_package_ref(package.backend_ref)
        if isinstance(self.store, LocalChartStore):
            return await self.store.fetch(name, version, self._work())
        digest = (package.checksum or "unknown").removeprefix("sha256:")[:32]
        directory = self._work() / "charts" / digest
        cached = directory / f"{name}-{version}.tgz"
        if package.checksum is not None and await asyncio.to_thread(cached.is_file):
            return cached
        return await self.store.fetch(name, version, directory)

    # -- deployments -----------------------------------------------------------------------

    def _lock(self, namespace: str, name: str) -> _ReleaseLock:
        key = f"{namespace}/{name}"
        lock = self._release_locks.get(key)
        if lock is None:
            lock = self._release_locks[key] = _ReleaseLock()
        return lock

    def _timeout(self) -> int:
        return min(self.config.cluster.operation_timeout, int(self.config.timeouts.write))

    def _wait(self) -> str | None:
        wait = self.config.cluster.wait
        return None if wait == "none" else wait

    async def _helm(self, namespace: str) -> sdk.Config:
        # Made once per namespace (an SDK call, on a thread); after that a dictionary read.
        self.cluster.require()
        config = self.cluster.configured(namespace)
        if config is not None:
            return config
        return await asyncio.to_thread(self.cluster.helm, namespace)

    async def _create_deployment(
        self, spec: DeploymentSpec, ctx: OperationContext
    ) -> DeploymentInfo:
        self.cluster.require()
        namespace = spec.namespace or self.config.cluster.namespace
        config = await self._helm(namespace)
        labels = {
            OP_LABEL: key_label(ctx.idempotency_key),
            DEPLOYMENT_LABEL: _label_value(spec.deployment_id),
        }
        description = f"netweave operation {ctx.operation_id}"

        async def install(chart: Path) -> dict[str, Any]:
            for attempt in (1, 2):
                try:
                    return await self._deploy(
                        "install",
                        chart,
                        spec.name,
                        spec.values or {},
                        namespace,
                        timeout=self._timeout(),
                        wait=self._wait(),
                        create_namespace=self.config.cluster.create_namespace,
                        description=description,
                        labels=labels,
                    )
                except WorkerLost as lost:
                    # Killed from outside, not by a cap: once more on a fresh worker (a
                    # release the lost call left pending is this operation's own: the
                    # AlreadyExists path below installs it again).
                    if attempt == 2:
                        raise
                    _log.warning("%s; installing once more", lost.message)
            raise AssertionError("unreachable")  # pragma: no cover

        async with self._lock(namespace, spec.name):
            if ctx.attempt > 1:
                # Resumed (a retry, a restart, a take-over): what the interrupted attempt left
                # decides first; a release it finished needs no chart download.
                existing = await self._existing_for_retry(config, namespace, spec.name, ctx)
                if existing is not None:
                    return existing
            chart = await self._chart_path(spec.package)
            started = time.monotonic()
            try:
                try:
                    release = await install(chart)
                except AlreadyExists:
                    existing = await self._existing_for_retry(config, namespace, spec.name, ctx)
                    if existing is not None:
                        return existing
                    # This operation's own release, left half-done by an interrupted attempt.
                    release = await install(chart)
            except (BackendError, BackendTimeout) as exc:
                return await self._failed(config, namespace, spec.name, exc)
        _log.info(
            "adapter %s installed release %s/%s (chart %s, revision %s)",
            self.name,
            namespace,
            spec.name,
            spec.package.backend_ref,
            release.get("revision"),
            extra={
                "adapter": self.name,
                "release": f"{namespace}/{spec.name}",
                "chart": spec.package.backend_ref,
                "durationMs": round((time.monotonic() - started) * 1000),
            },
        )
        return await self._describe(
            config,
            namespace,
            spec.name,
            summary=release,
            applied=(dict(spec.values or {}), description),
        )

    async def _existing_for_retry(
        self, config: sdk.Config, namespace: str, name: str, ctx: OperationContext
    ) -> DeploymentInfo | None:
        """The release a create found in its way: the one this very operation created before
        (described), or, when this operation's interrupted attempt left it half-done,
        uninstalled so that the caller installs it again (None). Anything else is a 409."""
        try:
            everything = await self._read_release(config, name, parse_in=namespace)
        except NotFound:
            return None  # gone meanwhile: install
        summary = everything.get("summary") or {}
        status = str(summary.get("status") or "")
        if (summary.get("labels") or {}).get(OP_LABEL) != key_label(ctx.idempotency_key):
            if status in _PENDING:
                raise _stuck(namespace, name, summary)
            raise AlreadyExists(
                f"a release named {name!r} already exists in namespace {namespace!r}",
                details={"name": name, "namespace": namespace},
            )
        if status in _DONE:
            _log.info(
                "release %s/%s was created by this operation before; not installing again",
                namespace,
                name,
            )
            return await self._describe(config, namespace, name, read=everything)
        if status not in _REINSTALL:
            raise _stuck(namespace, name, summary)
        _log.warning(
            "release %s/%s was left %s by an interrupted attempt of operation %s; "
            "uninstalling it to install it again",
            namespace,
            name,
            status,
            ctx.operation_id,
        )
        await self._runner.run(
            f"uninstalling release {name} left {status}",
            config.uninstall,
            name,
            timeout=self._timeout(),
            wait=self._wait(),
            ignore_not_found=True,
            description=f"netweave operation {ctx.operation_id}: {status} after an interruption",
        )
        return None

    async def _read_release(
        self, config: sdk.Config, name: str, *, parse_in: str | None = None
    ) -> dict[str, Any]:
        """Helm's latest revision of ``name``: ``get all`` (``summary``, as ``status`` answers
        it, with the user values in ``config`` and ``info``). Not ``status``: the SDK answers
        the same summary there about ten times slower (13.8 against 1.3 ms on the emulator).
        ``parse_in``: the namespace to parse the manifest's resources for, on the SDK's thread
        (for a caller that describes the release)."""
        call = config.get_all if parse_in is None else _parsing(config.get_all, parse_in)
        return await self._runner.run(f"reading release {name}", call, name)

    async def _failed(
        self, config: sdk.Config, namespace: str, name: str, error: NetweaveError
    ) -> DeploymentInfo:
        """A failed install/upgrade leaves a ``failed`` revision: report it with Helm's words."""
        try:
            everything = await self._read_release(config, name, parse_in=namespace)
        except NetweaveError:
            raise error from None
        summary = everything.get("summary") or {}
        if deployment_status(summary.get("status")) is not DeploymentStatus.FAILED:
            raise error
        info = await self._describe(config, namespace, name, read=everything)
        return DeploymentInfo(
            backend_ref=info.backend_ref,
            status=DeploymentStatus.FAILED,
            revision=info.revision,
            message=error.message,
            backend_status=info.backend_status,
            package_version=info.package_version,
            values=info.values,
            resources=info.resources,
            updated_at=info.updated_at,
            extensions=info.extensions,
        )

    async def _describe(
        self,
        config: sdk.Config,
        namespace: str,
        name: str,
        *,
        summary: dict[str, Any] | None = None,
        applied: tuple[dict[str, Any], str] | None = None,
        read: dict[str, Any] | None = None,
    ) -> DeploymentInfo:
        """The release as Helm stores it. ``summary`` + ``applied`` (the user values and the
        description an install/upgrade just wrote) describe it without reading it back, as
        does ``read`` (``get all``'s answer, read just now by the caller)."""
        description: Any
        answered = summary is not None and applied is not None and "manifest" in summary
        if read is None and not answered:
            # The runner's cue for the reconciler (``read_begins``): what this reports is read
            # from now on — ``get all``, then the objects.
            read_begins()
        if summary is not None and applied is not None and "manifest" in summary:
            info: dict[str, Any] = {}
            values, description = applied
        else:
            # ``get all`` is one SDK call with the summary, user values and description.
            everything = read
            if everything is None:
                everything = await self._runner.run(
                    f"reading release {name}", _parsing(config.get_all, namespace), name
                )
            summary = everything.get("summary") or summary or {}
            info = everything.get("info") or {}
            values = everything.get("config") or {}
            description = info.get("description")
        helm_status = str(summary.get("status") or info.get("status") or "")
        manifest = str(summary.get("manifest") or "")
        parsed: tuple[ResourceStatus, ...] | None = summary.get(_RESOURCES)
        drift = None
        # For a ``summary`` (the release record the install/upgrade just wrote and answered a
        # moment ago: reading it back would cost every operation a ``get all``, which lists
        # the release's Secrets) the cue comes with the objects' reads: right before the
        # first of a kind the watch reports (``live.inspect``), so the operation's own reports
        # arriving meanwhile (its controllers' writes, Helm's of that record) are not read
        # again by the reconciler. The one change this can hide is someone else's write to
        # that record within that moment: the next resync reads it.
        begins = read_begins if answered else None
        if helm_status in _DONE:
            # Each object as the cluster holds it: readiness by its kind's rule, and drift;
            # the manifest parsed on the same thread (one hand-over for both).
            view, resources = await asyncio.to_thread(
                self._observe, manifest, namespace, parsed, begins
            )
            # The live objects keep their manifest document's digest (what a revision changed).
            digests = {(r.kind, r.name, r.namespace): r.digest for r in resources}
            resources = tuple(
                r.model_copy(update={"digest": digests.get((r.kind, r.name, r.namespace))})
                for r in view.resources
            )
            drift = view.drift
        else:
            if begins is not None:
                begins()  # no objects read: the record answered is the read
            if parsed is not None:
                resources = parsed
            else:
                resources = await asyncio.to_thread(resources_of, manifest, namespace)
        extensions: dict[str, Any] = {
            "releaseName": name,
            "namespace": namespace,
            "chartName": summary.get("chart_name"),
            "chartVersion": summary.get("chart_version"),
            "appVersion": summary.get("app_version"),
            "firstDeployed": info.get("first_deployed"),
        }
        if summary.get("notes"):
            extensions["notes"] = summary["notes"]
        labels = summary.get("labels") or {}
        if labels:
            extensions["labels"] = labels
        return DeploymentInfo(
            backend_ref=f"{namespace}/{name}",
            status=deployment_status(helm_status),
            revision=int(summary.get("revision") or 0),
            message=str(description) if description else None,
            backend_status=helm_status or None,
            package_version=summary.get("chart_version"),
            values=values,
            resources=resources,
            updated_at=_parse_time(summary.get("deployed_at") or info.get("last_deployed")),
            extensions={k: v for k, v in extensions.items() if v is not None},
            drift=drift,
        )

    async def _reader(self) -> ObjectReader:
        client = await asyncio.to_thread(self.cluster.kube_client)
        return ObjectReader(client, min(30.0, self.config.timeouts.read))

    def _inspect(
        self,
        manifest: str,
        namespace: str,
        with_diff: bool = False,
        begins: Callable[[], None] | None = None,
    ) -> live.LiveView:
        """Blocking: the objects of ``manifest`` as the cluster holds them (the shared client,
        taken on the same thread: one hand-over, not two); ``begins``: see ``live.inspect``."""
        reader = ObjectReader(self.cluster.kube_client(), min(30.0, self.config.timeouts.read))
        return live.inspect(
            reader, manifest, namespace, with_diff=with_diff, begins=begins, watched=_WATCHED
        )

    def _observe(
        self,
        manifest: str,
        namespace: str,
        parsed: tuple[ResourceStatus, ...] | None,
        begins: Callable[[], None] | None = None,
    ) -> tuple[live.LiveView, tuple[ResourceStatus, ...]]:
        """Blocking: :meth:`_inspect`, and the manifest's resources (``parsed`` if given)."""
        resources = parsed if parsed is not None else resources_of(manifest, namespace)
        return self._inspect(manifest, namespace, begins=begins), resources

    async def _live_view(
        self, namespace: str, manifest: str, *, with_diff: bool = False
    ) -> live.LiveView:
        return await asyncio.to_thread(self._inspect, manifest, namespace, with_diff)

    async def _diff_deployment(self, backend_ref: str, revision: int) -> list[ResourceDiff]:
        namespace, name = parse_release_ref(backend_ref)
        config = await self._helm(namespace)
        try:
            recorded = await self._runner.run(
                f"reading release {name}", config.get_all, name, revision=revision or None
            )
        except NotFound:
            # The gateway's revision is gone from Helm's history (uninstalled): the current
            # one, if any, else nothing to compare.
            recorded = await self._runner.run(f"reading release {name}", config.get_all, name)
        summary = recorded.get("summary") or {}
        view = await self._live_view(namespace, str(summary.get("manifest") or ""), with_diff=True)
        return list(view.diffs)

    async def _repair_deployment(
        self, backend_ref: str, spec: DeploymentSpec, ctx: OperationContext
    ) -> DeploymentInfo:
        """Back to the recorded chart and values: an upgrade to them when the release holds
        others (changed with ``helm`` behind the gateway's back); then the objects still
        missing or edited are applied again from the release's manifest with Helm's field
        manager, forcing conflicts (Helm's upgrade alone keeps a field another manager took)."""
        namespace, name = parse_release_ref(backend_ref)
        config = await self._helm(namespace)
        everything = await self._runner.run(f"reading release {name}", config.get_all, name)
        summary = everything.get("summary") or {}
        same = (
            summary.get("chart_name") == spec.package.name
            and summary.get("chart_version") == spec.package.version
            and (everything.get("config") or {}) == dict(spec.values)
            and str(summary.get("status") or "") in _DONE
        )
        if not same:
            await self._update_deployment(
                backend_ref,
                DeploymentChange(
                    values=dict(spec.values), package=spec.package, values_mode="replace"
                ),
                ctx,
            )
            everything = await self._runner.run(f"reading release {name}", config.get_all, name)
            summary = everything.get("summary") or {}
        client = await asyncio.to_thread(self.cluster.kube_client)
        async with self._lock(namespace, name):
            restored = await asyncio.to_thread(
                live.restore,
                client,
                str(summary.get("manifest") or ""),
                namespace,
                min(30.0, self.config.timeouts.read),
            )
        if restored:
            _log.info("release %s/%s: restored %s", namespace, name, ", ".join(restored))
        return await self._describe(config, namespace, name)

    def watch_deployments(self) -> AsyncIterator[BackendChanges]:
        self.cluster.require()
        return watch_releases(self.cluster, self.config.cluster.storage_driver)

    async def _get_deployment(self, backend_ref: str) -> DeploymentInfo:
        namespace, name = parse_release_ref(backend_ref)
        config = await self._helm(namespace)
        return await self._describe(config, namespace, name)

    async def _target_values(
        self,
        config: sdk.Config,
        name: str,
        change: DeploymentChange,
        known: KnownState | None = None,
        held: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The values to deploy; ``held``: the user values of Helm's latest revision when
        the caller has read them already."""
        if change.values_mode == "replace":
            return dict(change.values or {})
        if known is not None:  # the gateway's record of this very revision
            return deep_merge(known.values, change.values or {})
        if held is None:
            held = await self._runner.run(f"reading values of {name}", config.get_values, name)
        return deep_merge(held or {}, change.values or {})

    async def _target_chart(
        self,
        config: sdk.Config,
        name: str,
        change: DeploymentChange,
        summary: dict[str, Any] | None = None,
        known: KnownState | None = None,
    ) -> Path:
        if change.package is not None:
            return await self._chart_path(change.package)
        if (
            known is not None
            and known.package is not None
            and summary is not None
            and (known.package.name, known.package.version)
            == (summary.get("chart_name"), summary.get("chart_version"))
        ):
            return await self._chart_path(known.package)
        if summary is None:
            summary = (await self._read_release(config, name)).get("summary") or {}
        ref = f"{summary.get('chart_name')}:{summary.get('chart_version')}"
        try:
            package = await self._get_package(ref)
        except NotFound:
            raise Conflict(
                f"release {name} runs chart {ref}, which is no longer in the repository; "
                "name a package to upgrade to",
                details={"package": ref},
            ) from None
        return await self._chart_path(package)

    async def _update_deployment(
        self, backend_ref: str, change: DeploymentChange, ctx: OperationContext
    ) -> DeploymentInfo:
        namespace, name = parse_release_ref(backend_ref)
        config = await self._helm(namespace)
        async with self._lock(namespace, name):
            base = _upgrade_base(ctx, change)
            upgraded = None
            if base is not None:
                upgraded = await self._upgrade_recorded(config, namespace, name, change, ctx, base)
            if upgraded is None:
                upgraded = await self._upgrade_read(config, namespace, name, change, ctx)
        if isinstance(upgraded, DeploymentInfo):
            return upgraded
        release, applied = upgraded
        return await self._describe(config, namespace, name, summary=release, applied=applied)

    async def _upgrade_recorded(
        self,
        config: sdk.Config,
        namespace: str,
        name: str,
        change: DeploymentChange,
        ctx: OperationContext,
        base: KnownState,
    ) -> _Upgraded | None:
        """The upgrade from the gateway's record of the release (``base``), without reading
        Helm's latest revision first (issue 18: that read, a ``get all``, listed and decoded
        every stored revision of the release before each upgrade, which Helm's upgrade then
        lists again). Helm numbers revisions one by one: when it stores no revision after the
        record's (:meth:`_moved_past`, one GET), the record is Helm's latest. ``None``: it
        does, or the record's chart is gone from the repository; the read path decides.

        A revision made between that check and the upgrade (the race the read path has too)
        shows in the upgrade's answer, another number than ``base.revision + 1``: the revision
        it replaced is read and, when it holds another chart or other values than the record,
        what the read would have given is upgraded to at once."""
        description = f"netweave operation {ctx.operation_id}"
        package = change.package or base.package
        if package is None or await self._moved_past(namespace, name, base.revision):
            return None
        try:
            chart = await self._chart_path(package)
        except NotFound:
            return None
        values = await self._target_values(config, name, change, base)
        upgraded = await self._upgrade(
            config, namespace, name, chart, values, description, ctx, {"revision": base.revision}
        )
        if isinstance(upgraded, DeploymentInfo):
            return upgraded
        revision = _revision_of(upgraded)
        if revision == base.revision + 1:
            return upgraded, (values, description)
        _log.warning(
            "release %s/%s: revision %s was made behind the gateway's back (it records %s); "
            "checking the upgrade against it",
            namespace,
            name,
            revision - 1,
            base.revision,
        )
        replaced = await self._runner.run(
            f"reading release {name}", config.get_all, name, revision=revision - 1
        )
        held = replaced.get("config") or {}
        summary = replaced.get("summary") or {}
        same_chart = change.package is not None or (
            (summary.get("chart_name"), summary.get("chart_version"))
            == (package.name, package.version)
        )
        wanted = await self._target_values(config, name, change, None, held)
        if same_chart and wanted == values:
            return upgraded, (values, description)
        chart = await self._target_chart(config, name, change, summary)
        again = await self._upgrade(
            config, namespace, name, chart, wanted, description, ctx, upgraded
        )
        if isinstance(again, DeploymentInfo):
            return again
        return again, (wanted, description)

    async def _moved_past(self, namespace: str, name: str, revision: int) -> bool:
        """Whether Helm stores a revision after ``revision`` of release ``name``: one GET of the
        storage object the next revision would be (Helm numbers them one by one; an upgrade
        or rollback in flight has stored its own already), not a list of every revision."""
        kind = "configmaps" if self.config.cluster.storage_driver == "configmap" else "secrets"
        path = f"/api/v1/namespaces/{namespace}/{kind}/sh.helm.release.v1.{name}.v{revision + 1}"

        def stored() -> bool:  # the shared client taken on the same thread: one hand-over
            client = self.cluster.kube_client()
            reader = ObjectReader(client, min(30.0, self.config.timeouts.read))
            return reader.get(path) is not None

        return await asyncio.to_thread(stored)

    async def _upgrade(
        self,
        config: sdk.Config,
        namespace: str,
        name: str,
        chart: Path,
        values: dict[str, Any],
        description: str,
        ctx: OperationContext,
        current: dict[str, Any] | None,
    ) -> dict[str, Any] | DeploymentInfo:
        """Helm's upgrade of ``name`` to ``chart`` and ``values`` (``current``: its latest
        revision, as known); a failed one reported as :meth:`_failed` does, a release another
        operation holds as :func:`_stuck`."""
        try:
            return await self._deploy(
                "upgrade",
                chart,
                name,
                values,
                namespace,
                timeout=self._timeout(),
                wait=self._wait(),
                **self._history_bound(current),
                reset_values=True,
                description=description,
                labels={OP_LABEL: key_label(ctx.idempotency_key)},
            )
        except Conflict as exc:
            # Helm's "another operation is in progress": the read path says so from the
            # release's status; said the same way here.
            try:
                summary = (await self._read_release(config, name)).get("summary") or {}
            except NetweaveError:
                raise exc from None
            if str(summary.get("status") or "") in _PENDING:
                raise _stuck(namespace, name, summary) from None
            raise
        except (BackendError, BackendTimeout) as exc:
            return await self._failed(config, namespace, name, exc)

    async def _upgrade_read(
        self,
        config: sdk.Config,
        namespace: str,
        name: str,
        change: DeploymentChange,
        ctx: OperationContext,
    ) -> _Upgraded:
        """The upgrade from Helm's latest revision, read first: a retried operation (what its
        interrupted attempt left decides), or no usable record of the gateway's."""
        # One read of Helm's latest revision: its status and stamp, and the chart and
        # user values an upgrade that merges starts from.
        read = await self._read_release(config, name)
        everything: dict[str, Any] | None = read
        summary = read.get("summary") or {}
        current: dict[str, Any] | None = summary
        status = str(summary.get("status") or "")
        own = (summary.get("labels") or {}).get(OP_LABEL) == key_label(ctx.idempotency_key)
        if own and status in _DONE:
            return await self._describe(config, namespace, name, read=read)
        if status in _PENDING:
            if not (own and status == "pending-upgrade"):
                raise _stuck(namespace, name, summary)
            # This operation's interrupted upgrade: Helm's way out is a rollback (to the
            # revision before it); then the upgrade runs again.
            _log.warning(
                "release %s/%s was left pending-upgrade (revision %s) by an interrupted "
                "attempt of operation %s; rolling it back to upgrade it again",
                namespace,
                name,
                summary.get("revision"),
                ctx.operation_id,
            )
            await self._runner.run(
                f"rolling back release {name} left pending-upgrade",
                config.rollback,
                name,
                timeout=self._timeout(),
                wait=self._wait(),
            )
            current = everything = None  # read again: the rollback made a revision
        known = _known_revision(ctx, current)
        chart = await self._target_chart(config, name, change, current, known)
        held = (everything.get("config") or {}) if everything is not None else None
        values = await self._target_values(config, name, change, known, held)
        description = f"netweave operation {ctx.operation_id}"
        upgraded = await self._upgrade(
            config, namespace, name, chart, values, description, ctx, current
        )
        if isinstance(upgraded, DeploymentInfo):
            return upgraded
        return upgraded, (values, description)

    def _history_bound(self, current: dict[str, Any] | None) -> dict[str, Any]:
        """``max_history`` for an upgrade of the release whose latest revision Helm answered
        in ``current`` (None: not known). Helm enforces the bound by listing every stored
        revision of the release before it stores the new one; a release whose latest revision
        is below the bound holds fewer revisions than that (they are numbered from 1), so the
        upgrade leaves nothing to prune and that list is skipped."""
        bound = self.config.cluster.max_history
        try:
            revision = int((current or {}).get("revision") or 0)
        except (TypeError, ValueError):
            revision = 0
        if bound and 0 < revision < bound:
            return {}
        return {"max_history": bound}

    async def _scale_deployment(
        self, backend_ref: str, replicas: int, ctx: OperationContext
    ) -> DeploymentInfo:
        change = DeploymentChange(
            values=nested_value(self.config.cluster.scale_key, replicas), values_mode="merge"
        )
        return await self._update_deployment(backend_ref, change, ctx)

    async def _rollback_deployment(
        self, backend_ref: str, revision: int, ctx: OperationContext
    ) -> DeploymentInfo:
        namespace, name = parse_release_ref(backend_ref)
        config = await self._helm(namespace)
        async with self._lock(namespace, name):
            target = revision or await self._interrupted_rollback(config, name)
            try:
                await self._runner.run(
                    f"rolling back release {name}",
                    config.rollback,
                    name,
                    version=target or None,
                    timeout=self._timeout(),
                    wait=self._wait(),
                )
            except NetweaveError as exc:
                if not _REVISION_MISSING.search(exc.message):
                    raise
                if revision:
                    raise InvalidInput(
                        f"release {name} has no revision {revision}",
                        details={"field": "revision"},
                    ) from None
                # Helm's "previous" is current - 1: revision 1 has none.
                raise InvalidInput(
                    f"release {name} has no previous revision to roll back to",
                    details={"field": "revision"},
                ) from None
        return await self._describe(config, namespace, name)

    async def _interrupted_rollback(self, config: sdk.Config, name: str) -> int:
        """The revision a release left ``pending-rollback`` was being rolled back to (Helm
        describes it "Rollback to N"), so that a rollback to "the previous revision" finishes
        that one rather than going back to the stuck revision's predecessor; 0 otherwise."""
        everything = await self._runner.run(f"reading release {name}", config.get_all, name)
        info = everything.get("info") or {}
        if info.get("status") != "pending-rollback":
            return 0
        match = _ROLLBACK_TO.match(str(info.get("description") or ""))
        return int(match.group(1)) if match else 0

    async def _check_scale(self, backend_ref: str, replicas: int) -> None:
        """A scale sets the configured scale key; a chart whose values (defaults and the
        release's own) have no such key would ignore it."""
        namespace, name = parse_release_ref(backend_ref)
        config = await self._helm(namespace)
        computed = await self._runner.run(
            f"reading values of {name}", config.get_values, name, all_values=True
        )
        key = self.config.cluster.scale_key
        if not _has_key(computed, key):
            raise InvalidInput(
                f"release {name}'s chart has no value {key!r} (the adapter's scale key, "
                "cluster.scaleKey), so scaling it would change nothing; change its values with "
                "an update instead, or configure the scale key its chart uses",
                details={"field": "replicas", "scaleKey": key},
            )

    async def _delete_deployment(self, backend_ref: str, ctx: OperationContext) -> None:
        namespace, name = parse_release_ref(backend_ref)
        config = await self._helm(namespace)
        async with self._lock(namespace, name):
            await self._runner.run(
                f"uninstalling release {name}",
                config.uninstall,
                name,
                timeout=self._timeout(),
                wait=self._wait(),
                ignore_not_found=True,
                description=f"netweave operation {ctx.operation_id}",
            )

    async def _get_history(self, backend_ref: str) -> list[RevisionEntry]:
        namespace, name = parse_release_ref(backend_ref)
        config = await self._helm(namespace)
        entries = await self._runner.run(f"reading history of {name}", _history, config, name)
        last = len(entries) - 1
        return [
            RevisionEntry(
                revision=int(item.get("revision") or 0),
                # An older revision still pending was interrupted and then rolled back: Helm
                # leaves its status as it was, but it never finished.
                status=DeploymentStatus.FAILED.value
                if index < last and str(item.get("status")) in _PENDING
                else history_status(item.get("status")),
                package_version=item.get("chart_version"),
                description=item.get("description"),
                deployed_at=_parse_time(item.get("deployed_at")),
                values=item.get("values"),
            )
            for index, item in enumerate(entries)
        ]

    async def _preview_deployment(
        self, spec: DeploymentSpec, change: DeploymentChange | None
    ) -> Preview:
        namespace = spec.namespace or self.config.cluster.namespace
        cluster: dict[str, Any] | None = cluster_options(self.config.cluster)
        if change is None:
            chart = await self._chart_path(spec.package)
            values = dict(spec.values or {})
            try:
                self.cluster.require()
            except ClusterNotConfigured:
                cluster = None  # rendering needs no cluster: preview offline
        else:
            config = await self._helm(namespace)
            chart = await self._target_chart(config, spec.name, change)
            values = await self._target_values(config, spec.name, change)
        # Rendered in a capped worker, like the upload's lint: the chart and the values decide
        # how much memory and time rendering takes, and that must not be the gateway's.
        release = await render_preview(
            chart,
            release=spec.name,
            namespace=namespace,
            values=values,
            upgrade=change is not None,
            cluster=cluster,
            caps=self.config.render,
            time_limit=self.config.timeouts.write,
            work_dir=self._work(),
            pool=self._render_pool(),
        )
        diff = None
        if change is not None:
            # What the update would change: each object against the live one.
            current = await self._runner.run(
                f"reading release {spec.name}", config.get_all, spec.name
            )
            reader = await self._reader()
            diff = await asyncio.to_thread(
                live.preview_diff,
                reader,
                str(release.get("manifest") or ""),
                namespace,
                str((current.get("summary") or {}).get("manifest") or ""),
            )
        return Preview(
            diff=diff,
            manifests=split_manifest(str(release.get("manifest") or "")),
            notes=release.get("notes") or None,
            extensions={
                "chartName": release.get("chart_name"),
                "chartVersion": release.get("chart_version"),
                "revision": release.get("revision"),
                "namespace": namespace,
            },
        )

    async def _stream_logs(self, backend_ref: str, options: LogOptions) -> AsyncIterator[str]:
        namespace, name = parse_release_ref(backend_ref)
        client = await asyncio.to_thread(self.cluster.kube_client)
        async for line in stream_release_logs(client, namespace, name, options):
            yield line


__all__ = [
    "DEPLOYMENT_LABEL",
    "OP_LABEL",
    "HelmAdapter",
    "deep_merge",
    "key_label",
    "nested_value",
    "parse_package_ref",
    "parse_release_ref",
    "split_manifest",
]

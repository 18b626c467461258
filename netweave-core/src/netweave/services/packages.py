"""Package services: list, get, onboard (upload or register), deprecate/restore, delete.

Read cache
    Package reads are the gateway's hottest path (an SMO polls them), and each store query is
    a database round trip. ``get_json``/``query_json`` therefore keep the serialised answers
    in a small in-process cache for ``cache_ttl`` seconds (default 1 s). Every change made
    through this process (upload, registration, state change, delete, and deployments being
    created or removed, which change ``IN_USE``) clears the cache at once, so one replica never
    serves its own stale data; a change made by *another* replica is seen after at most
    twice ``cache_ttl`` (a just-expired answer is still served while one refresh of it runs, so
    readers of a busy list never queue behind the query; see ``operations/cache.py``).

Pages
    A page is read in (name, version) order from the store, which keeps each package's
    rendered JSON in its row, written with it (``Store.set_package_renderer``): a page is one
    index read of those bytes with each row's state and IN_USE, joined. Following
    ``nextpageOpaqueMarker`` (keyset) costs the same at any depth. ``offset`` still works but
    is row skipping in SQL: its cost grows with the offset (at 100 000 packages the scale
    bench's pages by marker cost 0.42 ms of server CPU each, HTTP included, and pages at
    random offsets several times that); clients walking a large catalogue should follow the
    marker. ``total`` is the filter's count, kept for
    ``cache_ttl`` and dropped by any change through this process; on SQLite (one writer) the
    store keeps it until its next package write, so a walk costs one COUNT, not one a page.

Reads and the backend
    The store holds every package the gateway knows with its metadata (state, ownership,
    extensions captured at upload). ``GET …/{packageId}`` answers from the store alone — no
    adapter call — which keeps the hot read path fast. ``list`` first *adopts* packages the
    backend has but the store does not (a chart pushed to the repository outside netweave): it
    asks each adapter for its listing at most once per ``listing_ttl`` seconds and stores a
    record for each unknown one, then pages through the store, so filters, ordering and the
    ``total`` are exact. Only the very first listing of an adapter is awaited; later refreshes
    run in the background (the request answers from the store meanwhile), so a slow backend
    listing never sits in a client's latency. A refresh asks only for what the backend added
    since the previous one (``list_packages_since`` and its token), so its cost follows the
    changes, not the catalogue. While a backend is still loading its catalogue (it answers
    503 with ``retry_after``) the first list waits up to ``first_load_wait`` seconds, then
    answers 503 with ``Retry-After`` itself: never a partial catalogue presented as complete.
    A package removed from the backend behind the gateway's back stays listed until deleted
    through the API (its deployments would fail with the backend's error).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from datetime import UTC, datetime
from typing import Any

import msgspec

from netweave.adapters import Capability, DMSAdapter, PackageInfo, PackageUpload
from netweave.config.registry import AdapterRegistry
from netweave.errors import (
    AlreadyExists,
    BackendUnavailable,
    InUse,
    InvalidInput,
    NetweaveError,
    NotFound,
    Unprocessable,
)
from netweave.models import DeploymentPackage, PackageList, PackageState
from netweave.operations.cache import ReadCache
from netweave.operations.convert import (
    package_json_parts,
    package_list_json,
    package_to_wire,
    package_view_key,
    wire_dict,
)
from netweave.operations.events import HookBus
from netweave.operations.metrics import Metrics
from netweave.store import PackageRecord, Store

_log = logging.getLogger("netweave.packages")


def now() -> datetime:
    return datetime.now(UTC)


#: Totals kept by ``PackageService._total`` (one per filter combination in use).
_MAX_TOTALS = 1024
_MARKER_PREFIX = "k1."
#: What a marker looks like (the API's pattern for the parameter).
MARKER_PATTERN = r"^k1\.[A-Za-z0-9_-]+$"


def _make_marker(name: str, version: str) -> str:
    """An opaque paging marker: where the next page starts in (name, version) order."""
    raw = msgspec.json.encode([name, version])
    return _MARKER_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _read_marker(marker: str) -> tuple[str, str]:
    try:
        if not marker.startswith(_MARKER_PREFIX):
            raise ValueError("prefix")
        data = marker[len(_MARKER_PREFIX) :]
        raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
        name, version = msgspec.json.decode(raw, type=tuple[str, str])
    except (ValueError, msgspec.DecodeError):
        # Well-formed (the API checks its pattern) but not one of ours: 422, like other names
        # of what the gateway does not have.
        raise Unprocessable(
            "nextpageOpaqueMarker is not a marker this gateway gave out; start again without it",
            details={"field": "nextpageOpaqueMarker"},
        ) from None
    return name, version


def _page_body(
    bodies: list[bytes], *, total: int, limit: int, offset: int, marker: str | None
) -> bytes:
    """A ``PackageList`` page assembled from its items' wire JSON: the same bytes as
    ``package_list_json`` (a test compares them), without encoding any item again."""
    tail = b'],"total":%d,"limit":%d,"offset":%d' % (total, limit, offset)
    if marker is not None:
        tail += b',"nextpageOpaqueMarker":' + msgspec.json.encode(marker)
    return b'{"items":[' + b",".join(bodies) + tail + b"}"


#: ``onboard``'s ``finish``: the caller's part of an onboarding's transaction.
Finish = Callable[[DeploymentPackage, tuple[str, ...]], Awaitable[None]]


def _not_found(package_id: str) -> NotFound:
    return NotFound(f"package {package_id!r} not found", details={"packageId": package_id})


def make_package_id(name: str, version: str) -> str:
    """The design note's readable ``{name}-{version}``; both parts are URL-safe by pattern."""
    return f"{name}-{version}"


def _collision_free_id(name: str, version: str) -> str:
    # "a-b" + "1" and "a" + "b-1" read the same; the second one gets a short stable suffix.
    digest = hashlib.sha256(f"{name}\0{version}".encode()).hexdigest()[:8]
    return f"{name}-{version}-{digest}"


class PackageService:
    def __init__(
        self,
        store: Store,
        registry: AdapterRegistry,
        hooks: HookBus,
        metrics: Metrics,
        *,
        listing_ttl: float = 5.0,
        cache_ttl: float = 1.0,
        first_load_wait: float = 10.0,
    ) -> None:
        self._store = store
        # Every package write through the store keeps the package's view in its row.
        store.set_package_renderer(package_json_parts, key=package_view_key())
        self._registry = registry
        self._hooks = hooks
        self._metrics = metrics
        self._listing_ttl = listing_ttl
        self._synced_at: dict[str, float] = {}
        self._known_refs: dict[str, set[str]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.cache = ReadCache(cache_ttl)
        self._refreshing: dict[str, asyncio.Task[None]] = {}
        self._first_load_wait = first_load_wait
        #: Per adapter, the token of its last listing (``list_packages_since``).
        self._listing_tokens: dict[str, str | None] = {}
        #: Per filter: (read cache generation, expiry, total), see ``_total``.
        self._totals: dict[Hashable, tuple[int, float, int]] = {}
        #: Withdrawals of half-finished onboardings still running (see ``_withdraw``).
        self._withdrawals: set[asyncio.Task[None]] = set()

    # -- reads -------------------------------------------------------------------------------

    async def query(
        self,
        *,
        name: str | None = None,
        version: str | None = None,
        package_type: str | None = None,
        adapter: str | None = None,
        state: PackageState | None = None,
        limit: int = 100,
        offset: int = 0,
        marker: str | None = None,
    ) -> PackageList:
        body = await self._page_json(
            name=name,
            version=version,
            package_type=package_type,
            adapter=adapter,
            state=state,
            limit=limit,
            offset=offset,
            marker=marker,
        )
        return PackageList.model_validate_json(body)

    async def _page_json(
        self,
        *,
        name: str | None = None,
        version: str | None = None,
        package_type: str | None = None,
        adapter: str | None = None,
        state: PackageState | None = None,
        limit: int = 100,
        offset: int = 0,
        marker: str | None = None,
    ) -> bytes:
        after = _read_marker(marker) if marker is not None else None
        if adapter is not None and adapter not in self._registry:
            # A filter no package can match: an empty page, as for any other filter.
            return package_list_json([], total=0, limit=limit, offset=offset, marker=None)
        targets = [adapter] if adapter is not None else list(self._registry)
        for target in targets:
            await self._refresh(self._registry.adapters[target])
        equal = {"name": name, "version": version, "package_type": package_type, "adapter": adapter}
        # One turn of the loop first: the pages asked for together are then read one after
        # the other (SQLite's reads run on the loop's thread), with the database's code and
        # pages still in the processor's caches — at 32 clients, 8 % less CPU per page than
        # reading each between the rest of its request's work.
        await asyncio.sleep(0)
        page, more = await self._store.package_views(
            equal=equal, state=state, after=after, limit=limit, offset=offset, rendered=True
        )
        following = None
        if more and page.last is not None:
            following = _make_marker(*page.last)
        total = await self._total(equal, state)
        return _page_body(page.bodies, total=total, limit=limit, offset=offset, marker=following)

    async def _total(self, equal: dict[str, str | None], state: PackageState | None) -> int:
        """The filter's count, kept for ``cache_ttl`` and dropped by any change made through
        this process (the read cache's generation): a client paging through a large catalogue
        costs one COUNT per filter and second, not one per page."""
        key = (tuple(equal.values()), state)
        generation = self.cache.generation
        cached = self._totals.get(key)
        now = time.monotonic()
        if cached is not None and cached[0] == generation and cached[1] > now:
            return cached[2]
        total = await self._store.count_packages(equal=equal, state=state)
        if self.cache.generation == generation and self.cache.ttl > 0:
            if len(self._totals) >= _MAX_TOTALS:
                self._totals.clear()  # bounded; refilled by the next lists
            self._totals[key] = (generation, now + self.cache.ttl, total)
        return total

    async def query_json(self, **filters: Any) -> bytes:
        """A page of ``PackageList`` (camelCase JSON), through the read cache unless it is a
        page after a marker: a client walking the catalogue asks for each of those once, so
        keeping them would only fill the cache (pollers ask for first pages, which it keeps)."""
        started = time.perf_counter()
        if filters.get("marker") is not None:
            body = await self._page_json(**filters)
        else:
            key = ("list", *sorted(filters.items()))

            async def compute() -> bytes:
                return await self._page_json(**filters)

            body = await self.cache.get_or_compute(key, compute)
        # The label is the client's filter: only a configured adapter's name may become one, or
        # each new value would be a series of its own that /metrics keeps forever.
        adapter = filters.get("adapter")
        label = "all" if adapter is None else adapter if adapter in self._registry else "unknown"
        self._metrics.package_list_duration.labels(adapter=label).observe(
            time.perf_counter() - started
        )
        return body

    async def get_json(self, package_id: str) -> bytes:
        """``get`` serialised (camelCase JSON), through the read cache."""

        async def compute() -> bytes:
            body = await self._store.package_view_json(package_id)
            if body is None:
                raise _not_found(package_id)
            return body

        return await self.cache.get_or_compute(("get", package_id), compute)

    async def get(self, package_id: str) -> DeploymentPackage:
        view = await self._store.package_view(package_id)
        if view is None:
            raise _not_found(package_id)
        return package_to_wire(view[0], in_use=view[1])

    async def record(self, package_id: str) -> PackageRecord:
        record = await self._store.get_package(package_id)
        if record is None:
            raise _not_found(package_id)
        return record

    # -- onboarding --------------------------------------------------------------------------

    async def onboard(
        self,
        upload: PackageUpload,
        adapter_name: str | None,
        *,
        package_id: str | None = None,
        finish: Finish | None = None,
    ) -> tuple[DeploymentPackage, tuple[str, ...]]:
        """Upload an archive or register a reference; returns the package and lint warnings.
        ``package_id``: the id to give it instead of ``{name}-{version}`` (a CSAR's VNFD id,
        netweave.services.vnfpkgm); 409 when a package has it already.

        All or nothing: ``finish(package, warnings)`` (the caller's answer — building and
        storing its response) runs inside the transaction that stores the record and its
        event; if anything after the adapter stored the package fails (the store, the event,
        ``finish``, a cancellation), the transaction is rolled back and what the adapter stored
        is withdrawn (``delete_package``), so a retry is a fresh upload, not a 409."""
        if adapter_name is None and len(self._registry) > 1:
            candidates = [
                name
                for name, candidate in self._registry.adapters.items()
                if candidate.supports(Capability.PACKAGE_MANAGEMENT)
            ]
            payload = {
                "name": upload.name,
                "artifactVersion": upload.version,
                "packageType": upload.package_type,
                "packageUri": upload.package_uri,
            }
            adapter_name = self._hooks.select_adapter("package", payload, candidates)
        adapter = self._registry.choose(adapter_name, Capability.PACKAGE_MANAGEMENT)
        started = time.monotonic()
        try:
            existing = await self._store.find_package(upload.name, upload.version)
            if existing is not None:
                raise AlreadyExists(
                    f"package {upload.name} version {upload.version} already exists "
                    f"as {existing.package_id}",
                    details={"packageId": existing.package_id, "field": "artifactVersion"},
                )
            if package_id is not None and await self._store.get_package(package_id) is not None:
                raise AlreadyExists(
                    f"a package with id {package_id} already exists",
                    details={"packageId": package_id},
                )
            # The id is decided before the adapter is called and handed to it (its logs and
            # labels name the package as the gateway does, collision suffix included).
            if package_id is None:
                package_id = await self._new_package_id(upload.name, upload.version)
            upload = dataclasses.replace(upload, package_id=package_id)
            await adapter.check_package(upload)
            self._hooks.validate_package(upload, adapter)
            info = await adapter.upload_package(upload)
            try:
                # The record, its event and the caller's answer commit together; plugins hear
                # of it after commit.
                async with self._hooks.change(
                    self._store, on_commit=self.cache.invalidate
                ) as events:
                    record = await self._store_new(adapter, info, upload, package_id)
                    wire = package_to_wire(record, in_use=False)
                    events.package("PackageUploaded", wire_dict(wire))
                    if finish is not None:
                        await finish(wire, info.warnings)
            except BaseException as exc:
                await self._withdraw(adapter, info, exc)
                raise
        except NetweaveError:
            self._metrics.package_uploads.labels(adapter=adapter.name, status="failure").inc()
            raise
        self._metrics.package_uploads.labels(adapter=adapter.name, status="success").inc()
        _log.info(
            "package %s onboarded by adapter %s",
            record.package_id,
            adapter.name,
            extra={
                "packageId": record.package_id,
                "adapter": adapter.name,
                "size": upload.archive_size,
                "checksum": record.checksum,
                "durationMs": round((time.monotonic() - started) * 1000),
            },
        )
        known = self._known_refs.get(adapter.name)
        if known is not None:  # else read whole from the store when first needed
            known.add(record.backend_ref)
        return wire, info.warnings

    async def _withdraw(self, adapter: DMSAdapter, info: PackageInfo, cause: BaseException) -> None:
        """Remove what ``adapter`` stored for an onboarding that did not commit. Shielded: a
        client going away (a cancellation) must not leave the package in the backend, where
        the next listing would adopt it and a retry would be a 409."""
        if not info.stored:
            return  # the adapter only found it there: not ours to remove
        task = asyncio.create_task(
            self._delete_stored(adapter, info, cause), name=f"netweave-withdraw-{info.name}"
        )
        self._withdrawals.add(task)
        task.add_done_callback(self._withdrawals.discard)
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            # This task is being cancelled; the withdrawal runs on to its end regardless.
            _log.info("package %s: withdrawal continues after cancellation", info.backend_ref)

    async def _delete_stored(
        self, adapter: DMSAdapter, info: PackageInfo, cause: BaseException
    ) -> None:
        reason = cause.message if isinstance(cause, NetweaveError) else type(cause).__name__
        try:
            await adapter.delete_package(info.backend_ref)
        except NotFound:
            pass
        except Exception as exc:
            _log.error(
                "adapter %s: package %s was stored but its onboarding failed (%s), and "
                "removing it failed too (%s); the next listing will adopt it",
                adapter.name,
                info.backend_ref,
                reason,
                exc.message if isinstance(exc, NetweaveError) else type(exc).__name__,
                extra={"adapter": adapter.name, "backendRef": info.backend_ref},
            )
            return
        _log.warning(
            "adapter %s: package %s withdrawn, its onboarding failed: %s",
            adapter.name,
            info.backend_ref,
            reason,
            extra={"adapter": adapter.name, "backendRef": info.backend_ref},
        )

    async def _new_package_id(self, name: str, version: str) -> str:
        package_id = make_package_id(name, version)
        if await self._store.get_package(package_id) is not None:
            package_id = _collision_free_id(name, version)
        return package_id

    async def _store_new(
        self,
        adapter: DMSAdapter,
        info: PackageInfo,
        upload: PackageUpload | None,
        given_id: str | None = None,
    ) -> PackageRecord:
        name = upload.name if upload is not None else info.name
        version = upload.version if upload is not None else info.version
        package_id = given_id or await self._new_package_id(name, version)
        stamp = now()
        record = PackageRecord(
            package_id=package_id,
            name=name,
            version=version,
            artifact_name=info.name,
            package_type=info.package_type,
            state=PackageState.AVAILABLE,
            adapter=adapter.name,
            backend_ref=info.backend_ref,
            created_at=stamp,
            updated_at=stamp,
            description=info.description
            if info.description is not None
            else (upload.description if upload else None),
            provider=info.provider
            if info.provider is not None
            else (upload.provider if upload else None),
            package_uri=info.package_uri
            if info.package_uri is not None
            else (upload.package_uri if upload else None),
            checksum=info.checksum
            if info.checksum is not None
            else (upload.checksum if upload else None),
            extensions=dict(info.extensions),
        )
        await self._store.add_package(record)
        return record

    # -- state changes -----------------------------------------------------------------------

    async def set_state(self, package_id: str, state: PackageState) -> DeploymentPackage:
        if state not in (PackageState.AVAILABLE, PackageState.DEPRECATED):
            raise InvalidInput(
                f"a package can be set to AVAILABLE or DEPRECATED, not {state.value}",
                details={"field": "state"},
            )
        record = await self.record(package_id)
        previous = record.state
        changed = previous != state
        async with self._hooks.change(self._store, on_commit=self.cache.invalidate) as events:
            if changed:
                record = await self._store.update_package(package_id, state=state, updated_at=now())
            in_use = await self._store.package_ids_in_use([package_id])
            wire = package_to_wire(record, in_use=package_id in in_use)
            events.package("PackageChanged", wire_dict(wire), previous_state=previous.value)
        if changed:
            await self._mirror_deprecation(record)
        return wire

    async def _mirror_deprecation(self, record: PackageRecord) -> None:
        """Tell the owning adapter (its backend may mark deprecated packages too). The gateway's
        state is committed already: a backend that fails is logged, not the caller's error."""
        deprecated = record.state == PackageState.DEPRECATED
        try:
            adapter = self._registry.owner(record.adapter)
            await adapter.set_package_deprecated(record.backend_ref, deprecated)
        except NetweaveError as exc:
            _log.warning(
                "adapter %s could not mark package %s deprecated=%s: %s",
                record.adapter,
                record.package_id,
                deprecated,
                exc,
                extra={"packageId": record.package_id, "adapter": record.adapter},
            )

    async def delete(self, package_id: str, *, force: bool = False) -> None:
        record = await self.record(package_id)
        adapter = self._registry.owner(record.adapter)
        try:
            users = await self._store.list_deployments(package_id=package_id, limit=100)
            if users.total and not force:
                raise InUse(
                    f"package {package_id} is used by {users.total} deployment(s); "
                    "delete them first or use force=true",
                    details={
                        "packageId": package_id,
                        "deployments": [d.deployment_id for d in users.items],
                        "deploymentNames": [d.name for d in users.items],
                    },
                )
            try:
                await adapter.delete_package(record.backend_ref)
            except NotFound:
                _log.info("package %s was already gone from adapter %s", package_id, adapter.name)
            async with self._hooks.change(self._store, on_commit=self.cache.invalidate) as events:
                await self._store.delete_package(package_id)
                events.package("PackageDeleted", wire_dict(package_to_wire(record, in_use=False)))
        except NetweaveError:
            self._metrics.package_deletions.labels(adapter=adapter.name, status="failure").inc()
            raise
        self._metrics.package_deletions.labels(adapter=adapter.name, status="success").inc()
        self._known_refs.get(adapter.name, set()).discard(record.backend_ref)

    # -- backend reconciliation --------------------------------------------------------------

    async def _refresh(self, adapter: DMSAdapter) -> None:
        """Adopt the backend's packages: awaited the first time, in the background after."""
        synced = self._synced_at.get(adapter.name)
        if synced is not None and time.monotonic() - synced < self._listing_ttl:
            return  # (first: the check every list makes; only package adapters are synced)
        if not adapter.supports(Capability.PACKAGE_MANAGEMENT):
            return
        running = self._refreshing.get(adapter.name)
        if running is None or running.done():
            running = asyncio.create_task(
                self._adopt_from_backend(adapter), name=f"netweave-adopt-{adapter.name}"
            )
            self._refreshing[adapter.name] = running
        if synced is not None:
            return
        # The first listing: awaited (bounded), in a task of its own so a client giving up
        # does not cancel it and the next request finds it further along.
        try:
            await asyncio.wait_for(asyncio.shield(running), self._first_load_wait)
        except TimeoutError:
            raise BackendUnavailable(
                f"adapter {adapter.name} is still loading its package catalogue; retry shortly",
                details={"adapter": adapter.name},
                retry_after=2,
            ) from None

    async def close(self) -> None:
        """Stop background refreshes (application shutdown)."""
        tasks = [t for t in self._refreshing.values() if not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._refreshing.clear()
        # Withdrawals are not cancelled: each ends within its adapter's own time limit.
        await asyncio.gather(*self._withdrawals, return_exceptions=True)

    async def _adopt_from_backend(self, adapter: DMSAdapter) -> None:
        if not adapter.supports(Capability.PACKAGE_MANAGEMENT):
            return
        if time.monotonic() - self._synced_at.get(adapter.name, -1e18) < self._listing_ttl:
            return
        lock = self._locks.setdefault(adapter.name, asyncio.Lock())
        async with lock:
            if time.monotonic() - self._synced_at.get(adapter.name, -1e18) < self._listing_ttl:
                return
            # The stored references first (one column, read once and kept): the adapter
            # compares them before it builds anything, so a first listing of a large catalogue
            # the store already holds costs a pass over strings, not 100 000 objects.
            known = await self._refs_of(adapter.name)
            try:
                changes = await adapter.list_packages_since(
                    self._listing_tokens.get(adapter.name), known
                )
            except BackendUnavailable as exc:
                if exc.retry_after is None:
                    self._listing_failed(adapter, exc)
                    return
                # Still loading: not synced, so the first list keeps answering 503.
                if adapter.name not in self._synced_at:
                    raise
                return
            except Exception as exc:
                self._listing_failed(adapter, exc)
                return
            for info in changes.packages:
                if info.backend_ref in known:
                    continue
                known.add(info.backend_ref)
                if await self._store.find_package(info.name, info.version) is not None:
                    continue  # name+version is unique in the gateway; another adapter has it
                try:
                    record = await self._store_new(adapter, info, None)
                except AlreadyExists:
                    continue  # another replica adopted it first
                self.cache.invalidate()
                _log.info("adopted package %s from adapter %s", record.package_id, adapter.name)
            self._listing_tokens[adapter.name] = changes.token
            self._synced_at[adapter.name] = time.monotonic()

    def _listing_failed(self, adapter: DMSAdapter, exc: Exception) -> None:
        # The store still answers; the backend's own packages show up once it is back.
        message = exc.message if isinstance(exc, NetweaveError) else type(exc).__name__
        _log.warning("adapter %s: listing packages failed: %s", adapter.name, message)
        self._synced_at[adapter.name] = time.monotonic()

    async def _refs_of(self, adapter_name: str) -> set[str]:
        known = self._known_refs.get(adapter_name)
        if known is None:
            known = await self._store.package_backend_refs(adapter_name)
            self._known_refs[adapter_name] = known
        return known

    async def refresh_gauge(self) -> None:
        """Set ``o2dms_packages_total`` from the store (called when ``/metrics`` is scraped)."""
        for adapter_name in self._registry:
            for state in PackageState:
                page = await self._store.list_packages(adapter=adapter_name, state=state, limit=1)
                self._metrics.packages.labels(adapter=adapter_name, status=state.value).set(
                    page.total
                )

"""What the rest of netweave may ask of the store. ``netweave.store.sql.SqlStore`` implements it.

Every method is its own transaction unless called inside ``async with store.transaction():``,
in which case all calls in the block commit or roll back together (used where a request
changes several rows, e.g. a deployment plus its first operation).

Errors: unique violations raise :class:`netweave.errors.AlreadyExists`; missing rows on
update/delete raise :class:`netweave.errors.NotFound`; the database being unreachable raises
:class:`netweave.errors.BackendUnavailable`. No SQLAlchemy exception leaves the store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from contextvars import ContextVar
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol, overload

from netweave.models import DeploymentStatus, OperationState, PackageState
from netweave.store.records import (
    ApiTokenRecord,
    DeploymentRecord,
    IdempotencyRecord,
    OperationRecord,
    PackageRecord,
    Page,
    RenderedPage,
    RenderPackage,
    SubscriptionRecord,
)
from netweave.store.vnf import VnfStore
from netweave.store.vnfpkg import VnfPackageStore

if TYPE_CHECKING:  # the outbox is built on the SQL store, which implements this protocol
    from netweave.store.outbox import OutboxStore

#: Largest page a list call returns; the API enforces the same bound on ``limit``.
MAX_PAGE_LIMIT: Final = 1000

#: Set by :func:`urgent_writes`; a store with a write queue serves such tasks first.
URGENT_WRITES: ContextVar[bool] = ContextVar("netweave_urgent_writes", default=False)


def urgent_writes() -> None:
    """Mark the current task (and tasks it starts) as operation work for the store's writes.

    The operation worker calls it: finishing and starting accepted operations goes before
    accepting more, so a burst of requests does not hold every running operation up behind
    it. SQLite's write queue honours it; PostgreSQL has no queue and ignores it.
    """
    URGENT_WRITES.set(True)


class Store(VnfStore, VnfPackageStore, Protocol):
    # -- life ------------------------------------------------------------------------------
    async def migrate(self) -> None:
        """Apply Alembic migrations up to head (idempotent; safe with concurrent replicas)."""

    async def ping(self) -> bool:
        """True when the database answers (``/readyz``)."""

    async def close(self) -> None: ...

    def transaction(self) -> AbstractAsyncContextManager[None]: ...

    def outbox(self) -> OutboxStore | None:
        """The notification outbox kept in this store, or ``None`` for a store without one
        (the gateway then runs without notifications)."""

    # -- packages --------------------------------------------------------------------------
    def set_package_renderer(self, render: RenderPackage, *, key: str) -> None:
        """How each package's view is rendered (``key`` names that rendering): from now on
        every package write stores its view in the row, rows without one (or with another
        key's) are rendered when read and filled in the background."""

    async def add_package(self, record: PackageRecord) -> None:
        """AlreadyExists if package_id or (name, version) exists."""

    async def get_package(self, package_id: str) -> PackageRecord | None: ...

    async def read_package(self, package_id: str) -> PackageRecord | None:
        """As ``get_package``, but possibly the store's cached record itself, not a copy: for
        callers that only read it (rendering), which must never change it."""

    async def find_package(self, name: str, version: str) -> PackageRecord | None: ...

    async def list_packages(
        self,
        *,
        name: str | None = None,
        version: str | None = None,
        package_type: str | None = None,
        adapter: str | None = None,
        state: PackageState | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> Page:
        """Ordered by (name, version). ``state=IN_USE`` selects packages with deployments."""

    async def update_package(self, package_id: str, **changes: Any) -> PackageRecord:
        """Set the given fields (and ``updated_at``); NotFound when missing."""

    async def delete_package(self, package_id: str) -> None: ...

    async def package_ids_in_use(self, package_ids: Sequence[str]) -> set[str]:
        """Which of these packages have at least one deployment record."""

    async def package_backend_refs(self, adapter: str) -> set[str]:
        """The ``backend_ref`` of every package the given adapter owns."""

    async def package_view(self, package_id: str) -> tuple[PackageRecord, bool] | None:
        """A package and whether a deployment uses it (its ``IN_USE``), in one read."""

    async def package_view_json(self, package_id: str) -> bytes | None:
        """A package's view as JSON (see ``set_package_renderer``), ``None`` if there is none."""

    @overload
    async def package_views(
        self,
        *,
        equal: Mapping[str, Any],
        state: PackageState | None = None,
        after: tuple[str, str] | None = None,
        limit: int = 100,
        offset: int = 0,
        rendered: Literal[False] = False,
    ) -> tuple[list[tuple[PackageRecord, bool]], bool]: ...

    @overload
    async def package_views(
        self,
        *,
        equal: Mapping[str, Any],
        state: PackageState | None = None,
        after: tuple[str, str] | None = None,
        limit: int = 100,
        offset: int = 0,
        rendered: Literal[True],
    ) -> tuple[RenderedPage, bool]: ...

    async def package_views(
        self,
        *,
        equal: Mapping[str, Any],
        state: PackageState | None = None,
        after: tuple[str, str] | None = None,
        limit: int = 100,
        offset: int = 0,
        rendered: bool = False,
    ) -> tuple[list[tuple[PackageRecord, bool]], bool] | tuple[RenderedPage, bool]:
        """Packages whose ``name``/``version``/``package_type``/``adapter`` equal ``equal``'s
        values (``None``: any), with ``list_packages``' state rule, each with whether it is in
        use; in (name, version) order, ``offset`` rows skipped after the (name, version)
        ``after`` (keyset pagination: a deep page costs what the first one does); and whether
        more rows follow the page. ``rendered``: each view as its JSON, from the view stored in
        its row (see ``set_package_renderer``)."""

    async def count_packages(
        self, *, equal: Mapping[str, Any], state: PackageState | None = None
    ) -> int:
        """How many packages ``package_views`` pages through with these filters."""

    # -- deployments -----------------------------------------------------------------------
    async def add_deployment(self, record: DeploymentRecord) -> None:
        """AlreadyExists if deployment_id or (adapter, namespace, name) exists."""

    async def get_deployment(self, deployment_id: str) -> DeploymentRecord | None: ...

    async def get_deployments(self, deployment_ids: Sequence[str]) -> dict[str, DeploymentRecord]:
        """The deployments of these ids that exist, by id (a reconciler round's reads at once)."""

    async def deployment_refs(
        self, *, after: str | None, limit: int
    ) -> list[tuple[str, str, str | None]]:
        """(deployment_id, adapter, backend_ref) of up to ``limit`` deployments whose id sorts
        after ``after``, ordered by id: what the reconciler tracks, without reading (and
        decoding) whole records on every listing."""

    async def list_deployments(
        self,
        *,
        package_id: str | None = None,
        status: DeploymentStatus | None = None,
        namespace: str | None = None,
        adapter: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> Page:
        """Ordered by created_at, deployment_id."""

    async def update_deployment(self, deployment_id: str, **changes: Any) -> DeploymentRecord: ...

    async def delete_deployment(self, deployment_id: str) -> None: ...

    # -- operations ------------------------------------------------------------------------
    async def add_operation(self, record: OperationRecord) -> None: ...

    async def get_operation(self, operation_id: str) -> OperationRecord | None: ...

    async def list_operations(
        self,
        *,
        deployment_id: str | None = None,
        state: OperationState | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> Page:
        """Ordered by start_time, operation_id."""

    async def update_operation(
        self,
        operation_id: str,
        *,
        expected_state: OperationState | None = None,
        **changes: Any,
    ) -> OperationRecord:
        """Compare-and-set: with ``expected_state``, raise Conflict if the row is in another
        state (two replicas racing on retry/cancel). Sets ``state_entered_time`` when ``state``
        changes."""

    async def claim_operations(
        self, *, owner: str, lease_seconds: float, limit: int, now: datetime
    ) -> list[OperationRecord]:
        """Lease up to ``limit`` operations in a claimable state (STARTING, PROCESSING,
        ROLLING_BACK) whose lease is free or expired, oldest first (``FOR UPDATE SKIP LOCKED``
        on PostgreSQL), set their lease to ``owner`` until ``now + lease_seconds`` and return
        them."""

    async def renew_lease(
        self, operation_id: str, *, owner: str, lease_seconds: float, now: datetime
    ) -> bool:
        """Extend a lease we hold; False when another owner took it."""

    async def release_lease(self, operation_id: str, *, owner: str) -> None: ...

    async def active_operation_for(self, deployment_id: str) -> OperationRecord | None:
        """The non-terminal operation on a deployment, if any (one at a time per deployment)."""

    async def busy_deployments(self, deployment_ids: Sequence[str]) -> set[str]:
        """Which of these deployments a non-terminal operation holds (one query for many)."""

    # -- the reconciler's shards -----------------------------------------------------------
    async def claim_reconcile_shards(
        self, *, owner: str, shards: int, want: int, lease_seconds: float, now: datetime
    ) -> list[int]:
        """Hold ``want`` of the shards ``0..shards-1`` until ``now + lease_seconds``: those
        ``owner`` holds already first, then free or expired ones (``FOR UPDATE SKIP LOCKED`` on
        PostgreSQL); shards held beyond ``want`` are given up. The shards now held."""

    async def reconcile_owners(self, *, now: datetime) -> set[str]:
        """The owners holding an unexpired shard lease (the live reconciling replicas)."""

    async def release_reconcile_shards(self, *, owner: str) -> None: ...

    # -- subscriptions ---------------------------------------------------------------------
    async def add_subscription(self, record: SubscriptionRecord) -> None: ...

    async def get_subscription(self, subscription_id: str) -> SubscriptionRecord | None: ...

    async def list_subscriptions(self, *, limit: int = 100, offset: int = 0) -> Page: ...

    async def delete_subscription(self, subscription_id: str) -> None: ...

    def subscription_writes(self) -> tuple[int, int]:
        """How many subscription writes this process has started and finished (committed or
        rolled back): a copy of the subscription list read while both were equal is still
        current (for this process's writes) as long as they stay unchanged."""

    @property
    def sole_writer(self) -> bool:
        """True when no other process writes this database (SQLite: one gateway process per
        file), so what this process wrote is all that changed."""

    # -- idempotency keys ------------------------------------------------------------------
    async def get_idempotency(self, key: str, scope: str) -> IdempotencyRecord | None: ...

    async def put_idempotency(self, record: IdempotencyRecord) -> None:
        """AlreadyExists if (key, scope) is stored (a concurrent retry won the race)."""

    async def purge_idempotency(self, older_than: datetime) -> int: ...

    # -- API tokens ------------------------------------------------------------------------
    async def add_api_token(self, record: ApiTokenRecord) -> None: ...

    async def find_api_token(self, token_hash: str) -> ApiTokenRecord | None: ...

    async def count_api_tokens(self) -> int: ...

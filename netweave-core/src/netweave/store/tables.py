"""The tables the gateway stores (SQLAlchemy 2 declarative), portable across SQLite and PostgreSQL.

The Alembic revisions under ``migrations/versions`` must produce exactly this metadata; a test
compares them on both backends. Enumerations are stored as short strings (no native enum types)
so adding a state never needs a type migration.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine

#: Operations not yet in a terminal state (COMPLETED, FAILED, ROLLED_BACK); FAILED_TEMP counts
#: as unfinished: it waits for retry, fail or rollback.
UNFINISHED_OPERATION_SQL = "state NOT IN ('COMPLETED', 'FAILED', 'ROLLED_BACK')"

#: Deterministic constraint names, so error messages and migrations can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on both backends.

    PostgreSQL keeps ``timestamptz``; SQLite has no time zones, so values are stored as naive
    UTC text (fixed width, so text order is time order) and made aware again when read.
    Naive datetimes are refused: guessing their zone would silently corrupt times.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} given; use an aware UTC time")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def json_type() -> TypeEngine[Any]:
    """JSON everywhere, JSONB on PostgreSQL (indexable, compact)."""
    return JSON().with_variant(postgresql.JSONB(), "postgresql")


#: SQLite only auto-increments an INTEGER PRIMARY KEY (the rowid alias), not BIGINT.
BigIntId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class PackageRow(Base):
    __tablename__ = "packages"

    package_id: Mapped[str] = mapped_column(String(300), primary_key=True)
    name: Mapped[str] = mapped_column(String(253))
    version: Mapped[str] = mapped_column(String(128))
    artifact_name: Mapped[str] = mapped_column(String(253))
    package_type: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    adapter: Mapped[str] = mapped_column(String(63))
    backend_ref: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    provider: Mapped[str | None] = mapped_column(String(253))
    package_uri: Mapped[str | None] = mapped_column(Text)
    checksum: Mapped[str | None] = mapped_column(String(100))
    extensions: Mapped[dict[str, Any]] = mapped_column(json_type())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: The package's wire JSON before and after its state value (which IN_USE replaces), so a
    #: list page is stored bytes joined (netweave.store.packages); ``None`` until rendered.
    view_head: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    view_tail: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    #: The rendering the view came from (a change of the wire model makes it another one).
    view_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: ``updated_at`` of the row the view was rendered from: a write that did not render the
    #: view (older code) leaves them unequal, and the view is not used.
    view_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    # Lists are ordered by (name, version): each filter's index ends with them, so a filtered
    # page is an index range, not a scan and sort. The unique key serves the name filter.
    __table_args__ = (
        UniqueConstraint("name", "version"),
        Index("ix_packages_adapter_name_version", "adapter", "name", "version"),
        Index("ix_packages_package_type_name_version", "package_type", "name", "version"),
        Index("ix_packages_state_name_version", "state", "name", "version"),
        Index("ix_packages_version_name", "version", "name"),
        # The SOL005 VNF package list's order (netweave.store.vnfpkg.vnf_package_page).
        Index("ix_packages_created_at_package_id", "created_at", "package_id"),
    )


class DeploymentRow(Base):
    __tablename__ = "deployments"

    deployment_id: Mapped[str] = mapped_column(String(300), primary_key=True)
    name: Mapped[str] = mapped_column(String(253))
    namespace: Mapped[str] = mapped_column(String(253))
    # No foreign key to packages: a forced package delete keeps its deployments.
    package_id: Mapped[str] = mapped_column(String(300))
    package_version: Mapped[str] = mapped_column(String(128))
    adapter: Mapped[str] = mapped_column(String(63))
    status: Mapped[str] = mapped_column(String(16))
    backend_ref: Mapped[str | None] = mapped_column(Text)
    resource_pool_id: Mapped[str | None] = mapped_column(String(253))
    status_message: Mapped[str | None] = mapped_column(Text)
    revision: Mapped[int] = mapped_column(Integer)
    values: Mapped[dict[str, Any]] = mapped_column(json_type())
    extensions: Mapped[dict[str, Any]] = mapped_column(json_type())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: What the reconciler found changed outside the gateway (``None``: nothing).
    drift: Mapped[dict[str, Any] | None] = mapped_column(json_type(), nullable=True)

    # Lists are ordered by (created_at, deployment_id); one index per filter ending with them.
    __table_args__ = (
        UniqueConstraint("adapter", "namespace", "name"),
        Index("ix_deployments_created_at_deployment_id", "created_at", "deployment_id"),
        Index("ix_deployments_package_id_created_at", "package_id", "created_at", "deployment_id"),
        Index("ix_deployments_status_created_at", "status", "created_at", "deployment_id"),
        Index("ix_deployments_namespace_created_at", "namespace", "created_at", "deployment_id"),
        Index("ix_deployments_adapter_created_at", "adapter", "created_at", "deployment_id"),
    )


class ReconcileShardRow(Base):
    """The reconciler's shards: deployments are spread over a fixed number of shards (by a hash
    of their id), and each shard is reconciled by the replica holding its lease, taken over when
    the lease expires (a replica that died)."""

    __tablename__ = "reconcile_shards"

    shard: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    lease_owner: Mapped[str | None] = mapped_column(String(255))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class OperationRow(Base):
    __tablename__ = "operations"

    operation_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    operation_type: Mapped[str] = mapped_column(String(16))
    # No foreign key: operations outlive the deployment they deleted (history, audit).
    deployment_id: Mapped[str] = mapped_column(String(300))
    adapter: Mapped[str] = mapped_column(String(63))
    state: Mapped[str] = mapped_column(String(16))
    start_time: Mapped[datetime] = mapped_column(UTCDateTime())
    state_entered_time: Mapped[datetime] = mapped_column(UTCDateTime())
    params: Mapped[dict[str, Any]] = mapped_column(json_type())
    is_cancel_pending: Mapped[bool] = mapped_column(Boolean)
    attempts: Mapped[int] = mapped_column(Integer)
    error: Mapped[dict[str, Any] | None] = mapped_column(json_type())
    lease_owner: Mapped[str | None] = mapped_column(String(255))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        # Claiming: active states whose lease is free or expired.
        Index("ix_operations_state_lease_expires_at", "state", "lease_expires_at"),
        # Lists, ordered by (start_time, operation_id), unfiltered and per filter.
        Index("ix_operations_start_time_operation_id", "start_time", "operation_id"),
        Index(
            "ix_operations_deployment_id_start_time", "deployment_id", "start_time", "operation_id"
        ),
        Index("ix_operations_state_start_time", "state", "start_time", "operation_id"),
        # One unfinished operation per deployment, enforced by the database: two replicas
        # starting operations on one deployment at once cannot both succeed.
        Index(
            "uq_operations_unfinished_deployment_id",
            "deployment_id",
            unique=True,
            sqlite_where=text(UNFINISHED_OPERATION_SQL),
            postgresql_where=text(UNFINISHED_OPERATION_SQL),
        ),
    )


class SubscriptionRow(Base):
    __tablename__ = "subscriptions"

    subscription_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    callback_uri: Mapped[str] = mapped_column(Text)
    filter: Mapped[dict[str, Any]] = mapped_column(json_type())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    #: How to authenticate towards the callback (ETSI SubscriptionAuthentication, secrets
    #: included: the gateway needs them to call). Never returned by the API.
    authentication: Mapped[dict[str, Any] | None] = mapped_column(json_type())


class IdempotencyRow(Base):
    __tablename__ = "idempotency_keys"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    scope: Mapped[str] = mapped_column(String(1024), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(128))
    status_code: Mapped[int] = mapped_column(Integer)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    headers: Mapped[dict[str, str]] = mapped_column(json_type())
    # Purging old keys scans by age.
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class ApiTokenRow(Base):
    __tablename__ = "api_tokens"

    token_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    scopes: Mapped[list[str]] = mapped_column(json_type())
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OutboxRow(Base):
    """Notification events, written in the same transaction as the change they describe.

    A delivery worker claims pending rows with a lease (as operations are claimed) and fans
    them out to subscriptions; ``event_id`` is the de-duplication id sent to subscribers.
    """

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(json_type())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: PENDING until every matching subscription got it, then DELIVERED (or FAILED when given up).
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lease_owner: Mapped[str | None] = mapped_column(String(255))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_outbox_state_next_attempt_at", "state", "next_attempt_at"),)


class DeliveryRow(Base):
    """One outbox event to one subscription: retried with back-off, claimed with a lease.

    ``ordering_key`` (e.g. ``deployment:<id>``) orders a subscription's deliveries: one is only
    claimed when no earlier (``occurred_at``, ``id``) delivery with the same key is pending.
    """

    __tablename__ = "notification_deliveries"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(64), index=True)
    subscription_id: Mapped[str] = mapped_column(String(64))
    ordering_key: Mapped[str | None] = mapped_column(String(400))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: PENDING, DELIVERED or FAILED (attempts exhausted, or the subscription is gone).
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lease_owner: Mapped[str | None] = mapped_column(String(255))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_notification_deliveries_state_next_attempt_at", "state", "next_attempt_at"),
        Index(
            "ix_notification_deliveries_order",
            "subscription_id",
            "ordering_key",
            "state",
            "occurred_at",
        ),
    )


#: ``vnf_instances``' SQLite page index: the vnfdId range in list order, then what a page's
#: stamps read (netweave.store.vnf.StampPage).
VNF_INSTANCE_STAMP_COLUMNS = (
    "vnfd_id",
    "created_at",
    "vnf_instance_id",
    "deployment_id",
    "instantiate_operation_id",
    "version",
)


class VnfInstanceRow(Base):
    """An ETSI SOL003 VNF instance (the ``/vnflcm`` face): it exists before instantiation.

    Instantiation creates the native deployment (``deployment_id``); whether the instance is
    INSTANTIATED is derived from that deployment and the instantiate operation's state, so
    the native operations stay the one state machine.
    """

    __tablename__ = "vnf_instances"

    vnf_instance_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: The package (``packageId``) the VNFD id names: the one its deployment runs, once
    #: instantiated (kept so after change_vnfpkg, rollback or a native update).
    vnfd_id: Mapped[str] = mapped_column(String(300))
    name: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    deployment_id: Mapped[str | None] = mapped_column(String(300))
    instantiate_operation_id: Mapped[str | None] = mapped_column(String(64))
    flavour_id: Mapped[str | None] = mapped_column(String(255))
    #: Scaling aspects declared at instantiation: id → replica key, min, step, max level.
    aspects: Mapped[dict[str, Any]] = mapped_column(json_type())
    properties: Mapped[dict[str, Any]] = mapped_column(json_type())
    # ``metadata`` is reserved by SQLAlchemy's declarative classes.
    instance_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", json_type())
    extensions: Mapped[dict[str, Any]] = mapped_column(json_type())
    #: Bumped on every change of the record: the ETag of PATCH's If-Match.
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: The resources the backend reported after the instance's last operation ended (kind,
    #: name, namespace, digest): what the next occurrence's ``resourceChanges`` start from.
    resources: Mapped[list[Any] | None] = mapped_column(json_type(), nullable=True)

    __table_args__ = (
        Index("ix_vnf_instances_created_at_vnf_instance_id", "created_at", "vnf_instance_id"),
        Index("ix_vnf_instances_deployment_id", "deployment_id"),
        # A list filtered on vnfdId: an index range in list order (the column follows the
        # deployment's package, see netweave.services.vnflcm_notify).
        Index(
            "ix_vnf_instances_vnfd_id_created_at", "vnfd_id", "created_at", "vnf_instance_id"
        ).ddl_if(dialect="postgresql"),
        # On SQLite the same range also holds every column a list page's stamps read
        # (netweave.store.vnf.StampPage), so a page of kept items never visits the table's
        # rows. PostgreSQL keeps the narrower index (0008; see migration 0011).
        Index("ix_vnf_instances_vnfd_id_stamp", *VNF_INSTANCE_STAMP_COLUMNS).ddl_if(
            dialect="sqlite"
        ),
    )


class VnfLcmOpOccRow(Base):
    """A VNF LCM operation occurrence: the id of the native operation it runs as, the SOL003
    operation it is, and the request as sent. ``state`` is only set for occurrences that have
    no native operation (MODIFY_INFO, done by the gateway alone)."""

    __tablename__ = "vnf_lcm_op_occs"

    op_occ_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    vnf_instance_id: Mapped[str] = mapped_column(String(64))
    operation: Mapped[str] = mapped_column(String(32))
    operation_params: Mapped[dict[str, Any]] = mapped_column(json_type())
    changed_info: Mapped[dict[str, Any] | None] = mapped_column(json_type())
    state: Mapped[str | None] = mapped_column(String(16))
    start_time: Mapped[datetime] = mapped_column(UTCDateTime())
    #: The instance's resources when the occurrence started, and what changed since (SOL003
    #: ``resourceChanges``, set each time it reaches a result state).
    resources_before: Mapped[list[Any] | None] = mapped_column(json_type(), nullable=True)
    resource_changes: Mapped[dict[str, Any] | None] = mapped_column(json_type(), nullable=True)
    #: The last error (ProblemDetails): SOL003 keeps it through a retry or rollback, while the
    #: native operation clears it when it ends.
    error: Mapped[dict[str, Any] | None] = mapped_column(json_type(), nullable=True)

    __table_args__ = (
        Index("ix_vnf_lcm_op_occs_start_time_op_occ_id", "start_time", "op_occ_id"),
        Index(
            "ix_vnf_lcm_op_occs_vnf_instance_id_start_time",
            "vnf_instance_id",
            "start_time",
            "op_occ_id",
        ),
    )


class VnfLcmSubscriptionRow(Base):
    """A subscription of the ETSI face (SOL003 ``LccnSubscription`` or SOL005
    ``PkgmSubscription``, by ``api``), apart from the native ones: its filter, verbosity and
    notification shapes are the standard's. Deliveries go through the
    same outbox (``notification_deliveries.subscription_id`` names a row of either table; the
    event type tells which)."""

    __tablename__ = "vnf_lcm_subscriptions"

    subscription_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: The interface it was made on: ``vnflcm`` (SOL003 LCM) or ``vnfpkgm`` (SOL005 packages).
    api: Mapped[str] = mapped_column(String(16), server_default="vnflcm")
    #: Major version of that interface (vnflcm 1 or 2; vnfpkgm 2): the notifications' shape.
    api_major: Mapped[int] = mapped_column(Integer)
    #: The ``{apiRoot}/vnflcm/v{N}`` it was made on: the base of the notifications' links.
    api_base: Mapped[str] = mapped_column(Text)
    #: The deployment manager whose apiRoot it was made on (``None``: the gateway's root).
    manager: Mapped[str | None] = mapped_column(String(255))
    callback_uri: Mapped[str] = mapped_column(Text)
    filter: Mapped[dict[str, Any]] = mapped_column(json_type())
    verbosity: Mapped[str] = mapped_column(String(8))
    #: Callback authentication, secrets sealed (never returned).
    authentication: Mapped[dict[str, Any] | None] = mapped_column(json_type(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index(
            "ix_vnf_lcm_subscriptions_created_at_subscription_id", "created_at", "subscription_id"
        ),
    )


class VnfPackageRow(Base):
    """An ETSI SOL005 VNF package (the ``vnfpkgm`` face) that the native package rows do not
    describe alone: one created before its content (CREATED … ERROR), a CSAR onboarded into a
    native package (``package_id``), or a native package with ``userDefinedData``. A native
    package without a row is a VNF package of the same id, ONBOARDED, with a generated VNFD.
    """

    __tablename__ = "vnf_packages"

    vnf_pkg_id: Mapped[str] = mapped_column(String(300), primary_key=True)
    #: The native package once onboarded (its id is the VNFD id).
    package_id: Mapped[str | None] = mapped_column(String(300), unique=True)
    onboarding_state: Mapped[str] = mapped_column(String(16))
    user_defined_data: Mapped[dict[str, Any]] = mapped_column(json_type())
    #: The VNFD read from the CSAR (``netweave.packaging.vnfd.Vnfd.to_json``).
    vnfd: Mapped[dict[str, Any] | None] = mapped_column(json_type(), nullable=True)
    #: What the content was: file name, size, checksum, manifest, artifacts, layout.
    content: Mapped[dict[str, Any] | None] = mapped_column(json_type(), nullable=True)
    onboarding_failure: Mapped[dict[str, Any] | None] = mapped_column(json_type(), nullable=True)
    #: Bumped on every change: the ETag of PATCH's If-Match.
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_vnf_packages_created_at_vnf_pkg_id", "created_at", "vnf_pkg_id"),)


metadata = Base.metadata

__all__ = [
    "ApiTokenRow",
    "Base",
    "DeliveryRow",
    "DeploymentRow",
    "IdempotencyRow",
    "OperationRow",
    "OutboxRow",
    "PackageRow",
    "SubscriptionRow",
    "UTCDateTime",
    "VnfInstanceRow",
    "VnfLcmOpOccRow",
    "VnfLcmSubscriptionRow",
    "VnfPackageRow",
    "metadata",
]

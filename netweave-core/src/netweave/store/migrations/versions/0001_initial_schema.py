"""Initial schema: packages, deployments, operations, subscriptions, idempotency keys, API
tokens and the notification outbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-21

Self-contained on purpose (no import of netweave.store.tables): a revision must keep creating
the schema it was written for, whatever the models later become.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _json(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(
        name, sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=nullable
    )


def upgrade() -> None:
    op.create_table(
        "packages",
        sa.Column("package_id", sa.String(300), nullable=False),
        sa.Column("name", sa.String(253), nullable=False),
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("artifact_name", sa.String(253), nullable=False),
        sa.Column("package_type", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("adapter", sa.String(63), nullable=False),
        sa.Column("backend_ref", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("provider", sa.String(253), nullable=True),
        sa.Column("package_uri", sa.Text(), nullable=True),
        sa.Column("checksum", sa.String(100), nullable=True),
        _json("extensions"),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("package_id", name="pk_packages"),
        sa.UniqueConstraint("name", "version", name="uq_packages_name_version"),
    )
    for column in ("adapter", "package_type", "state"):
        op.create_index(
            f"ix_packages_{column}_name_version", "packages", [column, "name", "version"]
        )
    op.create_index("ix_packages_version_name", "packages", ["version", "name"])

    op.create_table(
        "deployments",
        sa.Column("deployment_id", sa.String(300), nullable=False),
        sa.Column("name", sa.String(253), nullable=False),
        sa.Column("namespace", sa.String(253), nullable=False),
        sa.Column("package_id", sa.String(300), nullable=False),
        sa.Column("package_version", sa.String(128), nullable=False),
        sa.Column("adapter", sa.String(63), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("backend_ref", sa.Text(), nullable=True),
        sa.Column("resource_pool_id", sa.String(253), nullable=True),
        sa.Column("status_message", sa.Text(), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        _json("values"),
        _json("extensions"),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("deployment_id", name="pk_deployments"),
        sa.UniqueConstraint(
            "adapter", "namespace", "name", name="uq_deployments_adapter_namespace_name"
        ),
    )
    op.create_index(
        "ix_deployments_created_at_deployment_id", "deployments", ["created_at", "deployment_id"]
    )
    for column in ("package_id", "status", "namespace", "adapter"):
        op.create_index(
            f"ix_deployments_{column}_created_at",
            "deployments",
            [column, "created_at", "deployment_id"],
        )

    op.create_table(
        "operations",
        sa.Column("operation_id", sa.String(64), nullable=False),
        sa.Column("operation_type", sa.String(16), nullable=False),
        sa.Column("deployment_id", sa.String(300), nullable=False),
        sa.Column("adapter", sa.String(63), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        _ts("start_time"),
        _ts("state_entered_time"),
        _json("params"),
        sa.Column("is_cancel_pending", sa.Boolean(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _json("error", nullable=True),
        sa.Column("lease_owner", sa.String(255), nullable=True),
        _ts("lease_expires_at", nullable=True),
        sa.PrimaryKeyConstraint("operation_id", name="pk_operations"),
    )
    op.create_index(
        "ix_operations_start_time_operation_id", "operations", ["start_time", "operation_id"]
    )
    for column in ("deployment_id", "state"):
        op.create_index(
            f"ix_operations_{column}_start_time",
            "operations",
            [column, "start_time", "operation_id"],
        )
    op.create_index(
        "ix_operations_state_lease_expires_at", "operations", ["state", "lease_expires_at"]
    )

    unfinished = sa.text("state NOT IN ('COMPLETED', 'FAILED', 'ROLLED_BACK')")
    op.create_index(
        "uq_operations_unfinished_deployment_id",
        "operations",
        ["deployment_id"],
        unique=True,
        sqlite_where=unfinished,
        postgresql_where=unfinished,
    )

    op.create_table(
        "subscriptions",
        sa.Column("subscription_id", sa.String(64), nullable=False),
        sa.Column("callback_uri", sa.Text(), nullable=False),
        _json("filter"),
        _ts("created_at"),
        _json("authentication", nullable=True),
        sa.PrimaryKeyConstraint("subscription_id", name="pk_subscriptions"),
    )
    op.create_index("ix_subscriptions_created_at", "subscriptions", ["created_at"])

    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("scope", sa.String(1024), nullable=False),
        sa.Column("request_hash", sa.String(128), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        _json("headers"),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("key", "scope", name="pk_idempotency_keys"),
    )
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])

    op.create_table(
        "api_tokens",
        sa.Column("token_id", sa.String(64), nullable=False),
        sa.Column("token_hash", sa.String(128), nullable=False),
        _json("scopes"),
        sa.Column("description", sa.Text(), nullable=True),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("token_id", name="pk_api_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
    )

    op.create_table(
        "outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        _json("payload"),
        _ts("created_at"),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _ts("next_attempt_at"),
        sa.Column("lease_owner", sa.String(255), nullable=True),
        _ts("lease_expires_at", nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        _ts("delivered_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("event_id", name="uq_outbox_event_id"),
    )
    op.create_index("ix_outbox_state_next_attempt_at", "outbox", ["state", "next_attempt_at"])

    op.create_table(
        "notification_deliveries",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("subscription_id", sa.String(64), nullable=False),
        sa.Column("ordering_key", sa.String(400), nullable=True),
        _ts("occurred_at"),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _ts("next_attempt_at"),
        sa.Column("lease_owner", sa.String(255), nullable=True),
        _ts("lease_expires_at", nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        _ts("delivered_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_notification_deliveries"),
    )
    op.create_index("ix_notification_deliveries_event_id", "notification_deliveries", ["event_id"])
    op.create_index(
        "ix_notification_deliveries_state_next_attempt_at",
        "notification_deliveries",
        ["state", "next_attempt_at"],
    )
    op.create_index(
        "ix_notification_deliveries_order",
        "notification_deliveries",
        ["subscription_id", "ordering_key", "state", "occurred_at"],
    )


def downgrade() -> None:
    for table in (
        "notification_deliveries",
        "outbox",
        "api_tokens",
        "idempotency_keys",
        "subscriptions",
        "operations",
        "deployments",
        "packages",
    ):
        op.drop_table(table)

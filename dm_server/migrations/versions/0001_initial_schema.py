"""Initial schema: accounts tree, terminals, registrations, values, queue, events.

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import dm_server.db.base

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("path", sa.String(length=512), nullable=False),
        sa.Column(
            "role",
            sa.Enum("ADMIN", "DEALER", "OWNER", name="role", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=256), nullable=False),
        sa.Column("display_name", sa.String(length=128), nullable=False),
        sa.Column("locale", sa.String(length=16), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", dm_server.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", dm_server.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["accounts.id"],
            name=op.f("fk_accounts_parent_id_accounts"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("username", name=op.f("uq_accounts_username")),
    )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_accounts_parent_id"), ["parent_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_accounts_path"), ["path"], unique=False)

    op.create_table(
        "terminals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("endpoint", sa.String(length=128), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column(
            "security_mode",
            sa.Enum("PSK", "NOSEC", name="securitymode", native_enum=False, length=8),
            nullable=False,
        ),
        sa.Column("psk_identity", sa.String(length=128), nullable=True),
        sa.Column("psk_key", sa.LargeBinary(length=64), nullable=True),
        sa.Column(
            "trading_state",
            sa.Enum(
                "RUNNING", "IDLE", "OFFLINE", name="tradingstate", native_enum=False, length=16
            ),
            nullable=False,
        ),
        sa.Column("state_changed_at", dm_server.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", dm_server.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", dm_server.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["accounts.id"],
            name=op.f("fk_terminals_owner_id_accounts"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_terminals")),
        sa.UniqueConstraint("endpoint", name=op.f("uq_terminals_endpoint")),
        sa.UniqueConstraint("psk_identity", name=op.f("uq_terminals_psk_identity")),
    )
    with op.batch_alter_table("terminals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_terminals_owner_id"), ["owner_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_terminals_trading_state"), ["trading_state"], unique=False
        )

    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("terminal_id", sa.Integer(), nullable=False),
        sa.Column("event_uid", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("occurred_at", dm_server.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("received_at", dm_server.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["terminal_id"],
            ["terminals.id"],
            name=op.f("fk_events_terminal_id_terminals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint("terminal_id", "event_uid", name=op.f("uq_events_terminal_id")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_events_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_events_occurred_at"), ["occurred_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_events_received_at"), ["received_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_events_terminal_id"), ["terminal_id"], unique=False)

    op.create_table(
        "queued_operations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("terminal_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "QUEUED",
                "SENT",
                "DONE",
                "FAILED",
                "TIMEOUT",
                "EXPIRED",
                name="operationstatus",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("requested_by", sa.Integer(), nullable=True),
        sa.Column("created_at", dm_server.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", dm_server.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", dm_server.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["requested_by"],
            ["accounts.id"],
            name=op.f("fk_queued_operations_requested_by_accounts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["terminal_id"],
            ["terminals.id"],
            name=op.f("fk_queued_operations_terminal_id_terminals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queued_operations")),
    )
    with op.batch_alter_table("queued_operations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_queued_operations_status"), ["status"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_queued_operations_terminal_id"), ["terminal_id"], unique=False
        )

    op.create_table(
        "registrations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("terminal_id", sa.Integer(), nullable=False),
        sa.Column("location_id", sa.String(length=32), nullable=False),
        sa.Column("lifetime_s", sa.Integer(), nullable=False),
        sa.Column("lwm2m_version", sa.String(length=8), nullable=False),
        sa.Column("binding", sa.String(length=8), nullable=False),
        sa.Column("queue_mode", sa.Boolean(), nullable=False),
        sa.Column("scheme", sa.String(length=8), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("links_text", sa.Text(), nullable=False),
        sa.Column("objects", sa.JSON(), nullable=False),
        sa.Column("content_format", sa.Integer(), nullable=True),
        sa.Column("registered_at", dm_server.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", dm_server.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", dm_server.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", dm_server.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["terminal_id"],
            ["terminals.id"],
            name=op.f("fk_registrations_terminal_id_terminals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registrations")),
        sa.UniqueConstraint("location_id", name=op.f("uq_registrations_location_id")),
        sa.UniqueConstraint("terminal_id", name=op.f("uq_registrations_terminal_id")),
    )
    with op.batch_alter_table("registrations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_registrations_expires_at"), ["expires_at"], unique=False
        )

    op.create_table(
        "resource_values",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("terminal_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=48), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("updated_at", dm_server.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["terminal_id"],
            ["terminals.id"],
            name=op.f("fk_resource_values_terminal_id_terminals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resource_values")),
        sa.UniqueConstraint("terminal_id", "path", name=op.f("uq_resource_values_terminal_id")),
    )
    with op.batch_alter_table("resource_values", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_resource_values_terminal_id"), ["terminal_id"], unique=False
        )

    op.create_table(
        "terminal_state_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("terminal_id", sa.Integer(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "RUNNING", "IDLE", "OFFLINE", name="tradingstate", native_enum=False, length=16
            ),
            nullable=False,
        ),
        sa.Column(
            "previous",
            sa.Enum(
                "RUNNING", "IDLE", "OFFLINE", name="tradingstate", native_enum=False, length=16
            ),
            nullable=True,
        ),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("at", dm_server.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["terminal_id"],
            ["terminals.id"],
            name=op.f("fk_terminal_state_changes_terminal_id_terminals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_terminal_state_changes")),
    )
    with op.batch_alter_table("terminal_state_changes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_terminal_state_changes_at"), ["at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_terminal_state_changes_terminal_id"), ["terminal_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("terminal_state_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_terminal_state_changes_terminal_id"))
        batch_op.drop_index(batch_op.f("ix_terminal_state_changes_at"))

    op.drop_table("terminal_state_changes")
    with op.batch_alter_table("resource_values", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_resource_values_terminal_id"))

    op.drop_table("resource_values")
    with op.batch_alter_table("registrations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_registrations_expires_at"))

    op.drop_table("registrations")
    with op.batch_alter_table("queued_operations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_queued_operations_terminal_id"))
        batch_op.drop_index(batch_op.f("ix_queued_operations_status"))

    op.drop_table("queued_operations")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_events_terminal_id"))
        batch_op.drop_index(batch_op.f("ix_events_received_at"))
        batch_op.drop_index(batch_op.f("ix_events_occurred_at"))
        batch_op.drop_index(batch_op.f("ix_events_kind"))

    op.drop_table("events")
    with op.batch_alter_table("terminals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_terminals_trading_state"))
        batch_op.drop_index(batch_op.f("ix_terminals_owner_id"))

    op.drop_table("terminals")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_accounts_path"))
        batch_op.drop_index(batch_op.f("ix_accounts_parent_id"))

    op.drop_table("accounts")

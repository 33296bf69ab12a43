"""Licences (signed tokens per terminal, with history) and the audit log.

Revision ID: 0003_licences
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import dm_server.db.base

revision: str = "0003_licences"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", dm_server.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=48), nullable=False),
        sa.Column("target_kind", sa.String(length=24), nullable=False),
        sa.Column("target_id", sa.String(length=128), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_audit_log_account_id_accounts"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_log_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_log_action"), ["action"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_log_at"), ["at"], unique=False)

    op.create_table(
        "licences",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("licence_uid", sa.String(length=40), nullable=False),
        sa.Column("terminal_id", sa.Integer(), nullable=False),
        sa.Column("dealer_id", sa.Integer(), nullable=True),
        sa.Column("edition", sa.String(length=16), nullable=False),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.Column("starts", dm_server.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires", dm_server.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("grace_days", sa.Integer(), nullable=False),
        sa.Column(
            "lifecycle",
            sa.Enum(
                "ACTIVE",
                "RENEWED",
                "REVOKED",
                "TRANSFERRED",
                name="licencelifecycle",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("price", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("replaces_id", sa.Integer(), nullable=True),
        sa.Column("issued_by", sa.Integer(), nullable=True),
        sa.Column("issued_at", dm_server.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("closed_at", dm_server.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "delivery",
            sa.Enum(
                "PENDING",
                "QUEUED",
                "WRITTEN",
                "FAILED",
                name="licencedelivery",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("delivery_detail", sa.String(length=256), nullable=False),
        sa.Column("operation_id", sa.Integer(), nullable=True),
        sa.Column("reported_state", sa.String(length=16), nullable=True),
        sa.Column("reported_at", dm_server.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["operation_id"],
            ["queued_operations.id"],
            name=op.f("fk_licences_operation_id_queued_operations"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["dealer_id"],
            ["accounts.id"],
            name=op.f("fk_licences_dealer_id_accounts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["issued_by"],
            ["accounts.id"],
            name=op.f("fk_licences_issued_by_accounts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["replaces_id"],
            ["licences.id"],
            name=op.f("fk_licences_replaces_id_licences"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["terminal_id"],
            ["terminals.id"],
            name=op.f("fk_licences_terminal_id_terminals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_licences")),
        sa.UniqueConstraint("licence_uid", name=op.f("uq_licences_licence_uid")),
    )
    with op.batch_alter_table("licences", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_licences_dealer_id"), ["dealer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_licences_expires"), ["expires"], unique=False)
        batch_op.create_index(batch_op.f("ix_licences_issued_at"), ["issued_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_licences_lifecycle"), ["lifecycle"], unique=False)
        batch_op.create_index(batch_op.f("ix_licences_terminal_id"), ["terminal_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("licences", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_licences_terminal_id"))
        batch_op.drop_index(batch_op.f("ix_licences_lifecycle"))
        batch_op.drop_index(batch_op.f("ix_licences_issued_at"))
        batch_op.drop_index(batch_op.f("ix_licences_expires"))
        batch_op.drop_index(batch_op.f("ix_licences_dealer_id"))

    op.drop_table("licences")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_at"))
        batch_op.drop_index(batch_op.f("ix_audit_log_action"))
        batch_op.drop_index(batch_op.f("ix_audit_log_account_id"))

    op.drop_table("audit_log")

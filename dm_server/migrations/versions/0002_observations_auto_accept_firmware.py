"""Observations to re-establish after Register; dev auto-accept mark; firmware version.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import dm_server.db.base

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing terminals were all provisioned by hand: server_default false keeps them.
    with op.batch_alter_table("terminals", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("auto_accepted", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("firmware_version", sa.String(length=64), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_terminals_firmware_version"), ["firmware_version"], unique=False
        )
    op.create_table(
        "observations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("terminal_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=48), nullable=False),
        sa.Column("content_format", sa.Integer(), nullable=True),
        sa.Column("created_at", dm_server.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_notified_at", dm_server.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["terminal_id"],
            ["terminals.id"],
            name=op.f("fk_observations_terminal_id_terminals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_observations")),
        sa.UniqueConstraint("terminal_id", "path", name=op.f("uq_observations_terminal_id")),
    )
    with op.batch_alter_table("observations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_observations_terminal_id"), ["terminal_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("observations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_observations_terminal_id"))
    op.drop_table("observations")
    with op.batch_alter_table("terminals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_terminals_firmware_version"))
        batch_op.drop_column("firmware_version")
        batch_op.drop_column("auto_accepted")

"""Licences: one row per signed token issued to a terminal.

A renewal or a transfer issues a new row and closes the old one (``replaces_id`` links
them), so the history of a terminal's licences is the rows themselves. Scoped through
``terminal_id``: a dealer sees the licences of the terminals in its subtree.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, BigInteger, Enum, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from dm_server.db.base import Base, UTCDateTime, utcnow


class LicenceLifecycle(enum.StrEnum):
    """Where a licence row stands on the server (the terminal's own verdict is apart)."""

    ACTIVE = "active"
    RENEWED = "renewed"
    REVOKED = "revoked"
    TRANSFERRED = "transferred"


class LicenceDelivery(enum.StrEnum):
    """Whether the token reached the terminal's POS License object (26242)."""

    PENDING = "pending"
    QUEUED = "queued"
    WRITTEN = "written"
    FAILED = "failed"


class Licence(Base):
    __tablename__ = "licences"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: The licence id inside the signed token.
    licence_uid: Mapped[str] = mapped_column(String(40), unique=True)
    terminal_id: Mapped[int] = mapped_column(
        ForeignKey("terminals.id", ondelete="CASCADE"), index=True
    )
    #: The dealer the licence is sold through (the ranking and sales lists count it).
    dealer_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), index=True
    )
    edition: Mapped[str] = mapped_column(String(16))
    features: Mapped[list[str]] = mapped_column(JSON, default=list)
    starts: Mapped[datetime] = mapped_column(UTCDateTime())
    expires: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    grace_days: Mapped[int] = mapped_column(Integer, default=0)
    lifecycle: Mapped[LicenceLifecycle] = mapped_column(
        Enum(LicenceLifecycle, native_enum=False, length=16),
        default=LicenceLifecycle.ACTIVE,
        index=True,
    )
    token: Mapped[str] = mapped_column(Text)
    #: List price at issue, in minor units of ``currency``.
    price: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(String(3), default="")
    replaces_id: Mapped[int | None] = mapped_column(
        ForeignKey("licences.id", ondelete="SET NULL")
    )
    issued_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivery: Mapped[LicenceDelivery] = mapped_column(
        Enum(LicenceDelivery, native_enum=False, length=16), default=LicenceDelivery.PENDING
    )
    delivery_detail: Mapped[str] = mapped_column(String(256), default="")
    #: The queued write, while the terminal sleeps; its outcome settles ``delivery``.
    operation_id: Mapped[int | None] = mapped_column(
        ForeignKey("queued_operations.id", ondelete="SET NULL")
    )
    #: What the terminal last said about this token (object 26242 status), if anything.
    reported_state: Mapped[str | None] = mapped_column(String(16))
    reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def __repr__(self) -> str:
        return f"<Licence {self.licence_uid} terminal={self.terminal_id} {self.lifecycle}>"

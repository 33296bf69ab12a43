"""DM operations waiting for a queue-mode terminal (TS Transport §6.4.3, b=Q)."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, Enum, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from dm_server.db.base import Base, UTCDateTime, utcnow


class OperationStatus(enum.StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    DONE = "done"
    FAILED = "failed"
    TIMEOUT = "timeout"
    EXPIRED = "expired"


class QueuedOperation(Base):
    __tablename__ = "queued_operations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    terminal_id: Mapped[int] = mapped_column(
        ForeignKey("terminals.id", ondelete="CASCADE"), index=True
    )
    #: An OperationKind value (read, write, execute, ...).
    kind: Mapped[str] = mapped_column(String(24))
    #: The JSON body of the API request that asked for it.
    request: Mapped[dict[str, object]] = mapped_column(JSON)
    status: Mapped[OperationStatus] = mapped_column(
        Enum(OperationStatus, native_enum=False, length=16),
        default=OperationStatus.QUEUED,
        index=True,
    )
    #: The outcome as the API returns it (code, value, message).
    result: Mapped[dict[str, object] | None] = mapped_column(JSON)
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

"""Terminal events (sales, refunds, voids, drawer opens, errors) from Send and Observe.

Stored once: a terminal re-sends an event it is not sure arrived, so ``(terminal_id,
event_uid)`` is unique and a repeat is ignored.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from dm_server.db.base import Base, UTCDateTime, utcnow


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("terminal_id", "event_uid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    terminal_id: Mapped[int] = mapped_column(
        ForeignKey("terminals.id", ondelete="CASCADE"), index=True
    )
    event_uid: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32), index=True, default="")
    #: In minor units of ``currency`` (object 26243 Amount), as the terminal reports it.
    amount: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), default="")
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    #: Every resource of the event instance, by resource name.
    data: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    source: Mapped[str] = mapped_column(String(16), default="send")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)

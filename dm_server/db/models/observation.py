"""Observations the server wants on a terminal; re-established after every Register."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from dm_server.db.base import Base, UTCDateTime, utcnow


class Observation(Base):
    __tablename__ = "observations"
    __table_args__ = (UniqueConstraint("terminal_id", "path"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    terminal_id: Mapped[int] = mapped_column(
        ForeignKey("terminals.id", ondelete="CASCADE"), index=True
    )
    path: Mapped[str] = mapped_column(String(48))
    content_format: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

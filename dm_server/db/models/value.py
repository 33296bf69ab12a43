"""Last known values of a terminal's resources, from Reads and Observe notifications."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from dm_server.db.base import Base, UTCDateTime, utcnow


class ResourceValue(Base):
    __tablename__ = "resource_values"
    __table_args__ = (UniqueConstraint("terminal_id", "path"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    terminal_id: Mapped[int] = mapped_column(
        ForeignKey("terminals.id", ondelete="CASCADE"), index=True
    )
    #: A resource or resource-instance path, ``/3/0/3`` or ``/3/0/7/1``.
    path: Mapped[str] = mapped_column(String(48))
    #: The value as JSON (bytes base64, times ISO 8601), see services.values.
    value: Mapped[object] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(String(16), default="read")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

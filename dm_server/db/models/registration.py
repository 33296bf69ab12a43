"""A terminal's current (or last) LwM2M registration (TS Core §6.2.1).

One row per terminal: a new Register replaces it. ``ended_at`` is set on De-register or
lifetime expiry, so the last known objects and address survive for the API and restarts.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from dm_server.db.base import Base, UTCDateTime, utcnow


class Registration(Base):
    __tablename__ = "registrations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    terminal_id: Mapped[int] = mapped_column(
        ForeignKey("terminals.id", ondelete="CASCADE"), unique=True
    )
    #: The last segment of the Location the server gave (``/rd/<location_id>``).
    location_id: Mapped[str] = mapped_column(String(32), unique=True)
    lifetime_s: Mapped[int] = mapped_column(Integer)
    lwm2m_version: Mapped[str] = mapped_column(String(8), default="1.0")
    binding: Mapped[str] = mapped_column(String(8), default="U")
    queue_mode: Mapped[bool] = mapped_column(Boolean, default=False)
    #: ``coap`` or ``coaps``: which of our sockets the terminal talks to.
    scheme: Mapped[str] = mapped_column(String(8))
    #: ``host:port`` (IPv6 in brackets) the terminal registered from (its NAT mapping).
    address: Mapped[str] = mapped_column(String(64))
    #: The CoRE link payload as received, and its parsed form:
    #: ``[{"path": "/3/0", "attributes": {...}}, ...]``.
    links_text: Mapped[str] = mapped_column(Text, default="")
    objects: Mapped[list[dict[str, object]]] = mapped_column(JSON, default=list)
    #: Content format the terminal announced (``ct=`` on ``</>``), or None.
    content_format: Mapped[int | None] = mapped_column(Integer)
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    end_reason: Mapped[str] = mapped_column(String(32), default="")

    @property
    def active(self) -> bool:
        return self.ended_at is None

"""The audit log: who changed what (accounts, terminals, licences, operations), when.

``account_id`` is the acting account, so the subtree filter lets the admin read every
entry and a dealer read what it and the accounts below it did.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from dm_server.db.base import Base, UTCDateTime, utcnow


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), index=True
    )
    #: Kept apart from the id so the entry still reads well if the account goes.
    actor: Mapped[str] = mapped_column(String(64), default="")
    #: ``<target kind>.<verb>``, e.g. ``licence.issue``, ``account.disable``.
    action: Mapped[str] = mapped_column(String(48), index=True)
    target_kind: Mapped[str] = mapped_column(String(24), default="")
    target_id: Mapped[str] = mapped_column(String(128), default="")
    detail: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)

    def __repr__(self) -> str:
        return f"<AuditEntry {self.at:%Y-%m-%d %H:%M} {self.actor} {self.action}>"

"""Accounts: a tree (admin -> dealers -> sub-dealers -> owners) with a materialised path.

``path`` is ``/1/4/9/`` (ids from the root down, this account last), so "everything in my
subtree" is one prefix comparison; see :mod:`dm_server.db.scope`.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, Enum, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from dm_server.db.base import Base, UTCDateTime, utcnow


class Role(enum.StrEnum):
    ADMIN = "admin"
    DEALER = "dealer"
    OWNER = "owner"


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="RESTRICT"), index=True
    )
    #: Materialised path ``/1/4/9/``; filled in after the id is known.
    path: Mapped[str] = mapped_column(String(512), index=True, default="")
    role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=16))
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    display_name: Mapped[str] = mapped_column(String(128), default="")
    locale: Mapped[str] = mapped_column(String(16), default="en")
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def __repr__(self) -> str:
        return f"<Account {self.id} {self.username} {self.role} {self.path}>"

"""Terminals: provisioning (identity, credentials, owner) and trading state with history."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from dm_server.db.base import Base, UTCDateTime, utcnow


class SecurityMode(enum.StrEnum):
    """How a terminal authenticates (LwM2M TS Core §7.1, Security object mode)."""

    PSK = "psk"
    NOSEC = "nosec"


class TradingState(enum.StrEnum):
    """PRODUCT.md: Running while trading, Idle while registered, Offline otherwise."""

    RUNNING = "running"
    IDLE = "idle"
    OFFLINE = "offline"


class Terminal(Base):
    __tablename__ = "terminals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: The LwM2M endpoint client name (``ep``), the terminal's identity everywhere.
    endpoint: Mapped[str] = mapped_column(String(128), unique=True)
    #: Null: not yet assigned, visible to the admin only.
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), index=True
    )
    security_mode: Mapped[SecurityMode] = mapped_column(
        Enum(SecurityMode, native_enum=False, length=8)
    )
    psk_identity: Mapped[str | None] = mapped_column(String(128), unique=True)
    #: The raw PSK; the DTLS transport needs it in clear. Never logged or returned by the API.
    psk_key: Mapped[bytes | None] = mapped_column(LargeBinary(64))
    #: Made by the development auto-accept switch rather than provisioned.
    auto_accepted: Mapped[bool] = mapped_column(default=False)
    trading_state: Mapped[TradingState] = mapped_column(
        Enum(TradingState, native_enum=False, length=16), default=TradingState.OFFLINE, index=True
    )
    state_changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: Copy of /3/0/3 Firmware Version, kept for filtering the fleet by version.
    firmware_version: Mapped[str | None] = mapped_column(String(64), index=True)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    def __repr__(self) -> str:
        return f"<Terminal {self.endpoint} {self.trading_state}>"


class TerminalStateChange(Base):
    """One row per trading-state transition: the source of "fleet state over time"."""

    __tablename__ = "terminal_state_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    terminal_id: Mapped[int] = mapped_column(
        ForeignKey("terminals.id", ondelete="CASCADE"), index=True
    )
    state: Mapped[TradingState] = mapped_column(Enum(TradingState, native_enum=False, length=16))
    previous: Mapped[TradingState | None] = mapped_column(
        Enum(TradingState, native_enum=False, length=16)
    )
    reason: Mapped[str] = mapped_column(String(64), default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)

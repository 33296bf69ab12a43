"""Trading state (Running / Idle / Offline) with a history row per change.

Offline when the registration lapsed or ended; otherwise what POS Terminal /26241/0/0
Trading State says (1 running, 0 idle, 2 out of service counts as Idle), Idle when the
terminal has not reported it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from dm_server.db.base import utcnow
from dm_server.db.models import Account, Terminal, TerminalStateChange
from dm_server.db.models.terminal import TradingState
from dm_server.db.scope import scoped

#: /26241/0/0 POS Terminal Trading State.
TRADING_STATE_PATH = "/26241/0/0"
TRADING_STATE_RUNNING = 1


def state_from_report(value: object) -> TradingState:
    return TradingState.RUNNING if value == TRADING_STATE_RUNNING else TradingState.IDLE


def set_state(
    session: AsyncSession,
    terminal: Terminal,
    state: TradingState,
    reason: str,
    now: datetime | None = None,
) -> bool:
    """Move ``terminal`` to ``state``; a history row only when it actually changes."""
    if terminal.trading_state is state:
        return False
    now = now or utcnow()
    session.add(
        TerminalStateChange(
            terminal_id=terminal.id,
            state=state,
            previous=terminal.trading_state,
            reason=reason,
            at=now,
        )
    )
    terminal.trading_state = state
    terminal.state_changed_at = now
    return True


async def follow_reports(
    session: AsyncSession,
    current: Mapping[int, TradingState],
    reported: Mapping[int, TradingState],
    reason: str,
    now: datetime,
) -> None:
    """Move many terminals to the state they report (terminal id -> state), given their
    ``current`` states: a history row and an UPDATE for each that changes. An Offline
    terminal stays Offline (only a registration brings it back)."""
    changes = [
        (terminal_id, current[terminal_id], state)
        for terminal_id, state in reported.items()
        if current.get(terminal_id) not in (None, TradingState.OFFLINE, state)
    ]
    if not changes:
        return
    await session.execute(
        TerminalStateChange.__table__.insert(),
        [
            {"terminal_id": terminal_id, "state": state, "previous": previous,
             "reason": reason, "at": now}
            for terminal_id, previous, state in changes
        ],
    )  # fmt: skip
    table = Terminal.__table__
    for state in {state for _, _, state in changes}:
        moved = [terminal_id for terminal_id, _, new in changes if new is state]
        await session.execute(
            update(table)
            .where(table.c.id.in_(moved))
            .values(trading_state=state, state_changed_at=now)
        )


async def fleet_counts(session: AsyncSession, caller: Account) -> dict[str, int]:
    """How many of the caller's terminals are in each state now."""
    statement = scoped(
        select(Terminal.trading_state, func.count(Terminal.id)).group_by(Terminal.trading_state),
        Terminal,
        caller,
    )
    counts = {state.value: 0 for state in TradingState}
    for state, count in (await session.execute(statement)).all():
        counts[TradingState(state).value] = count
    return counts


async def state_history(
    session: AsyncSession, caller: Account, since: datetime, limit: int = 10_000
) -> list[TerminalStateChange]:
    """State changes of the caller's terminals since ``since``, oldest first."""
    statement = (
        scoped(
            select(TerminalStateChange).where(TerminalStateChange.at >= since),
            TerminalStateChange,
            caller,
        )
        .order_by(TerminalStateChange.at)
        .limit(limit)
    )
    return list(await session.scalars(statement))

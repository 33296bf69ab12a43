"""The audit log service: record every change, read entries within one's subtree."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dm_server.db.models.account import Account
from dm_server.db.models.audit import AuditEntry
from dm_server.db.scope import scoped

#: Largest page of audit entries one request may ask for.
MAX_PAGE = 500


def record(
    session: AsyncSession,
    actor: Account | None,
    action: str,
    target_kind: str,
    target_id: object,
    **detail: object,
) -> AuditEntry:
    """Add an entry to the caller's transaction, so the change and its record commit
    together (or not at all)."""
    entry = AuditEntry(
        account_id=actor.id if actor is not None else None,
        actor=actor.username if actor is not None else "system",
        action=action,
        target_kind=target_kind,
        target_id=str(target_id),
        detail={k: _jsonable(v) for k, v in detail.items()},
    )
    session.add(entry)
    return entry


async def list_entries(
    session: AsyncSession,
    caller: Account,
    *,
    action_prefix: str = "",
    target_kind: str = "",
    limit: int = 100,
    offset: int = 0,
) -> Sequence[AuditEntry]:
    """Newest first; the admin reads everything, a dealer what its subtree did."""
    statement = scoped(select(AuditEntry), AuditEntry, caller)
    if action_prefix:
        statement = statement.where(AuditEntry.action.startswith(action_prefix, autoescape=True))
    if target_kind:
        statement = statement.where(AuditEntry.target_kind == target_kind)
    statement = statement.order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    statement = statement.limit(max(1, min(limit, MAX_PAGE))).offset(max(0, offset))
    return (await session.scalars(statement)).all()


def _jsonable(value: object) -> object:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)

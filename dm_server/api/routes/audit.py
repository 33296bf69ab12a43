"""``/api/v1/audit``: who changed what; the admin reads all, a dealer its subtree's."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from dm_server.api.deps import CurrentAccount, Session
from dm_server.db.models.account import Role
from dm_server.errors import N_, Forbidden
from dm_server.services import audit

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


class AuditOut(BaseModel):
    id: int
    at: datetime
    account_id: int | None
    actor: str
    action: str
    target_kind: str
    target_id: str
    detail: dict[str, Any]


@router.get("", response_model=list[AuditOut])
async def list_audit(
    caller: CurrentAccount,
    session: Session,
    action: str = "",
    target_kind: str = "",
    limit: Annotated[int, Query(ge=1, le=audit.MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[AuditOut]:
    if caller.role is Role.OWNER:
        raise Forbidden(N_("the audit log is for dealers and the administrator"))
    entries = await audit.list_entries(
        session,
        caller,
        action_prefix=action,
        target_kind=target_kind,
        limit=limit,
        offset=offset,
    )
    return [
        AuditOut(
            id=e.id,
            at=e.at,
            account_id=e.account_id,
            actor=e.actor,
            action=e.action,
            target_kind=e.target_kind,
            target_id=e.target_id,
            detail=e.detail,
        )
        for e in entries
    ]

"""Live updates by server-sent events: every couple of seconds, what changed in the chosen
subtree (fleet counts, new events, a terminal's state, values and licence report).

Polling the database keeps this correct whichever process wrote the change (the CoAP side,
another server node); the stream ends after a while and the browser's EventSource
reconnects by itself, so a stream never outlives a changed password or a disabled account
for long.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from dashboard import i18n, vocabulary
from dashboard.web import Page, page, password_fingerprint
from dm_server.db.base import utcnow
from dm_server.db.models.account import Account
from dm_server.db.models.terminal import TradingState
from dm_server.errors import NotFound
from dm_server.services import accounts, events, licensing, terminals
from dm_server.services import state as fleet_state

router = APIRouter(include_in_schema=False)

TICK_S = 2.0
#: A stream lasts this many ticks, then the browser reconnects (and is re-authenticated).
MAX_TICKS = 150
RECONNECT_MS = 2000
EVENT_LIMIT = 10
#: State changes looked at per tick (the terminal list updates those rows).
STATE_CHANGE_LIMIT = 500


@router.get("/live")
async def live(
    request: Request,
    p: Annotated[Page, Depends(page)],
    terminal: str = "",
    ticks: Annotated[int, Query(ge=1, le=MAX_TICKS)] = MAX_TICKS,
) -> StreamingResponse:
    if terminal:
        await terminals.get_terminal(p.session, p.account, terminal)  # 404 if not visible
    core = request.app.state.core
    # The request's session would otherwise hold a database connection for the whole
    # stream (FastAPI closes yield dependencies after the response); each tick opens its own.
    await p.session.close()
    stream = _updates(request, core.db, p.account.id, password_fingerprint(p.account),
                      p.scope.id, terminal, i18n.current_locale.get(), ticks)
    return StreamingResponse(
        stream, media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _updates(
    request: Request, database: Any, account_id: int, fingerprint: str, scope_id: int,
    endpoint: str, locale: str, ticks: int,
) -> AsyncIterator[bytes]:
    i18n.current_locale.set(locale)
    yield f"retry: {RECONNECT_MS}\n\n".encode()
    last_event_id: int | None = None
    since: datetime = utcnow()
    for _tick in range(ticks):
        if await request.is_disconnected():
            return
        now = utcnow()
        async with database.session() as session:
            account = await session.get(Account, account_id)
            if account is None or account.disabled or password_fingerprint(account) != fingerprint:
                return
            try:
                scope = await accounts.get_account(session, account, scope_id)
            except NotFound:
                return
            update, last_event_id = await _snapshot(
                session, account, scope, endpoint, since, last_event_id
            )
        since = now
        yield f"event: update\ndata: {json.dumps(update, default=str)}\n\n".encode()
        await asyncio.sleep(TICK_S)


async def _snapshot(
    session: Any, account: Account, scope: Account, endpoint: str, since: datetime,
    last_event_id: int | None,
) -> tuple[dict[str, Any], int | None]:
    update: dict[str, Any] = {"counts": await fleet_state.fleet_counts(session, scope)}
    changes = await fleet_state.state_history(session, scope, since, limit=STATE_CHANGE_LIMIT)
    latest = {change.terminal_id: change.state for change in changes}  # oldest first
    if latest:
        names = await terminals.endpoints_by_id(session, account, set(latest))
        update["states"] = [
            {"endpoint": names[tid], "state": TradingState(state).value,
             "label": i18n.gettext(TradingState(state).value)}
            for tid, state in latest.items() if tid in names
        ]
    terminal = None
    if endpoint:
        terminal = await terminals.get_terminal(session, account, endpoint)
        update["states"] = [{
            "endpoint": terminal.endpoint, "state": terminal.trading_state.value,
            "label": i18n.gettext(terminal.trading_state.value),
        }]
        update["last_seen"] = i18n.format_when(terminal.last_seen_at)
        await licensing.sync_report_from_values(session, terminal)
        detail = await terminals.terminal_detail(session, terminal)
        update["values"] = [
            {"path": v.path, "value": str(v.value)}
            for v in detail["values"] if v.updated_at and v.updated_at >= since
        ]
        update["licences"] = [
            {"uid": lic.licence_uid, "reported": i18n.gettext(lic.reported_state)}
            for lic, _t in await licensing.list_licences(session, account, endpoint=endpoint,
                                                          limit=5)
            if lic.reported_state
        ]
    _total, recent = await events.list_events(
        session, account if terminal else scope, terminal, limit=EVENT_LIMIT
    )
    fresh = [e for e in recent if last_event_id is not None and e.id > last_event_id]
    if recent:
        last_event_id = max(last_event_id or 0, max(e.id for e in recent))
    elif last_event_id is None:
        last_event_id = 0
    if fresh:
        names = await terminals.endpoints_by_id(session, account, {e.terminal_id for e in fresh})
        update["events"] = [
            {
                "time": i18n.format_when(e.received_at, "short"),
                "endpoint": names.get(e.terminal_id, ""),
                "kind": vocabulary.term(e.kind),
                "amount": i18n.format_money(e.amount, e.currency) if e.amount is not None else "",
            }
            for e in sorted(fresh, key=lambda e: e.id)
        ]
    return update, last_event_id

"""Events from terminals (object 26243 POS Event), stored once per event id.

A Send carries the records of one or more event instances; a terminal that did not get
our 2.04 re-sends them with the same Event ID, so duplicates are skipped, never stored
twice. Other records in the same Send are kept as last known values.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dm_server.db.base import utcnow
from dm_server.db.batch import upsert
from dm_server.db.models import Account, Event, Terminal
from dm_server.db.scope import scoped
from dm_server.errors import InvalidInput
from dm_server.services.values import value_to_json
from lwm2m_core.codec.records import Record
from lwm2m_core.model import ObjectModelRepository
from lwm2m_core.path import LwM2mPath

log = logging.getLogger(__name__)

POS_EVENT_OBJECT = 26243
#: Resource ids of object 26243 (object_defs/26243.xml).
EVENT_ID, EVENT_TYPE, EVENT_TIME, EVENT_AMOUNT, EVENT_CURRENCY = 0, 1, 2, 3, 4
MAX_PAGE_SIZE = 500


def _event_fields(resources: dict[int, object], model: ObjectModelRepository) -> dict[str, Any]:
    obj = model.get_object(POS_EVENT_OBJECT) if POS_EVENT_OBJECT in model else None
    data: dict[str, Any] = {}
    for rid, value in sorted(resources.items()):
        name = obj.resources[rid].name if obj is not None and rid in obj.resources else str(rid)
        data[name] = value_to_json(value)  # type: ignore[arg-type]
    return data


def events_from_records(
    records: list[Record], model: ObjectModelRepository
) -> tuple[list[dict[str, Any]], list[Record]]:
    """Split records into event rows (one per 26243 instance) and the other records."""
    instances: dict[int, dict[int, object]] = {}
    others: list[Record] = []
    for record in records:
        path = record.path
        if path.object_id == POS_EVENT_OBJECT and path.depth == 3:
            assert path.object_instance_id is not None and path.resource_id is not None
            instances.setdefault(path.object_instance_id, {})[path.resource_id] = record.value
        else:
            others.append(record)
    events = []
    for iid, resources in sorted(instances.items()):
        uid = resources.get(EVENT_ID)
        if not isinstance(uid, str) or not uid:
            raise InvalidInput(f"/{POS_EVENT_OBJECT}/{iid}: an event needs its Event ID (/0)")
        amount = resources.get(EVENT_AMOUNT)
        occurred = resources.get(EVENT_TIME)
        currency = resources.get(EVENT_CURRENCY)
        events.append(
            {
                "event_uid": uid[:64],
                "kind": str(resources.get(EVENT_TYPE, ""))[:32],
                "amount": amount if isinstance(amount, int) else None,
                "currency": currency[:3] if isinstance(currency, str) else "",
                "occurred_at": occurred if isinstance(occurred, datetime) else None,
                "data": _event_fields(resources, model),
            }
        )
    return events, others


async def store_events(
    session: AsyncSession, terminal: Terminal, events: list[dict[str, Any]], source: str
) -> int:
    """Insert the events not stored before; returns how many were new."""
    if not events:
        return 0
    uids = {e["event_uid"] for e in events}
    existing = set(
        await session.scalars(
            select(Event.event_uid).where(
                Event.terminal_id == terminal.id, Event.event_uid.in_(uids)
            )
        )
    )
    new = 0
    for event in events:
        if event["event_uid"] in existing:
            continue
        existing.add(event["event_uid"])
        session.add(Event(terminal_id=terminal.id, source=source, **event))
        new += 1
    if new < len(events):
        log.info("%s: %d repeated event(s) skipped", terminal.endpoint, len(events) - new)
    return new


async def store_sent_events(
    session: AsyncSession, sends: list[tuple[int, list[dict[str, Any]]]], source: str = "send"
) -> list[int]:
    """Every event of many Sends, ``(terminal id, events)`` each, in one bulk INSERT that
    skips Event IDs already stored (``ON CONFLICT DO NOTHING`` on the unique pair): no
    look-up first, no ORM objects. Returns the number of events each Send carried."""
    now = utcnow()
    rows = [
        {**event, "terminal_id": terminal_id, "source": source, "received_at": now}
        for terminal_id, found in sends
        for event in found
    ]
    if rows:
        statement = upsert(session, Event.__table__, ("terminal_id", "event_uid"))
        await session.execute(statement, rows)
    return [len(found) for _, found in sends]


async def list_events(
    session: AsyncSession,
    caller: Account,
    terminal: Terminal | None = None,
    kind: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[int, list[Event]]:
    from sqlalchemy import func

    if not 1 <= limit <= MAX_PAGE_SIZE or offset < 0:
        raise InvalidInput(f"limit must be 1-{MAX_PAGE_SIZE} and offset >= 0")
    statement = scoped(select(Event), Event, caller)
    if terminal is not None:
        statement = statement.where(Event.terminal_id == terminal.id)
    if kind:
        statement = statement.where(Event.kind == kind)
    total = await session.scalar(select(func.count()).select_from(statement.subquery())) or 0
    rows = await session.scalars(
        statement.order_by(Event.received_at.desc(), Event.id.desc()).offset(offset).limit(limit)
    )
    return total, list(rows)


def event_path(instance_id: int) -> LwM2mPath:
    return LwM2mPath(POS_EVENT_OBJECT, instance_id)

"""Last known resource values: flattening value trees into rows, and the JSON bodies.

The JSON form of values is the core's (:mod:`lwm2m_core.codec.jsonform`); this module
only decides how an API body maps to that form and keeps the ``resource_values`` rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from dm_server.db.base import utcnow
from dm_server.db.batch import upsert
from dm_server.db.models import ResourceValue, Terminal
from dm_server.errors import N_, InvalidInput
from dm_server.services import state
from lwm2m_core.codec import jsonform
from lwm2m_core.errors import LwM2MError
from lwm2m_core.model import ObjectModelRepository
from lwm2m_core.node import (
    LwM2mMultipleResource,
    LwM2mNode,
    LwM2mObject,
    LwM2mObjectInstance,
    LwM2mResourceInstance,
    LwM2mSingleResource,
    Value,
)
from lwm2m_core.path import LwM2mPath

#: /3/0/3 Device Firmware Version, copied onto the terminal for fleet filters.
FIRMWARE_VERSION_PATH = "/3/0/3"

value_to_json = jsonform.value_to_json


def leaves(node: LwM2mNode, path: LwM2mPath) -> Iterator[tuple[LwM2mPath, Value]]:
    """Every (resource or resource-instance path, value) in ``node`` sitting at ``path``."""
    if isinstance(node, (LwM2mSingleResource, LwM2mResourceInstance)):
        yield path, node.value
    elif isinstance(node, LwM2mMultipleResource):
        for i, v in node.instances.items():
            yield path.child(i), v
    elif isinstance(node, LwM2mObjectInstance):
        for r, res in node.resources.items():
            yield from leaves(res, path.child(r))
    elif isinstance(node, LwM2mObject):
        for i, inst in node.instances.items():
            yield from leaves(inst, path.child(i))


def node_json(node: LwM2mNode, path: LwM2mPath) -> Any:
    """The API's value: the core JSON form without its ``path`` wrapper."""
    form = jsonform.node_to_json(node, path)
    for key in ("value", "resources", "instances"):
        if key in form:
            return form[key]
    return None


def node_from_body(value: Any, path: LwM2mPath, model: ObjectModelRepository) -> LwM2mNode:
    """The node for an API body's ``value`` at ``path`` (InvalidInput naming the path)."""
    try:
        if path.depth in (1,):
            document = {"instances": value}
        elif path.depth == 2:
            document = {"resources": value}
        elif path.depth == 3 and model.get_resource(path).multiple:
            document = {"instances": value}
        elif path.depth >= 3:
            document = {"value": value}
        else:
            raise InvalidInput(N_("a value needs an object, instance or resource path"))
        return jsonform.node_from_json(document, model, path)
    except LwM2MError as exc:
        raise InvalidInput(str(exc)) from None


async def store_values(
    session: AsyncSession,
    batch: Mapping[int, Iterable[tuple[LwM2mPath, Value]]],
    source: str,
    now: datetime | None = None,
) -> int:
    """Upsert the last known values of many terminals (terminal id -> values) in one
    statement, and follow what they report: trading state and firmware version.

    Core statements, not ORM objects: notifications of a whole fleet arrive here in
    batches, and one look-up per terminal was most of a Register's cost. Terminals gone
    from the database meanwhile are skipped. Returns the number of values written.
    """
    now = now or utcnow()
    latest = {
        terminal_id: {str(path): value_to_json(value) for path, value in items}
        for terminal_id, items in batch.items()
    }
    latest = {terminal_id: found for terminal_id, found in latest.items() if found}
    if not latest:
        return 0
    current = {
        row.id: row.trading_state
        for row in await session.execute(
            select(Terminal.id, Terminal.trading_state).where(Terminal.id.in_(list(latest)))
        )
    }
    rows = [
        {"terminal_id": terminal_id, "path": path, "value": value, "source": source,
         "updated_at": now}
        for terminal_id, found in latest.items() if terminal_id in current
        for path, value in found.items()
    ]  # fmt: skip
    if not rows:
        return 0
    await session.execute(
        upsert(
            session, ResourceValue.__table__, ("terminal_id", "path"),
            ("value", "source", "updated_at"),
        ),
        rows,
    )  # fmt: skip
    reported = {
        terminal_id: state.state_from_report(found[state.TRADING_STATE_PATH])
        for terminal_id, found in latest.items()
        if state.TRADING_STATE_PATH in found and terminal_id in current
    }
    if reported:
        await state.follow_reports(
            session, current, reported, f"{source} {state.TRADING_STATE_PATH}", now
        )
    firmware = [
        {"terminal": terminal_id, "version": found[FIRMWARE_VERSION_PATH][:64]}
        for terminal_id, found in latest.items()
        if isinstance(found.get(FIRMWARE_VERSION_PATH), str) and terminal_id in current
    ]
    if firmware:
        table = Terminal.__table__
        await session.execute(
            update(table)
            .where(table.c.id == bindparam("terminal"))
            .values(firmware_version=bindparam("version")),
            firmware,
        )
    return len(rows)

"""``/api/v1/terminals``: provisioning, the fleet list, one terminal, its events."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Request, status
from pydantic import BaseModel, Field

from dm_server.api.deps import Core, CurrentAccount, Session
from dm_server.db.models import Event, Terminal
from dm_server.db.models.terminal import SecurityMode, TradingState
from dm_server.errors import N_, InvalidInput
from dm_server.services import events, state, terminals

router = APIRouter(prefix="/api/v1", tags=["terminals"])

#: Largest CSV accepted by the bulk import.
MAX_CSV_BYTES = 5 * 1024 * 1024


class TerminalOut(BaseModel):
    endpoint: str
    owner_id: int | None
    security_mode: str
    psk_identity: str | None
    trading_state: str
    state_changed_at: datetime
    firmware_version: str | None
    last_seen_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, t: Terminal) -> TerminalOut:
        return cls(
            endpoint=t.endpoint,
            owner_id=t.owner_id,
            security_mode=t.security_mode.value,
            psk_identity=t.psk_identity,
            trading_state=t.trading_state.value,
            state_changed_at=t.state_changed_at,
            firmware_version=t.firmware_version,
            last_seen_at=t.last_seen_at,
            created_at=t.created_at,
        )


class TerminalPage(BaseModel):
    total: int
    offset: int
    limit: int
    items: list[TerminalOut]


class ProvisionIn(BaseModel):
    endpoint: str
    security_mode: Literal["psk", "nosec"] = "psk"
    psk_identity: str | None = Field(None, description="default: the endpoint name")
    psk_key_hex: str | None = Field(None, description="default: a random 128-bit key")
    owner_id: int | None = None


class ProvisionedOut(TerminalOut):
    #: Shown once, at provisioning, so it can be put on the terminal.
    psk_key_hex: str | None = None


class RegistrationOut(BaseModel):
    location: str
    lifetime_s: int
    lwm2m_version: str
    binding: str
    queue_mode: bool
    transport: str
    address: str
    content_format: int | None
    registered_at: datetime
    updated_at: datetime
    expires_at: datetime
    ended_at: datetime | None
    end_reason: str
    objects: list[dict[str, Any]]


class ValueOut(BaseModel):
    path: str
    value: Any
    source: str
    updated_at: datetime


class TerminalDetail(TerminalOut):
    registration: RegistrationOut | None
    values: list[ValueOut]
    observations: list[str]


class EventOut(BaseModel):
    id: int
    endpoint: str
    event_uid: str
    kind: str
    amount: int | None
    currency: str
    occurred_at: datetime | None
    received_at: datetime
    source: str
    data: dict[str, Any]


class EventPage(BaseModel):
    total: int
    offset: int
    limit: int
    items: list[EventOut]


def _provision_request(item: ProvisionIn) -> terminals.ProvisionRequest:
    try:
        key = bytes.fromhex(item.psk_key_hex) if item.psk_key_hex else None
    except ValueError:
        raise InvalidInput(
            N_("%(endpoint)s: psk_key_hex is not hexadecimal"), endpoint=item.endpoint
        ) from None
    return terminals.ProvisionRequest(
        item.endpoint, SecurityMode(item.security_mode), item.psk_identity, key, item.owner_id
    )


def _provisioned(t: Terminal) -> ProvisionedOut:
    out = ProvisionedOut(**TerminalOut.of(t).model_dump())
    out.psk_key_hex = t.psk_key.hex() if t.psk_key else None
    return out


@router.post(
    "/terminals",
    status_code=status.HTTP_201_CREATED,
    response_model=list[ProvisionedOut],
    summary="Provision one terminal or a list (all or nothing)",
)
async def provision(
    body: Annotated[ProvisionIn | list[ProvisionIn], Body()],
    caller: CurrentAccount,
    session: Session,
    core: Core,
) -> list[ProvisionedOut]:
    items = body if isinstance(body, list) else [body]
    created = await terminals.provision(session, caller, [_provision_request(i) for i in items])
    await session.commit()
    core.lwm2m.credentials_changed(created)
    return [_provisioned(t) for t in created]


@router.post(
    "/terminals/import",
    status_code=status.HTTP_201_CREATED,
    response_model=list[ProvisionedOut],
    summary="Provision from CSV (endpoint,security_mode,psk_identity,psk_key_hex,owner_id)",
)
async def import_csv(
    request: Request, caller: CurrentAccount, session: Session, core: Core
) -> list[ProvisionedOut]:
    raw = await request.body()
    if len(raw) > MAX_CSV_BYTES:
        raise InvalidInput(
            N_("CSV larger than %(mb)s MB: split it"), mb=MAX_CSV_BYTES // 1024 // 1024
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(N_("CSV must be UTF-8 text")) from None
    created = await terminals.provision(session, caller, terminals.parse_csv(text))
    await session.commit()
    core.lwm2m.credentials_changed(created)
    return [_provisioned(t) for t in created]


@router.get("/terminals", response_model=TerminalPage)
async def list_terminals(
    caller: CurrentAccount,
    session: Session,
    state_: Annotated[TradingState | None, Query(alias="state")] = None,
    owner: int | None = None,
    firmware: Annotated[str | None, Query(max_length=64)] = None,
    q: Annotated[
        str | None, Query(max_length=128, description="text in endpoint or identity")
    ] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=terminals.MAX_PAGE_SIZE)] = 50,
) -> TerminalPage:
    total, rows = await terminals.list_terminals(
        session, caller, terminals.TerminalFilter(state_, owner, firmware, q, offset, limit)
    )
    return TerminalPage(
        total=total, offset=offset, limit=limit, items=[TerminalOut.of(t) for t in rows]
    )


@router.get("/fleet/state", summary="How many terminals are Running, Idle, Offline")
async def fleet_state(caller: CurrentAccount, session: Session) -> dict[str, int]:
    return await state.fleet_counts(session, caller)


@router.get("/terminals/{endpoint}", response_model=TerminalDetail)
async def get_terminal(
    endpoint: str, caller: CurrentAccount, session: Session, core: Core
) -> TerminalDetail:
    terminal = await terminals.get_terminal(session, caller, endpoint)
    detail = await terminals.terminal_detail(session, terminal)
    registration = detail["registration"]
    return TerminalDetail(
        **TerminalOut.of(terminal).model_dump(),
        registration=None
        if registration is None
        else RegistrationOut(
            location=f"/rd/{registration.location_id}",
            lifetime_s=registration.lifetime_s,
            lwm2m_version=registration.lwm2m_version,
            binding=registration.binding,
            queue_mode=registration.queue_mode,
            transport=registration.scheme,
            address=registration.address,
            content_format=registration.content_format,
            registered_at=registration.registered_at,
            updated_at=registration.updated_at,
            expires_at=registration.expires_at,
            ended_at=registration.ended_at,
            end_reason=registration.end_reason,
            objects=list(registration.objects),
        ),
        values=[
            ValueOut(path=v.path, value=v.value, source=v.source, updated_at=v.updated_at)
            for v in detail["values"]
        ],
        observations=core.lwm2m.tracker.live_paths(terminal.id),
    )


def _event_out(e: Event, endpoint: str) -> EventOut:
    return EventOut(
        id=e.id,
        endpoint=endpoint,
        event_uid=e.event_uid,
        kind=e.kind,
        amount=e.amount,
        currency=e.currency,
        occurred_at=e.occurred_at,
        received_at=e.received_at,
        source=e.source,
        data=e.data,
    )


@router.get("/terminals/{endpoint}/events", response_model=EventPage)
async def terminal_events(
    endpoint: str,
    caller: CurrentAccount,
    session: Session,
    kind: Annotated[str | None, Query(max_length=32)] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=events.MAX_PAGE_SIZE)] = 50,
) -> EventPage:
    terminal = await terminals.get_terminal(session, caller, endpoint)
    total, rows = await events.list_events(session, caller, terminal, kind, offset, limit)
    return EventPage(
        total=total, offset=offset, limit=limit, items=[_event_out(e, endpoint) for e in rows]
    )

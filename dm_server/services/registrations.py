"""The registration interface's bookkeeping (TS Core §6.2.1, §6.2.2, §6.2.3).

Register replaces any previous registration of the endpoint; Update refreshes lifetime,
binding and objects; De-register and lifetime expiry end it and mark the terminal
Offline. Who may register is decided here: a DTLS peer must have authenticated with the
PSK identity provisioned for the endpoint it names; plain CoAP is for endpoints
provisioned NoSec, or anyone when the development auto-accept switch is on.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy import update as update_statement
from sqlalchemy.ext.asyncio import AsyncSession

from dm_server.db.base import utcnow
from dm_server.db.batch import dialect_insert, upsert
from dm_server.db.models import QueuedOperation, Registration, Terminal
from dm_server.db.models.operation import OperationStatus
from dm_server.db.models.terminal import SecurityMode, TerminalStateChange, TradingState
from dm_server.errors import RegistrationRefused
from dm_server.services import state
from dm_server.services.terminals import ENDPOINT_PATTERN
from lwm2m_core.link import RegistrationObjects
from lwm2m_core.numbers import CoapCode

log = logging.getLogger(__name__)

#: LwM2M versions this server speaks (TS Core §6.2.1: else 4.12 Precondition Failed).
SUPPORTED_VERSIONS = ("1.0", "1.1", "1.2")
#: Binding modes (TS Transport §6.4): U, M, H, T, S, N, plus the 1.0 queue flag Q.
BINDING_LETTERS = frozenset("UMHTSNQ")
LOCATION_ID_BYTES = 6


@dataclass(frozen=True)
class Origin:
    """Where a registration-interface request came from."""

    scheme: str  # "coap" or "coaps"
    address: str  # host:port as aiocoap shows it
    psk_identity: str | None  # who completed the DTLS handshake


@dataclass(frozen=True)
class RegisterParams:
    endpoint: str
    lifetime_s: int
    lwm2m_version: str
    binding: str
    queue_mode: bool
    links_text: str
    objects: RegistrationObjects


def objects_json(objects: RegistrationObjects) -> list[dict[str, object]]:
    return [
        {"object_id": oid, "instances": list(iids), "version": objects.versions.get(oid)}
        for oid, iids in objects.objects.items()
    ]


def _announced_format(objects: RegistrationObjects) -> int | None:
    return objects.content_formats[0] if objects.content_formats else None


def check_binding(binding: str) -> tuple[str, bool]:
    """(binding, queue mode) from ``b=``; 1.0 clients say ``UQ``, 1.1 ones ``U`` + ``Q``."""
    if not binding or not set(binding) <= BINDING_LETTERS or len(binding) > 8:
        raise RegistrationRefused(f"binding {binding!r:.20} is not valid", CoapCode.BAD_REQUEST)
    return binding, "Q" in binding


def check_lifetime(lifetime: int, minimum: int, maximum: int) -> int:
    if not minimum <= lifetime <= maximum:
        raise RegistrationRefused(
            f"lifetime {lifetime} s is outside {minimum}..{maximum} s", CoapCode.BAD_REQUEST
        )
    return lifetime


def check_version(version: str) -> str:
    if version not in SUPPORTED_VERSIONS:
        raise RegistrationRefused(
            f"LwM2M version {version!r:.10} is not supported ({', '.join(SUPPORTED_VERSIONS)})",
            CoapCode.PRECONDITION_FAILED,
        )
    return version


def authorise(
    terminal: Terminal | None, endpoint: str, origin: Origin, dev_auto_accept: bool
) -> None:
    """Refuse with 4.03 unless ``origin`` may act for ``endpoint``."""
    if origin.scheme == "coaps":
        if (
            terminal is None
            or terminal.security_mode is not SecurityMode.PSK
            or terminal.psk_identity != origin.psk_identity
        ):
            log.warning(
                "refused %s over DTLS: PSK identity %r is not the one provisioned for it",
                endpoint,
                origin.psk_identity,
            )
            raise RegistrationRefused(
                "this PSK identity is not provisioned for the endpoint", CoapCode.FORBIDDEN
            )
        return
    if terminal is not None and terminal.security_mode is SecurityMode.NOSEC:
        return
    if dev_auto_accept:
        return
    log.warning(
        "refused %s over plain CoAP from %s: not provisioned NoSec", endpoint, origin.address
    )
    raise RegistrationRefused(
        "this endpoint must register over DTLS with its PSK (or be provisioned NoSec)",
        CoapCode.FORBIDDEN,
    )


@dataclass(frozen=True)
class Registered:
    """What a Register wrote (the bulk path answers with this, not ORM objects)."""

    terminal_id: int
    endpoint: str
    location_id: str
    lifetime_s: int
    lwm2m_version: str
    binding: str
    queue_mode: bool
    scheme: str
    address: str
    content_format: int | None
    objects: list[dict[str, object]]


async def register_many(
    session: AsyncSession,
    requests: list[tuple[RegisterParams, Origin]],
    *,
    dev_auto_accept: bool,
    now: datetime | None = None,
) -> list[Registered | RegistrationRefused]:
    """Many Registers in a few Core statements: one SELECT of the named terminals, one
    INSERT of the auto-accepted new ones, one upsert of the registrations (on the unique
    terminal id), one INSERT of the state changes, one UPDATE of the terminals coming
    online and one of those already online. Each
    request is answered with what was written or with its refusal (nothing written for
    it). A terminal named twice in one batch keeps the later registration."""
    now = now or utcnow()
    answers: list[Registered | RegistrationRefused | None] = [None] * len(requests)
    names = {params.endpoint for params, _ in requests}
    known = {
        row.endpoint: row
        for row in await session.execute(
            select(
                Terminal.id,
                Terminal.endpoint,
                Terminal.security_mode,
                Terminal.psk_identity,
                Terminal.trading_state,
            ).where(Terminal.endpoint.in_(names))
        )
    }
    accepted: list[int] = []
    for index, (params, origin) in enumerate(requests):
        try:
            if not ENDPOINT_PATTERN.fullmatch(params.endpoint):
                raise RegistrationRefused(
                    f"endpoint name {params.endpoint!r:.60} is not valid", CoapCode.BAD_REQUEST
                )
            authorise(known.get(params.endpoint), params.endpoint, origin, dev_auto_accept)  # type: ignore[arg-type]
        except RegistrationRefused as exc:
            answers[index] = exc
            continue
        accepted.append(index)
    new_names = sorted({requests[i][0].endpoint for i in accepted} - set(known))
    if new_names:
        created = await session.execute(
            dialect_insert(session, Terminal.__table__).returning(
                Terminal.__table__.c.id, Terminal.__table__.c.endpoint
            ),
            [
                {
                    "endpoint": name,
                    "security_mode": SecurityMode.NOSEC,
                    "auto_accepted": True,
                    "trading_state": TradingState.OFFLINE,
                    "state_changed_at": now,
                    "created_at": now,
                }
                for name in new_names
            ],
        )
        ids = {endpoint: terminal_id for terminal_id, endpoint in created}
        for name in new_names:
            log.info("development auto-accept: created terminal %s", name)
        offline = {name: (ids[name], TradingState.OFFLINE) for name in new_names}
    else:
        offline = {}
    states = {row.endpoint: (row.id, row.trading_state) for row in known.values()} | offline
    rows: dict[int, dict[str, Any]] = {}
    for index in accepted:
        params, origin = requests[index]
        terminal_id = states[params.endpoint][0]
        row = {
            "terminal_id": terminal_id,
            "location_id": secrets.token_hex(LOCATION_ID_BYTES),
            "lifetime_s": params.lifetime_s,
            "lwm2m_version": params.lwm2m_version,
            "binding": params.binding,
            "queue_mode": params.queue_mode,
            "scheme": origin.scheme,
            "address": origin.address,
            "links_text": params.links_text,
            "objects": objects_json(params.objects),
            "content_format": _announced_format(params.objects),
            "registered_at": now,
            "updated_at": now,
            "expires_at": now + timedelta(seconds=params.lifetime_s),
            "ended_at": None,
            "end_reason": "",
        }
        rows[terminal_id] = row
        answers[index] = Registered(
            terminal_id,
            params.endpoint,
            row["location_id"],
            params.lifetime_s,
            params.lwm2m_version,
            params.binding,
            params.queue_mode,
            origin.scheme,
            origin.address,
            row["content_format"],
            row["objects"],
        )
    if rows:
        columns = tuple(name for name in next(iter(rows.values())) if name != "terminal_id")
        await session.execute(
            upsert(session, Registration.__table__, ("terminal_id",), columns),
            list(rows.values()),
        )
        waking = [
            terminal_id
            for terminal_id, trading in states.values()
            if terminal_id in rows and trading is TradingState.OFFLINE
        ]
        terminals = Terminal.__table__
        if waking:
            await session.execute(
                TerminalStateChange.__table__.insert(),
                [
                    {
                        "terminal_id": terminal_id,
                        "state": TradingState.IDLE,
                        "previous": TradingState.OFFLINE,
                        "reason": "registered",
                        "at": now,
                    }
                    for terminal_id in waking
                ],
            )
            await session.execute(
                update_statement(terminals)
                .where(terminals.c.id.in_(waking))
                .values(trading_state=TradingState.IDLE, state_changed_at=now, last_seen_at=now)
            )
        awake = set(rows).difference(waking)
        if awake:
            await session.execute(
                update_statement(terminals)
                .where(terminals.c.id.in_(awake))
                .values(last_seen_at=now)
            )
    return [answer for answer in answers if answer is not None]


async def active_registration(
    session: AsyncSession, location_id: str
) -> tuple[Terminal, Registration]:
    with session.no_autoflush:
        row = await _active_row(session, location_id)
    if row is None:
        raise RegistrationRefused(f"no registration /rd/{location_id:.40}", CoapCode.NOT_FOUND)
    return row[0], row[1]


async def _active_row(session: AsyncSession, location_id: str) -> Any:
    return (
        await session.execute(
            select(Terminal, Registration)
            .join(Registration, Registration.terminal_id == Terminal.id)
            .where(Registration.location_id == location_id, Registration.ended_at.is_(None))
        )
    ).first()


def _check_same_peer(security_mode: SecurityMode, psk_identity: str | None, origin: Origin) -> None:
    """Only the authenticated terminal may update or end its registration."""
    if security_mode is SecurityMode.PSK and (
        origin.scheme != "coaps" or origin.psk_identity != psk_identity
    ):
        raise RegistrationRefused(
            "this registration belongs to another DTLS identity", CoapCode.FORBIDDEN
        )


@dataclass(frozen=True)
class UpdateParams:
    """An Update as received (``binding``: already checked, as (binding, queue mode))."""

    location_id: str
    lifetime_s: int | None
    binding: tuple[str, bool] | None
    links_text: str | None
    objects: RegistrationObjects | None


@dataclass(frozen=True)
class Updated:
    """What an Update left in place (the bulk path answers with this, not ORM objects)."""

    terminal_id: int
    endpoint: str
    lwm2m_version: str
    scheme: str
    address: str
    content_format: int | None
    queue_mode: bool


def _registration_update(*columns: str) -> Any:
    table = Registration.__table__
    return (
        update_statement(table)
        .where(table.c.id == bindparam("registration"))
        .values({name: bindparam(f"new_{name}") for name in columns})
    )


_REFRESH_COLUMNS = (
    "lifetime_s", "binding", "queue_mode", "scheme", "address", "updated_at", "expires_at"
)  # fmt: skip
_LINK_COLUMNS = ("links_text", "objects", "content_format")
#: One UPDATE for the Updates of a batch without a payload, one for those with new links.
_REFRESH = _registration_update(*_REFRESH_COLUMNS)
_REFRESH_WITH_LINKS = _registration_update(*_REFRESH_COLUMNS, *_LINK_COLUMNS)


async def update_many(
    session: AsyncSession,
    requests: list[tuple[UpdateParams, Origin]],
    now: datetime | None = None,
) -> list[Updated | RegistrationRefused]:
    """Many Updates in a few Core statements: one SELECT of the named registrations, one
    UPDATE of those (two when some carry new links), one UPDATE of the terminals' last
    seen time. Each request is answered with what it left in place or with its refusal
    (4.04 for no such registration, 4.03 for another DTLS identity), nothing written for
    it. A registration updated twice in one batch keeps the later values."""
    now = now or utcnow()
    current: dict[str, dict[str, Any]] = {
        row.location_id: dict(row._mapping)
        for row in await session.execute(
            select(
                Registration.id,
                Registration.location_id,
                Registration.lifetime_s,
                Registration.binding,
                Registration.queue_mode,
                Registration.lwm2m_version,
                Registration.content_format,
                Terminal.id.label("terminal_id"),
                Terminal.endpoint,
                Terminal.security_mode,
                Terminal.psk_identity,
            )
            .join(Terminal, Terminal.id == Registration.terminal_id)
            .where(
                Registration.location_id.in_({params.location_id for params, _ in requests}),
                Registration.ended_at.is_(None),
            )
        )
    }
    answers: list[Updated | RegistrationRefused] = []
    refreshed: list[dict[str, Any]] = []
    relinked: list[dict[str, Any]] = []
    for params, origin in requests:
        found = current.get(params.location_id)
        try:
            if found is None:
                raise RegistrationRefused(
                    f"no registration /rd/{params.location_id:.40}", CoapCode.NOT_FOUND
                )
            _check_same_peer(found["security_mode"], found["psk_identity"], origin)
        except RegistrationRefused as exc:
            answers.append(exc)
            continue
        if params.lifetime_s is not None:
            found["lifetime_s"] = params.lifetime_s
        if params.binding is not None:
            found["binding"], found["queue_mode"] = params.binding
        row = {
            "registration": found["id"],
            "new_lifetime_s": found["lifetime_s"],
            "new_binding": found["binding"],
            "new_queue_mode": found["queue_mode"],
            "new_scheme": origin.scheme,
            "new_address": origin.address,
            "new_updated_at": now,
            "new_expires_at": now + timedelta(seconds=found["lifetime_s"]),
        }
        if params.objects is not None and params.links_text is not None:
            found["content_format"] = _announced_format(params.objects) or found["content_format"]
            row["new_links_text"] = params.links_text
            row["new_objects"] = objects_json(params.objects)
            row["new_content_format"] = found["content_format"]
            relinked.append(row)
        else:
            refreshed.append(row)
        answers.append(
            Updated(
                found["terminal_id"],
                found["endpoint"],
                found["lwm2m_version"],
                origin.scheme,
                origin.address,
                found["content_format"],
                found["queue_mode"],
            )
        )
    if refreshed:
        await session.execute(_REFRESH, refreshed)
    if relinked:
        await session.execute(_REFRESH_WITH_LINKS, relinked)
    updated_terminals = {a.terminal_id for a in answers if isinstance(a, Updated)}
    if updated_terminals:
        terminals = Terminal.__table__
        await session.execute(
            update_statement(terminals)
            .where(terminals.c.id.in_(updated_terminals))
            .values(last_seen_at=now)
        )
    return answers


async def end(
    session: AsyncSession,
    terminal: Terminal,
    registration: Registration,
    reason: str,
    now: datetime | None = None,
) -> None:
    now = now or utcnow()
    registration.ended_at = now
    registration.end_reason = reason
    state.set_state(session, terminal, TradingState.OFFLINE, reason, now)


async def deregister(session: AsyncSession, location_id: str, origin: Origin) -> Terminal:
    terminal, registration = await active_registration(session, location_id)
    _check_same_peer(terminal.security_mode, terminal.psk_identity, origin)
    await end(session, terminal, registration, "deregistered")
    return terminal


async def expire_lapsed(session: AsyncSession, now: datetime | None = None) -> list[int]:
    """End every registration whose lifetime passed; returns the terminal ids."""
    now = now or utcnow()
    rows = (
        await session.execute(
            select(Terminal, Registration)
            .join(Registration, Registration.terminal_id == Terminal.id)
            .where(Registration.ended_at.is_(None), Registration.expires_at < now)
            .limit(1000)
        )
    ).all()
    for terminal, registration in rows:
        await end(session, terminal, registration, "lifetime expired", now)
    if rows:
        log.info("lifetime expired: %d terminal(s) now offline", len(rows))
    return [terminal.id for terminal, _ in rows]


async def expire_queued(session: AsyncSession, now: datetime | None = None) -> int:
    """Queued operations past their expiry get status ``expired``."""
    now = now or utcnow()
    lapsed = (
        await session.scalars(
            select(QueuedOperation)
            .where(
                QueuedOperation.status == OperationStatus.QUEUED, QueuedOperation.expires_at < now
            )
            .limit(1000)
        )
    ).all()
    for operation in lapsed:
        operation.status = OperationStatus.EXPIRED
        operation.finished_at = now
        operation.result = {
            "status": "expired",
            "message": "the terminal did not wake up before the operation expired",
        }
    return len(lapsed)

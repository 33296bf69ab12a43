"""Terminal provisioning and look-up: a terminal is known before it first registers."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from dm_server.db.models import Account, Registration, ResourceValue, Terminal
from dm_server.db.models.terminal import SecurityMode, TradingState
from dm_server.db.scope import scoped
from dm_server.errors import N_, Conflict, InvalidInput, NotFound
from dm_server.security import generate_psk
from dm_server.services import audit

#: Endpoint names: what LwM2M clients use in practice (URN-ish, IMEI, serials).
ENDPOINT_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+-]{0,127}")
#: PSK length accepted (TS Transport: at least 128 bits recommended; tinydtls max 64 B).
PSK_MIN_BYTES, PSK_MAX_BYTES = 8, 64
MAX_PAGE_SIZE = 500


@dataclass(frozen=True)
class ProvisionRequest:
    endpoint: str
    security_mode: SecurityMode = SecurityMode.PSK
    psk_identity: str | None = None
    #: Raw key; None with mode psk means "generate one".
    psk_key: bytes | None = None
    owner_id: int | None = None


def check_endpoint(endpoint: str) -> str:
    if not isinstance(endpoint, str) or not ENDPOINT_PATTERN.fullmatch(endpoint):
        raise InvalidInput(
            N_("endpoint name %(endpoint).80r is not valid: use 1-128 letters, digits and ._:@+-"),
            endpoint=endpoint,
        )
    return endpoint


def _validated(request: ProvisionRequest) -> ProvisionRequest:
    check_endpoint(request.endpoint)
    if request.security_mode is SecurityMode.NOSEC:
        if request.psk_identity or request.psk_key:
            raise InvalidInput(
                N_("%(endpoint)s: a NoSec terminal takes no PSK"), endpoint=request.endpoint
            )
        return request
    identity = request.psk_identity or request.endpoint
    if not 1 <= len(identity.encode()) <= 128:
        raise InvalidInput(
            N_("%(endpoint)s: PSK identity must be 1-128 bytes"), endpoint=request.endpoint
        )
    key = request.psk_key if request.psk_key is not None else generate_psk()
    if not PSK_MIN_BYTES <= len(key) <= PSK_MAX_BYTES:
        raise InvalidInput(
            N_("%(endpoint)s: PSK must be %(min)s-%(max)s bytes, got %(got)s"),
            endpoint=request.endpoint, min=PSK_MIN_BYTES, max=PSK_MAX_BYTES, got=len(key),
        )
    return ProvisionRequest(request.endpoint, SecurityMode.PSK, identity, key, request.owner_id)


async def _check_owner(session: AsyncSession, caller: Account, owner_id: int | None) -> None:
    if owner_id is None:
        return
    found = await session.scalar(
        scoped(select(Account.id).where(Account.id == owner_id), Account, caller)
    )
    if found is None:
        raise NotFound(
            N_("account %(id)s does not exist or is outside your accounts"), id=owner_id
        )


async def provision(
    session: AsyncSession, caller: Account, requests: list[ProvisionRequest]
) -> list[Terminal]:
    """Create terminals; all or nothing, so a bad CSV row leaves nothing half-imported."""
    checked = [_validated(r) for r in requests]
    seen: set[str] = set()
    for r in checked:
        if r.endpoint in seen:
            raise Conflict(N_("%(endpoint)s appears twice in the request"), endpoint=r.endpoint)
        seen.add(r.endpoint)
        await _check_owner(session, caller, r.owner_id)
    endpoints = [r.endpoint for r in checked]
    existing = (
        await session.scalars(select(Terminal.endpoint).where(Terminal.endpoint.in_(endpoints)))
    ).all()
    if existing:
        raise Conflict(
            N_("already provisioned: %(endpoints)s"), endpoints=", ".join(sorted(existing)[:10])
        )
    identities = [r.psk_identity for r in checked if r.psk_identity]
    if identities:
        taken = (
            await session.scalars(
                select(Terminal.psk_identity).where(Terminal.psk_identity.in_(identities))
            )
        ).all()
        if taken:
            raise Conflict(
                N_("PSK identity already used: %(identities)s"),
                identities=", ".join(sorted(taken)[:10]),
            )
    terminals = [
        Terminal(
            endpoint=r.endpoint,
            security_mode=r.security_mode,
            psk_identity=r.psk_identity,
            psk_key=r.psk_key,
            owner_id=r.owner_id,
            trading_state=TradingState.OFFLINE,
        )
        for r in checked
    ]
    session.add_all(terminals)
    for r in checked:
        audit.record(
            session,
            caller,
            "terminal.provision",
            "terminal",
            r.endpoint,
            security_mode=r.security_mode,
            owner_id=r.owner_id,
        )
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(
            N_("a terminal or PSK identity in the request is already provisioned")
        ) from None
    return terminals


CSV_COLUMNS = ("endpoint", "security_mode", "psk_identity", "psk_key_hex", "owner_id")


def parse_csv(text: str) -> list[ProvisionRequest]:
    """Rows ``endpoint,security_mode,psk_identity,psk_key_hex,owner_id`` (header required;
    only ``endpoint`` is mandatory). Errors name the line."""
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or "endpoint" not in reader.fieldnames:
        raise InvalidInput(
            N_("CSV needs a header line with at least: endpoint (%(columns)s)"),
            columns=", ".join(CSV_COLUMNS),
        )
    unknown = set(reader.fieldnames) - set(CSV_COLUMNS)
    if unknown:
        raise InvalidInput(
            N_("CSV has unknown columns: %(columns)s"), columns=", ".join(sorted(unknown))
        )
    requests = []
    for row in reader:
        line = reader.line_num
        try:
            mode = SecurityMode((row.get("security_mode") or "psk").strip().lower())
            key_hex = (row.get("psk_key_hex") or "").strip()
            owner = (row.get("owner_id") or "").strip()
            requests.append(
                ProvisionRequest(
                    endpoint=(row.get("endpoint") or "").strip(),
                    security_mode=mode,
                    psk_identity=(row.get("psk_identity") or "").strip() or None,
                    psk_key=bytes.fromhex(key_hex) if key_hex else None,
                    owner_id=int(owner) if owner else None,
                )
            )
        except ValueError as exc:
            raise InvalidInput(
                N_("CSV line %(line)s: %(problem)s"), line=line, problem=str(exc)
            ) from None
    if not requests:
        raise InvalidInput(N_("CSV has no rows"))
    return requests


async def get_terminal(session: AsyncSession, caller: Account, endpoint: str) -> Terminal:
    """The terminal if the caller may see it; NotFound otherwise (no hint it exists)."""
    terminal = await session.scalar(
        scoped(select(Terminal).where(Terminal.endpoint == endpoint), Terminal, caller)
    )
    if terminal is None:
        raise NotFound(N_("no terminal %(endpoint).80r among yours"), endpoint=endpoint)
    return terminal


@dataclass(frozen=True)
class TerminalFilter:
    state: TradingState | None = None
    owner_id: int | None = None
    firmware_version: str | None = None
    text: str | None = None
    offset: int = 0
    limit: int = 50


async def list_terminals(
    session: AsyncSession, caller: Account, f: TerminalFilter
) -> tuple[int, list[Terminal]]:
    """(total, one page of terminals) visible to the caller."""
    if not 1 <= f.limit <= MAX_PAGE_SIZE or f.offset < 0:
        raise InvalidInput(
            N_("limit must be 1-%(max)s and offset >= 0"), max=MAX_PAGE_SIZE
        )
    statement = scoped(select(Terminal), Terminal, caller)
    if f.state is not None:
        statement = statement.where(Terminal.trading_state == f.state)
    if f.owner_id is not None:
        statement = statement.where(Terminal.owner_id == f.owner_id)
    if f.firmware_version:
        statement = statement.where(Terminal.firmware_version == f.firmware_version)
    if f.text:
        like = f"%{f.text}%"
        statement = statement.where(
            or_(Terminal.endpoint.ilike(like), Terminal.psk_identity.ilike(like))
        )
    total = await session.scalar(select(func.count()).select_from(statement.subquery())) or 0
    rows = await session.scalars(
        statement.order_by(Terminal.endpoint).offset(f.offset).limit(f.limit)
    )
    return total, list(rows)


async def terminal_detail(session: AsyncSession, terminal: Terminal) -> dict[str, Any]:
    registration = await session.scalar(
        select(Registration).where(Registration.terminal_id == terminal.id)
    )
    values = (
        await session.scalars(
            select(ResourceValue)
            .where(ResourceValue.terminal_id == terminal.id)
            .order_by(ResourceValue.path)
        )
    ).all()
    return {"registration": registration, "values": values}


async def endpoints_by_id(
    session: AsyncSession, caller: Account, terminal_ids: set[int]
) -> dict[int, str]:
    """Endpoint names of the given terminals the caller may see (for event and licence lists)."""
    statement = scoped(select(Terminal.id, Terminal.endpoint), Terminal, caller).where(
        Terminal.id.in_(terminal_ids)
    )
    return {row[0]: row[1] for row in (await session.execute(statement)).all()}

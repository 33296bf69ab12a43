"""``/api/v1/licences``: issue, renew, revoke and transfer licences; sales lists.

The signed token is written to the terminal's POS License object (26242) right after the
change is committed, queued if the terminal is asleep or offline; the answer says which.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from dm_server.api.deps import CurrentAccount, Session
from dm_server.db.models.account import Account
from dm_server.db.models.licence import Licence, LicenceDelivery, LicenceLifecycle
from dm_server.db.models.terminal import Terminal
from dm_server.errors import OperationTimeout, TerminalUnreachable
from dm_server.services import licensing
from dm_server.services.licensing import LicenceAuthority, TokenWriter

router = APIRouter(prefix="/api/v1/licences", tags=["licences"])


class OperationsTokenWriter:
    """Writes tokens through the LwM2M side (``core.lwm2m.operations``), queueing for a
    sleeping or offline terminal, then reads back what the terminal concluded."""

    def __init__(self, operations: Any) -> None:
        self.operations = operations

    async def write_token(
        self, endpoint: str, token: str, requested_by: Account
    ) -> tuple[LicenceDelivery, str, int | None]:
        from dm_server.lwm2m.operations import OperationRequest

        write = OperationRequest.from_json(
            "write", {"path": licensing.LICENCE_TOKEN_PATH, "value": token}
        )
        try:
            result = await self.operations.perform(requested_by, endpoint, write, queue=True)
        except (TerminalUnreachable, OperationTimeout) as exc:
            return LicenceDelivery.FAILED, exc.message, None
        status = result.get("status")
        if status not in ("done", "queued"):
            return (
                LicenceDelivery.FAILED,
                f"{result.get('code', '')} {result.get('message', '')}".strip(),
                None,
            )
        queued = status == "queued"
        for path in (licensing.LICENCE_STATUS_PATH, licensing.LICENCE_ID_PATH):
            # Read back the terminal's verdict (queued behind the write if it sleeps).
            read = OperationRequest.from_json("read", {"path": path})
            try:
                await self.operations.perform(requested_by, endpoint, read, queue=queued)
            except (TerminalUnreachable, OperationTimeout):
                break  # written; its report arrives with the next read or notification
        if queued:
            operation_id = result.get("operation_id")
            return (
                LicenceDelivery.QUEUED,
                str(result.get("message", "")),
                int(operation_id) if isinstance(operation_id, int) else None,
            )
        return LicenceDelivery.WRITTEN, str(result.get("code", "")), None


def get_authority(request: Request) -> LicenceAuthority:
    """The signing key and price list, loaded (or created) on first use, kept per app."""
    authority = getattr(request.app.state, "licence_authority", None)
    if authority is None:
        authority = licensing.authority_from_settings(request.app.state.core.settings)
        request.app.state.licence_authority = authority
    return authority  # type: ignore[no-any-return]


def get_token_writer(request: Request) -> TokenWriter | None:
    """Writes through the LwM2M side when the server runs one (tests may run without)."""
    lwm2m = getattr(request.app.state.core, "lwm2m", None)
    return OperationsTokenWriter(lwm2m.operations) if lwm2m is not None else None


Authority = Annotated[LicenceAuthority, Depends(get_authority)]
Writer = Annotated["TokenWriter | None", Depends(get_token_writer)]


class LicenceOut(BaseModel):
    id: int
    licence_uid: str
    endpoint: str
    edition: str
    features: list[str]
    starts: datetime
    expires: datetime
    grace_days: int
    lifecycle: str
    delivery: str
    delivery_detail: str
    reported_state: str | None
    reported_at: datetime | None
    issued_at: datetime
    dealer_id: int | None
    price: int
    currency: str
    replaces_id: int | None
    token: str

    @classmethod
    def of(cls, licence: Licence, endpoint: str) -> LicenceOut:
        return cls(
            id=licence.id,
            licence_uid=licence.licence_uid,
            endpoint=endpoint,
            edition=licence.edition,
            features=list(licence.features),
            starts=licence.starts,
            expires=licence.expires,
            grace_days=licence.grace_days,
            lifecycle=licence.lifecycle.value,
            delivery=licence.delivery.value,
            delivery_detail=licence.delivery_detail,
            reported_state=licence.reported_state,
            reported_at=licence.reported_at,
            issued_at=licence.issued_at,
            dealer_id=licence.dealer_id,
            price=licence.price,
            currency=licence.currency,
            replaces_id=licence.replaces_id,
            token=licence.token,
        )


class IssueBody(BaseModel):
    endpoint: str
    edition: str
    features: list[str] = Field(default_factory=list)
    days: int = licensing.DAYS_PER_YEAR
    starts: datetime | None = None
    grace_days: int | None = None


class RenewBody(BaseModel):
    days: int = licensing.DAYS_PER_YEAR
    edition: str | None = None


class RevokeBody(BaseModel):
    reason: str = ""


class TransferBody(BaseModel):
    to_endpoint: str


class ForecastOut(BaseModel):
    days: int
    licences: int
    amount: int
    currency: str


class RankOut(BaseModel):
    dealer_id: int
    dealer: str
    active: int
    expiring_30: int


class PublicKeyOut(BaseModel):
    algorithm: str = "Ed25519"
    key_id: str
    public_key: str


@router.get("", response_model=list[LicenceOut])
async def list_licences(
    caller: CurrentAccount,
    session: Session,
    endpoint: str | None = None,
    lifecycle: LicenceLifecycle | None = None,
    expiring_within_days: Annotated[int | None, Query(ge=0, le=3650)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[LicenceOut]:
    rows = await licensing.list_licences(
        session,
        caller,
        endpoint=endpoint,
        lifecycle=lifecycle,
        expiring_within_days=expiring_within_days,
        limit=limit,
        offset=offset,
    )
    return [LicenceOut.of(licence, terminal.endpoint) for licence, terminal in rows]


@router.get("/forecast", response_model=list[ForecastOut])
async def forecast(
    caller: CurrentAccount, session: Session, authority: Authority
) -> list[ForecastOut]:
    return [
        ForecastOut(days=f.days, licences=f.licences, amount=f.amount, currency=f.currency)
        for f in await licensing.revenue_forecast(session, caller, authority)
    ]


@router.get("/ranking", response_model=list[RankOut])
async def ranking(caller: CurrentAccount, session: Session) -> list[RankOut]:
    return [
        RankOut(
            dealer_id=r.dealer.id,
            dealer=r.dealer.username,
            active=r.active,
            expiring_30=r.expiring_30,
        )
        for r in await licensing.dealer_ranking(session, caller)
    ]


@router.get("/public-key", response_model=PublicKeyOut)
async def public_key(_caller: CurrentAccount, authority: Authority) -> PublicKeyOut:
    from posfleet.licence_token import key_id

    return PublicKeyOut(
        key_id=key_id(authority.signing_key.public_key()), public_key=authority.public_key_text
    )


@router.get("/{licence_id}", response_model=LicenceOut)
async def get_licence(licence_id: int, caller: CurrentAccount, session: Session) -> LicenceOut:
    licence = await licensing.get_licence(session, caller, licence_id)
    return await _out(session, licence)


@router.post("", response_model=LicenceOut, status_code=201)
async def issue(
    body: IssueBody, caller: CurrentAccount, session: Session, authority: Authority, writer: Writer
) -> LicenceOut:
    licence = await licensing.issue(
        session,
        caller,
        authority,
        endpoint=body.endpoint,
        edition=body.edition,
        features=body.features,
        days=body.days,
        starts=body.starts,
        grace_days=body.grace_days,
    )
    return await _deliver(session, caller, licence, writer)


@router.post("/{licence_id}/renew", response_model=LicenceOut)
async def renew(
    licence_id: int,
    body: RenewBody,
    caller: CurrentAccount,
    session: Session,
    authority: Authority,
    writer: Writer,
) -> LicenceOut:
    licence = await licensing.renew(
        session, caller, authority, licence_id, days=body.days, edition=body.edition
    )
    return await _deliver(session, caller, licence, writer)


@router.post("/{licence_id}/revoke", response_model=LicenceOut)
async def revoke(
    licence_id: int, body: RevokeBody, caller: CurrentAccount, session: Session, writer: Writer
) -> LicenceOut:
    licence = await licensing.revoke(session, caller, licence_id, reason=body.reason)
    return await _deliver(session, caller, licence, writer)


@router.post("/{licence_id}/transfer", response_model=LicenceOut)
async def transfer(
    licence_id: int,
    body: TransferBody,
    caller: CurrentAccount,
    session: Session,
    authority: Authority,
    writer: Writer,
) -> LicenceOut:
    old, new = await licensing.transfer(
        session, caller, authority, licence_id, to_endpoint=body.to_endpoint
    )
    await _deliver(session, caller, old, writer)
    return await _deliver(session, caller, new, writer)


async def _deliver(
    session: Any, caller: Account, licence: Licence, writer: TokenWriter | None
) -> LicenceOut:
    await session.commit()  # the licence stands even if the terminal is slow to answer
    if writer is not None:
        await licensing.deliver(session, caller, licence, writer)
        await session.commit()
    return await _out(session, licence)


async def _out(session: Any, licence: Licence) -> LicenceOut:
    terminal = await session.get_one(Terminal, licence.terminal_id)
    await licensing.sync_report_from_values(session, terminal)
    return LicenceOut.of(licence, terminal.endpoint)

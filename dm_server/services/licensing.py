"""Licences: issue, renew, revoke and transfer signed tokens; the dealer's sales lists.

The manufacturer's Ed25519 key signs every token (:mod:`posfleet.licence_token`); the
token is then written to the terminal's POS License object (26242) by a
:class:`TokenWriter`, which queues the write if the terminal is asleep or offline. Who may
touch which licence is the subtree filter's decision: a licence is visible when its terminal
is.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dm_server.db.base import utcnow
from dm_server.db.models.account import Account, Role
from dm_server.db.models.licence import Licence, LicenceDelivery, LicenceLifecycle
from dm_server.db.models.terminal import Terminal
from dm_server.db.scope import scoped
from dm_server.errors import N_, Conflict, Forbidden, InvalidInput, NotFound, ServiceError
from dm_server.services import accounts, audit
from dm_server.settings import Settings
from posfleet import licence_token
from posfleet.licence_token import Edition, LicenceState

#: Sales lists look this far ahead, in days.
EXPIRY_WINDOWS = (30, 60, 90)
DAYS_PER_YEAR = 365
MAX_LICENCE_DAYS = 10 * DAYS_PER_YEAR
MAX_GRACE_DAYS = 365
#: Object 26242 POS License, instance 0, resources Token (0) and Status (1).
LICENCE_TOKEN_PATH = "/26242/0/0"  # noqa: S105 - an LwM2M path, not a secret
LICENCE_STATUS_PATH = "/26242/0/1"
LICENCE_ID_PATH = "/26242/0/2"
LICENCE_REVOKE_PATH = "/26242/0/11"


class TokenWriter(Protocol):
    """Puts a token on a terminal (or queues it); returns how far it got, why, and the
    queued operation's id when it waits for the terminal."""

    async def write_token(
        self, endpoint: str, token: str, requested_by: Account
    ) -> tuple[LicenceDelivery, str, int | None]: ...


@dataclass(frozen=True)
class LicenceAuthority:
    """What licensing needs from the server's set-up: the key and the price list."""

    signing_key: Ed25519PrivateKey
    #: Yearly list price per edition, in minor units of ``currency``.
    prices: Mapping[str, int] = field(default_factory=dict)
    currency: str = "KRW"
    default_grace_days: int = 14

    @property
    def public_key_text(self) -> str:
        return licence_token.public_key_text(self.signing_key.public_key())

    def list_price(self, edition: str, days: int) -> int:
        yearly = self.prices.get(edition, 0)
        return round(yearly * days / DAYS_PER_YEAR)


# --- reading ----------------------------------------------------------------------------


async def get_licence(session: AsyncSession, caller: Account, licence_id: int) -> Licence:
    licence = await session.scalar(
        scoped(select(Licence), Licence, caller).where(Licence.id == licence_id)
    )
    if licence is None:
        raise NotFound(N_("no licence %(id)s in your organisation"), id=licence_id)
    return licence


async def list_licences(
    session: AsyncSession,
    caller: Account,
    *,
    under: Account | None = None,
    endpoint: str | None = None,
    lifecycle: LicenceLifecycle | None = None,
    expiring_within_days: int | None = None,
    now: datetime | None = None,
    limit: int = 200,
    offset: int = 0,
) -> Sequence[tuple[Licence, Terminal]]:
    """Licences with their terminals, newest first, or soonest-expiring first when asked
    for an expiry window (then only active ones)."""
    now = now or utcnow()
    statement = (
        scoped(select(Licence, Terminal), Licence, caller)
        .join(Terminal, Terminal.id == Licence.terminal_id)
    )
    if under is not None:
        statement = statement.where(Terminal.owner_id.in_(_subtree_ids(under)))
    if endpoint:
        statement = statement.where(Terminal.endpoint == endpoint)
    if expiring_within_days is not None:
        statement = statement.where(
            Licence.lifecycle == LicenceLifecycle.ACTIVE,
            Licence.expires <= now + timedelta(days=expiring_within_days),
        ).order_by(Licence.expires)
    else:
        if lifecycle is not None:
            statement = statement.where(Licence.lifecycle == lifecycle)
        statement = statement.order_by(Licence.issued_at.desc(), Licence.id.desc())
    rows = await session.execute(statement.limit(limit).offset(offset))
    return [(row[0], row[1]) for row in rows.all()]


async def active_licence(
    session: AsyncSession, caller: Account, terminal: Terminal
) -> Licence | None:
    return await session.scalar(
        scoped(select(Licence), Licence, caller).where(
            Licence.terminal_id == terminal.id, Licence.lifecycle == LicenceLifecycle.ACTIVE
        )
    )


@dataclass(frozen=True)
class DealerRank:
    dealer: Account
    active: int
    expiring_30: int


async def dealer_ranking(
    session: AsyncSession, caller: Account, now: datetime | None = None
) -> list[DealerRank]:
    """Dealers in the caller's subtree by active licences of terminals in their subtrees
    (a dealer counts its sub-dealers' sales too)."""
    now = now or utcnow()
    dealers = await accounts.list_accounts(session, caller, role=Role.DEALER)
    ranks = []
    for dealer in dealers:
        base = (
            select(func.count(Licence.id))
            .join(Terminal, Terminal.id == Licence.terminal_id)
            .where(
                Licence.lifecycle == LicenceLifecycle.ACTIVE,
                Licence.expires > now,
                Terminal.owner_id.in_(_subtree_ids(dealer)),
            )
        )
        active = int(await session.scalar(base) or 0)
        soon = int(
            await session.scalar(base.where(Licence.expires <= now + timedelta(days=30))) or 0
        )
        ranks.append(DealerRank(dealer, active, soon))
    ranks.sort(key=lambda rank: (-rank.active, rank.dealer.username))
    return ranks


@dataclass(frozen=True)
class Forecast:
    """Renewal revenue at list prices of the licences expiring within ``days``."""

    days: int
    licences: int
    amount: int
    currency: str


async def revenue_forecast(
    session: AsyncSession,
    caller: Account,
    authority: LicenceAuthority,
    *,
    under: Account | None = None,
    now: datetime | None = None,
) -> list[Forecast]:
    now = now or utcnow()
    rows = await list_licences(
        session, caller, under=under, expiring_within_days=max(EXPIRY_WINDOWS), now=now,
        limit=100_000,
    )
    result = []
    for days in EXPIRY_WINDOWS:
        horizon = now + timedelta(days=days)
        due = [licence for licence, _ in rows if licence.expires <= horizon]
        amount = sum(authority.list_price(licence.edition, DAYS_PER_YEAR) for licence in due)
        result.append(Forecast(days, len(due), amount, authority.currency))
    return result


# --- changing ---------------------------------------------------------------------------


async def issue(
    session: AsyncSession,
    caller: Account,
    authority: LicenceAuthority,
    *,
    endpoint: str,
    edition: str,
    features: Sequence[str] = (),
    days: int = DAYS_PER_YEAR,
    starts: datetime | None = None,
    grace_days: int | None = None,
    now: datetime | None = None,
) -> Licence:
    """A new licence for a terminal that has none active (use renew or transfer otherwise)."""
    _require_dealer_rights(caller)
    terminal = await _terminal(session, caller, endpoint)
    if await active_licence(session, caller, terminal) is not None:
        raise Conflict(
            N_("%(endpoint)s already has an active licence: renew or revoke it"), endpoint=endpoint
        )
    now = now or utcnow()
    starts = starts or now
    licence = await _new_licence(
        session, caller, authority, terminal,
        edition=edition, features=features, starts=starts,
        expires=starts + timedelta(days=_check_days(days)),
        grace_days=authority.default_grace_days if grace_days is None else grace_days, now=now,
    )
    audit.record(
        session, caller, "licence.issue", "licence", licence.licence_uid,
        endpoint=endpoint, edition=licence.edition, expires=licence.expires.isoformat(),
    )
    return licence


async def renew(
    session: AsyncSession,
    caller: Account,
    authority: LicenceAuthority,
    licence_id: int,
    *,
    days: int = DAYS_PER_YEAR,
    edition: str | None = None,
    now: datetime | None = None,
) -> Licence:
    """Extend an active licence by ``days`` from its current expiry (or from now, if it
    has already lapsed); the old row is closed as renewed."""
    _require_dealer_rights(caller)
    old = await get_licence(session, caller, licence_id)
    if old.lifecycle is not LicenceLifecycle.ACTIVE:
        raise Conflict(
            N_("licence %(id)s is %(state)s: only an active one renews"),
            id=licence_id, state=old.lifecycle,
        )
    terminal = await session.get_one(Terminal, old.terminal_id)
    now = now or utcnow()
    base = max(old.expires, now)
    old.lifecycle = LicenceLifecycle.RENEWED
    old.closed_at = now
    await session.flush()
    licence = await _new_licence(
        session, caller, authority, terminal,
        edition=edition or old.edition, features=old.features, starts=min(old.starts, now),
        expires=base + timedelta(days=_check_days(days)), grace_days=old.grace_days, now=now,
        replaces=old, price=authority.list_price(edition or old.edition, days),
    )
    audit.record(
        session, caller, "licence.renew", "licence", licence.licence_uid,
        endpoint=terminal.endpoint, replaces=old.licence_uid,
        expires=licence.expires.isoformat(),
    )
    return licence


async def revoke(
    session: AsyncSession,
    caller: Account,
    licence_id: int,
    *,
    reason: str = "",
    now: datetime | None = None,
) -> Licence:
    _require_dealer_rights(caller)
    licence = await get_licence(session, caller, licence_id)
    if licence.lifecycle is not LicenceLifecycle.ACTIVE:
        raise Conflict(
            N_("licence %(id)s is %(state)s: nothing to revoke"),
            id=licence_id, state=licence.lifecycle,
        )
    licence.lifecycle = LicenceLifecycle.REVOKED
    licence.closed_at = now or utcnow()
    licence.delivery = LicenceDelivery.PENDING
    licence.delivery_detail = "removal not yet sent"
    audit.record(
        session, caller, "licence.revoke", "licence", licence.licence_uid, reason=reason[:200]
    )
    return licence


async def transfer(
    session: AsyncSession,
    caller: Account,
    authority: LicenceAuthority,
    licence_id: int,
    *,
    to_endpoint: str,
    now: datetime | None = None,
) -> tuple[Licence, Licence]:
    """Move an active licence (same edition and expiry) to another terminal the caller
    manages; returns (old, new). The old terminal's token must then be removed."""
    _require_dealer_rights(caller)
    old = await get_licence(session, caller, licence_id)
    if old.lifecycle is not LicenceLifecycle.ACTIVE:
        raise Conflict(
            N_("licence %(id)s is %(state)s: only an active one moves"),
            id=licence_id, state=old.lifecycle,
        )
    target = await _terminal(session, caller, to_endpoint)
    if target.id == old.terminal_id:
        raise InvalidInput(N_("the licence is already on that terminal"))
    if await active_licence(session, caller, target) is not None:
        raise Conflict(N_("%(endpoint)s already has an active licence"), endpoint=to_endpoint)
    now = now or utcnow()
    old.lifecycle = LicenceLifecycle.TRANSFERRED
    old.closed_at = now
    old.delivery = LicenceDelivery.PENDING
    old.delivery_detail = "removal not yet sent"
    await session.flush()
    new = await _new_licence(
        session, caller, authority, target,
        edition=old.edition, features=old.features, starts=now, expires=old.expires,
        grace_days=old.grace_days, now=now, replaces=old, price=0,
    )
    audit.record(
        session, caller, "licence.transfer", "licence", new.licence_uid,
        replaces=old.licence_uid, to=to_endpoint,
    )
    return old, new


async def deliver(
    session: AsyncSession, caller: Account, licence: Licence, writer: TokenWriter
) -> Licence:
    """Write the licence's token to its terminal, or an empty token for a closed licence
    (which removes it there). The outcome is stored on the licence row."""
    terminal = await session.get_one(Terminal, licence.terminal_id)
    token = licence.token if licence.lifecycle is LicenceLifecycle.ACTIVE else ""
    operation_id = None
    try:
        delivery, detail, operation_id = await writer.write_token(
            terminal.endpoint, token, caller
        )
    except ServiceError as exc:
        delivery, detail = LicenceDelivery.FAILED, exc.message
    licence.delivery = delivery
    licence.delivery_detail = detail[:256]
    licence.operation_id = operation_id
    if delivery is LicenceDelivery.WRITTEN:
        await sync_report_from_values(session, terminal)
    return licence


async def record_report(
    session: AsyncSession, terminal_id: int, status: int, licence_uid: str | None = None,
    now: datetime | None = None,
) -> Licence | None:
    """Store what a terminal says about its licence (object 26242 Status). Called by the
    protocol side when a Read or a notification of /26242/0/1 arrives (no caller: the
    terminal has already been authenticated)."""
    statement = select(Licence).where(Licence.terminal_id == terminal_id)
    if licence_uid:
        statement = statement.where(Licence.licence_uid == licence_uid)
    else:
        statement = statement.order_by(Licence.issued_at.desc(), Licence.id.desc())
    licence = await session.scalar(statement.limit(1))
    if licence is None:
        return None
    try:
        licence.reported_state = LicenceState(status).name.lower()
    except ValueError:
        licence.reported_state = f"unknown-{status}"
    licence.reported_at = now or utcnow()
    return licence


# --- helpers ----------------------------------------------------------------------------


async def _new_licence(
    session: AsyncSession,
    caller: Account,
    authority: LicenceAuthority,
    terminal: Terminal,
    *,
    edition: str,
    features: Sequence[str],
    starts: datetime,
    expires: datetime,
    grace_days: int,
    now: datetime,
    replaces: Licence | None = None,
    price: int | None = None,
) -> Licence:
    try:
        edition = Edition(edition).value
    except ValueError:
        editions = ", ".join(e.value for e in Edition)
        raise InvalidInput(
            N_("unknown edition %(edition)r: choose %(choices)s"),
            edition=edition, choices=editions,
        ) from None
    if not 0 <= grace_days <= MAX_GRACE_DAYS:
        raise InvalidInput(
            N_("grace days must be between 0 and %(max)s"), max=MAX_GRACE_DAYS
        )
    clean_features = sorted({f.strip() for f in features if f.strip()})
    uid = str(uuid.uuid4())
    token = licence_token.sign_token(
        authority.signing_key,
        licence_token.Licence(
            licence_id=uid, endpoint=terminal.endpoint, edition=edition,
            features=tuple(clean_features), issued=now, starts=starts, expires=expires,
            grace_days=grace_days,
        ),
    )
    owner = await session.get(Account, terminal.owner_id) if terminal.owner_id else None
    dealer = caller if caller.role is Role.DEALER else None
    if dealer is None and owner is not None:
        dealer = await accounts.nearest_dealer(session, owner)
    days = max(1, (expires - starts).days)
    licence = Licence(
        licence_uid=uid, terminal_id=terminal.id, dealer_id=dealer.id if dealer else None,
        edition=edition, features=clean_features, starts=starts, expires=expires,
        grace_days=grace_days, lifecycle=LicenceLifecycle.ACTIVE, token=token,
        price=authority.list_price(edition, days) if price is None else price,
        currency=authority.currency, replaces_id=replaces.id if replaces else None,
        issued_by=caller.id, issued_at=now, delivery=LicenceDelivery.PENDING,
    )
    session.add(licence)
    await session.flush()
    return licence


async def _terminal(session: AsyncSession, caller: Account, endpoint: str) -> Terminal:
    terminal = await session.scalar(
        scoped(select(Terminal), Terminal, caller).where(Terminal.endpoint == endpoint)
    )
    if terminal is None:
        raise NotFound(N_("no terminal %(endpoint)r in your organisation"), endpoint=endpoint)
    return terminal


def _require_dealer_rights(caller: Account) -> None:
    if caller.role is Role.OWNER:
        raise Forbidden(N_("licences are managed by your dealer"))


def _check_days(days: int) -> int:
    if not 1 <= days <= MAX_LICENCE_DAYS:
        raise InvalidInput(N_("a licence runs 1 to %(max)s days"), max=MAX_LICENCE_DAYS)
    return days


def _subtree_ids(account: Account):  # type: ignore[no-untyped-def]
    return select(Account.id).where(Account.path.startswith(account.path, autoescape=True))


async def sync_report_from_values(session: AsyncSession, terminal: Terminal) -> Licence | None:
    """Settle queued deliveries from their operations' outcome, then take the terminal's
    last known 26242 Status and License ID (from a Read or an Observe notification,
    stored as resource values) as its report on the licence."""
    from dm_server.db.models.operation import OperationStatus, QueuedOperation
    from dm_server.db.models.value import ResourceValue

    waiting = await session.execute(
        select(Licence, QueuedOperation)
        .join(QueuedOperation, QueuedOperation.id == Licence.operation_id)
        .where(Licence.terminal_id == terminal.id, Licence.delivery == LicenceDelivery.QUEUED)
    )
    for licence, operation in waiting.all():
        code = str((operation.result or {}).get("code", ""))
        if operation.status is OperationStatus.DONE and code.startswith("2."):
            licence.delivery, licence.delivery_detail = LicenceDelivery.WRITTEN, code
        elif operation.status not in (OperationStatus.QUEUED, OperationStatus.SENT):
            licence.delivery = LicenceDelivery.FAILED
            licence.delivery_detail = f"{operation.status.value} {code}".strip()

    rows = {
        row.path: row
        for row in await session.scalars(
            select(ResourceValue).where(
                ResourceValue.terminal_id == terminal.id,
                ResourceValue.path.in_((LICENCE_STATUS_PATH, LICENCE_ID_PATH)),
            )
        )
    }
    status = rows.get(LICENCE_STATUS_PATH)
    if status is None or not isinstance(status.value, int):
        return None
    uid = rows.get(LICENCE_ID_PATH)
    return await record_report(
        session, terminal.id, status.value,
        str(uid.value) if uid is not None and uid.value else None, now=status.updated_at,
    )


def authority_from_settings(settings: Settings) -> LicenceAuthority:
    """The manufacturer's signing key (created on first start, mode 0600) and price list."""
    return LicenceAuthority(
        signing_key=licence_token.load_or_create_signing_key(settings.resolved_licence_key_file),
        prices=settings.licence_price_list(),
        currency=settings.licence_currency,
        default_grace_days=settings.licence_grace_days,
    )

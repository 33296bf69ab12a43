"""Accounts: the tree (admin -> dealers -> sub-dealers -> owners), log-in with lock-out,
password change, assigning terminals to owners.

Every lookup goes through :func:`dm_server.db.scope.scoped`, so an id from outside the
caller's subtree is simply not found (404), never "forbidden": the caller learns nothing
about accounts it may not see.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dm_server.db.base import utcnow
from dm_server.db.models.account import Account, Role
from dm_server.db.models.terminal import Terminal
from dm_server.db.scope import scoped
from dm_server.errors import N_, Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from dm_server.security import hash_password, verify_password
from dm_server.services import audit

MIN_PASSWORD_LENGTH = 8
MAX_USERNAME_LENGTH = 64
SUPPORTED_LOCALES = ("ko", "en")
#: Which roles an account of each role may create directly below itself.
CHILD_ROLES: dict[Role, tuple[Role, ...]] = {
    Role.ADMIN: (Role.DEALER, Role.OWNER),
    Role.DEALER: (Role.DEALER, Role.OWNER),
    Role.OWNER: (),
}


@dataclass(frozen=True)
class LoginPolicy:
    """Lock-out after ``max_failures`` wrong passwords in a row, for ``lockout_s``."""

    max_failures: int = 5
    lockout_s: int = 900

    @classmethod
    def from_settings(cls, settings: Any) -> LoginPolicy:
        return cls(settings.login_max_failures, settings.login_lockout_s)


# --- reading ----------------------------------------------------------------------------


async def get_account(session: AsyncSession, caller: Account, account_id: int) -> Account:
    account = await session.scalar(
        scoped(select(Account), Account, caller).where(Account.id == account_id)
    )
    if account is None:
        raise NotFound(N_("no account %(id)s in your organisation"), id=account_id)
    return account


async def list_accounts(
    session: AsyncSession, caller: Account, *, role: Role | None = None, under: int | None = None
) -> Sequence[Account]:
    """The caller's subtree in tree order (the path sorts parents before children);
    ``under`` narrows it to one node's subtree (which must itself be visible)."""
    statement = scoped(select(Account), Account, caller)
    if under is not None:
        node = await get_account(session, caller, under)
        statement = statement.where(Account.path.startswith(node.path, autoescape=True))
    if role is not None:
        statement = statement.where(Account.role == role)
    return (await session.scalars(statement.order_by(Account.path))).all()


async def nearest_dealer(session: AsyncSession, account: Account) -> Account | None:
    """The closest dealer at or above ``account`` (the one a sale is credited to)."""
    ids = [int(part) for part in account.path.strip("/").split("/") if part]
    if not ids:
        return None
    rows = (await session.scalars(select(Account).where(Account.id.in_(ids)))).all()
    by_id = {row.id: row for row in rows}
    for account_id in reversed(ids):
        row = by_id.get(account_id)
        if row is not None and row.role is Role.DEALER:
            return row
    return None


async def count_terminals(session: AsyncSession, caller: Account) -> int:
    statement = scoped(select(func.count(Terminal.id)), Terminal, caller)
    return int(await session.scalar(statement) or 0)


# --- changing ---------------------------------------------------------------------------


async def create_root_admin(session: AsyncSession, username: str, password: str) -> Account:
    """The manufacturer admin at the root; refused if any account exists."""
    if await session.scalar(select(func.count(Account.id))):
        raise Conflict(N_("the database already has accounts: the admin exists"))
    _check_username(username)
    _check_password(password)
    admin = Account(
        role=Role.ADMIN, username=username, password_hash=hash_password(password),
        display_name=username, locale="en",
    )
    session.add(admin)
    await session.flush()
    admin.path = f"/{admin.id}/"
    audit.record(session, None, "account.create", "account", admin.id, role=admin.role)
    return admin


async def create_account(
    session: AsyncSession,
    caller: Account,
    *,
    parent_id: int,
    username: str,
    password: str,
    role: Role,
    display_name: str = "",
    locale: str = "ko",
) -> Account:
    """A new dealer or owner below ``parent_id`` (in the caller's subtree)."""
    parent = await get_account(session, caller, parent_id)
    role = Role(role)
    if role not in CHILD_ROLES[caller.role] or role not in CHILD_ROLES[parent.role]:
        raise Forbidden(
            N_("a %(parent)s account cannot have a %(role)s below it"),
            parent=parent.role, role=role,
        )
    _check_username(username)
    _check_password(password)
    _check_locale(locale)
    if await session.scalar(select(Account.id).where(Account.username == username)):
        raise Conflict(N_("the user name %(username)r is taken: choose another"), username=username)
    account = Account(
        parent_id=parent.id, role=role, username=username,
        password_hash=hash_password(password), display_name=display_name or username,
        locale=locale,
    )
    session.add(account)
    await session.flush()
    account.path = f"{parent.path}{account.id}/"
    audit.record(
        session, caller, "account.create", "account", account.id,
        username=username, role=role, parent=parent.username,
    )
    return account


async def update_account(
    session: AsyncSession,
    caller: Account,
    account_id: int,
    *,
    display_name: str | None = None,
    locale: str | None = None,
    disabled: bool | None = None,
) -> Account:
    """Edit an account; only accounts strictly below the caller may be disabled, and an
    owner may change nothing but its own name and language."""
    account = await get_account(session, caller, account_id)
    own = account.id == caller.id
    if not own and caller.role is Role.OWNER:
        raise Forbidden(N_("a store owner cannot change other accounts"))
    changes: dict[str, object] = {}
    if display_name is not None and display_name != account.display_name:
        account.display_name = display_name.strip()[:128]
        changes["display_name"] = account.display_name
    if locale is not None and locale != account.locale:
        _check_locale(locale)
        account.locale = locale
        changes["locale"] = locale
    if disabled is not None and disabled != account.disabled:
        if own:
            raise Forbidden(N_("you cannot disable your own account"))
        account.disabled = disabled
        changes["disabled"] = disabled
    if changes:
        audit.record(session, caller, "account.update", "account", account.id, **changes)
    return account


async def set_password(
    session: AsyncSession, caller: Account, account_id: int, new_password: str
) -> None:
    """A dealer or the admin sets a new password for an account strictly below it."""
    account = await get_account(session, caller, account_id)
    if account.id == caller.id:
        raise Forbidden(N_("use the password change form for your own password"))
    if caller.role is Role.OWNER:
        raise Forbidden(N_("a store owner cannot change other accounts"))
    _check_password(new_password)
    account.password_hash = hash_password(new_password)
    account.failed_logins = 0
    account.locked_until = None
    audit.record(session, caller, "account.set-password", "account", account.id)


async def change_own_password(
    session: AsyncSession, caller: Account, current_password: str, new_password: str
) -> None:
    if not verify_password(current_password, caller.password_hash):
        raise InvalidInput(N_("the current password is wrong"))
    _check_password(new_password)
    if current_password == new_password:
        raise InvalidInput(N_("the new password must differ from the current one"))
    caller.password_hash = hash_password(new_password)
    session.add(caller)
    audit.record(session, caller, "account.change-password", "account", caller.id)


async def authenticate(
    session: AsyncSession,
    username: str,
    password: str,
    policy: LoginPolicy = LoginPolicy(),
    now: datetime | None = None,
) -> Account:
    """The account for a correct user name and password, counting failures.

    One message for every refusal (unknown user, wrong password, disabled, locked), so
    log-in does not reveal which user names exist; the lock-out says when to try again.
    """
    now = now or utcnow()
    refused = Unauthorized(N_("wrong user name or password"))
    account = await session.scalar(select(Account).where(Account.username == username))
    if account is None:
        verify_password(password, _dummy_hash())  # same work as a real check: no timing oracle
        raise refused
    if account.locked_until is not None and account.locked_until > now:
        raise Unauthorized(
            N_("too many failed log-ins: try again after %(time)s UTC"),
            time=f"{account.locked_until:%H:%M}",
        )
    if not verify_password(password, account.password_hash):
        account.failed_logins += 1
        if account.failed_logins >= policy.max_failures:
            account.locked_until = now + timedelta(seconds=policy.lockout_s)
            account.failed_logins = 0
            audit.record(session, None, "account.lock", "account", account.id,
                         username=account.username)
        await session.commit()  # the count must survive the refusal
        raise refused
    if account.disabled:
        raise refused
    if account.failed_logins or account.locked_until:
        account.failed_logins = 0
        account.locked_until = None
    return account


async def assign_terminal(
    session: AsyncSession, caller: Account, endpoint: str, owner_id: int
) -> Terminal:
    """Give a terminal (visible to the caller) to a store owner in the caller's subtree."""
    terminal = await session.scalar(
        scoped(select(Terminal), Terminal, caller).where(Terminal.endpoint == endpoint)
    )
    if terminal is None:
        raise NotFound(N_("no terminal %(endpoint)r in your organisation"), endpoint=endpoint)
    if caller.role is Role.OWNER:
        raise Forbidden(N_("a store owner cannot reassign terminals"))
    owner = await get_account(session, caller, owner_id)
    if owner.role is not Role.OWNER:
        raise InvalidInput(N_("terminals belong to store owners: choose an owner account"))
    previous = terminal.owner_id
    terminal.owner_id = owner.id
    audit.record(
        session, caller, "terminal.assign", "terminal", endpoint,
        owner=owner.username, previous_owner_id=previous,
    )
    return terminal


# --- checks -----------------------------------------------------------------------------


def _check_username(username: str) -> None:
    if not username or len(username) > MAX_USERNAME_LENGTH:
        raise InvalidInput(
            N_("a user name has 1 to %(max)s characters"), max=MAX_USERNAME_LENGTH
        )
    if not all(c.isalnum() or c in "-_." for c in username):
        raise InvalidInput(
            N_("a user name may contain letters, digits, '-', '_' and '.' only")
        )


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            N_("a password needs at least %(min)s characters"), min=MIN_PASSWORD_LENGTH
        )


def _check_locale(locale: str) -> None:
    if locale not in SUPPORTED_LOCALES:
        raise InvalidInput(
            N_("language must be one of %(choices)s"), choices=", ".join(SUPPORTED_LOCALES)
        )


@functools.cache
def _dummy_hash() -> str:
    return hash_password("posfleet-timing-equaliser")

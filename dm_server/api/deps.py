"""The one place that yields the database session and the calling account."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession

from dm_server.db.models import Account
from dm_server.errors import N_, Unauthorized
from dm_server.security import InvalidToken

if TYPE_CHECKING:
    from dm_server.server import DmServer

TOKEN_URL = "/api/v1/auth/token"  # noqa: S105 - a URL
oauth2_scheme = OAuth2PasswordBearer(tokenUrl=TOKEN_URL, auto_error=False)


def get_core(request: Request) -> DmServer:
    return request.app.state.core  # type: ignore[no-any-return]


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with get_core(request).db.session() as session:
        yield session


async def get_current_account(
    request: Request,
    session: Annotated[AsyncSession, Depends(get_session)],
    token: Annotated[str | None, Depends(oauth2_scheme)],
) -> Account:
    if not token:
        raise Unauthorized(
            "log in first: POST /api/v1/auth/token, then send Authorization: Bearer <token>"
        )
    try:
        account_id = get_core(request).tokens.verify(token)
    except InvalidToken as exc:
        raise Unauthorized(str(exc)) from None
    account = await session.get(Account, account_id)
    if account is None or account.disabled:
        raise Unauthorized(N_("this account no longer exists or is disabled"))
    return account


async def get_account_briefly(
    request: Request, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> Account:
    """The caller, loaded in a session of its own that closes at once.

    For routes that wait on a terminal (DM operations): the request-scoped session would
    hold a pooled connection for the whole wait.
    """
    async with get_core(request).db.session() as session:
        return await get_current_account(request, session, token)


Core = Annotated["DmServer", Depends(get_core)]
Session = Annotated[AsyncSession, Depends(get_session)]
CurrentAccount = Annotated[Account, Depends(get_current_account)]
#: The caller without a request-long database session (see get_account_briefly).
BriefAccount = Annotated[Account, Depends(get_account_briefly)]

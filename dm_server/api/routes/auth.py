"""``/api/v1/auth``: bearer tokens for the REST API (OAuth2 password flow)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from dm_server.api.deps import Core, CurrentAccount, Session
from dm_server.services import accounts

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type
    expires_in: int


class Me(BaseModel):
    id: int
    username: str
    role: str
    display_name: str
    locale: str


@router.post("/token", response_model=Token)
async def issue_token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], session: Session, core: Core
) -> Token:
    account = await accounts.authenticate(
        session, form.username, form.password, accounts.LoginPolicy.from_settings(core.settings)
    )
    return Token(
        access_token=core.tokens.issue(account.id), expires_in=core.settings.token_lifetime_s
    )


@router.get("/me", response_model=Me)
async def me(account: CurrentAccount) -> Me:
    return Me(
        id=account.id,
        username=account.username,
        role=account.role.value,
        display_name=account.display_name,
        locale=account.locale,
    )

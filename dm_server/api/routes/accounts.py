"""``/api/v1/accounts``: the account tree within the caller's subtree, and assigning
terminals to store owners."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel

from dm_server.api.deps import CurrentAccount, Session
from dm_server.db.models.account import Account, Role
from dm_server.services import accounts

router = APIRouter(prefix="/api/v1/accounts", tags=["accounts"])


class AccountOut(BaseModel):
    id: int
    parent_id: int | None
    path: str
    role: str
    username: str
    display_name: str
    locale: str
    disabled: bool
    created_at: datetime

    @classmethod
    def of(cls, account: Account) -> AccountOut:
        return cls(
            id=account.id,
            parent_id=account.parent_id,
            path=account.path,
            role=account.role.value,
            username=account.username,
            display_name=account.display_name,
            locale=account.locale,
            disabled=account.disabled,
            created_at=account.created_at,
        )


class CreateBody(BaseModel):
    parent_id: int
    username: str
    password: str
    role: Role
    display_name: str = ""
    locale: str = "ko"


class UpdateBody(BaseModel):
    display_name: str | None = None
    locale: str | None = None
    disabled: bool | None = None


class PasswordBody(BaseModel):
    new_password: str


class OwnPasswordBody(BaseModel):
    current_password: str
    new_password: str


class AssignBody(BaseModel):
    owner_id: int


@router.get("", response_model=list[AccountOut])
async def list_accounts(
    caller: CurrentAccount, session: Session, role: Role | None = None, under: int | None = None
) -> list[AccountOut]:
    return [
        AccountOut.of(a)
        for a in await accounts.list_accounts(session, caller, role=role, under=under)
    ]


@router.post("/me/password", status_code=204)
async def change_own_password(
    body: OwnPasswordBody, caller: CurrentAccount, session: Session
) -> None:
    await accounts.change_own_password(session, caller, body.current_password, body.new_password)


@router.get("/{account_id}", response_model=AccountOut)
async def get_account(account_id: int, caller: CurrentAccount, session: Session) -> AccountOut:
    return AccountOut.of(await accounts.get_account(session, caller, account_id))


@router.post("", response_model=AccountOut, status_code=201)
async def create_account(body: CreateBody, caller: CurrentAccount, session: Session) -> AccountOut:
    account = await accounts.create_account(
        session,
        caller,
        parent_id=body.parent_id,
        username=body.username,
        password=body.password,
        role=body.role,
        display_name=body.display_name,
        locale=body.locale,
    )
    return AccountOut.of(account)


@router.patch("/{account_id}", response_model=AccountOut)
async def update_account(
    account_id: int, body: UpdateBody, caller: CurrentAccount, session: Session
) -> AccountOut:
    account = await accounts.update_account(
        session,
        caller,
        account_id,
        display_name=body.display_name,
        locale=body.locale,
        disabled=body.disabled,
    )
    return AccountOut.of(account)


@router.post("/{account_id}/password", status_code=204)
async def set_password(
    account_id: int, body: PasswordBody, caller: CurrentAccount, session: Session
) -> None:
    await accounts.set_password(session, caller, account_id, body.new_password)


@router.put("/terminals/{endpoint}/owner", status_code=204)
async def assign_terminal(
    endpoint: str, body: AssignBody, caller: CurrentAccount, session: Session
) -> None:
    await accounts.assign_terminal(session, caller, endpoint, body.owner_id)

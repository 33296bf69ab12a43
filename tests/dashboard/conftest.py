"""Fixtures for the accounts/licences/dashboard tests: a migrated database (SQLite file, or
a fresh PostgreSQL database when ``POSFLEET_TEST_DATABASE_URL`` is set) and a demo tree."""

from __future__ import annotations

import functools
import os
import re
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from dm_server import security
from dm_server.api.app import create_app
from dm_server.db.base import Base
from dm_server.db.migrate import upgrade
from dm_server.db.models.account import Account, Role
from dm_server.db.models.terminal import SecurityMode, Terminal
from dm_server.db.session import Database
from dm_server.security import TokenSigner
from dm_server.services import accounts
from dm_server.settings import Settings
from tests.databases import postgres_scratch_database

PASSWORD = "correct-horse-1"
#: Argon2 is slow on purpose; a real hash per distinct password is enough for tests.
_cached_hash = functools.cache(security.hash_password)


@pytest.fixture(autouse=True)
def _fast_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(accounts, "hash_password", _cached_hash)


@pytest.fixture(scope="session")
def migrated_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database at the head migration, made once per test session."""
    server_url = os.environ.get("POSFLEET_TEST_DATABASE_URL")
    if not server_url:
        path = tmp_path_factory.mktemp("db") / "template.db"
        upgrade(f"sqlite:///{path}")
        yield f"sqlite:///{path}"
        return
    with postgres_scratch_database(server_url, "posfleet_dash") as url:
        upgrade(url)
        yield url


@pytest.fixture()
def database_url(migrated_url: str, tmp_path: Path) -> str:
    """A clean database per test: a copy of the SQLite template, or emptied PostgreSQL."""
    if migrated_url.startswith("sqlite"):
        copy = tmp_path / "server.db"
        shutil.copy(make_url(migrated_url).database or "", copy)
        return f"sqlite:///{copy}"
    engine = create_engine(migrated_url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return migrated_url


@pytest.fixture()
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    yield db
    await db.dispose()


@dataclass
class Tree:
    """admin -> dealer_a -> (owner_a1, sub_a -> owner_s1); admin -> dealer_b -> owner_b1.
    Each owner has one terminal named ``pos-<owner>``."""

    admin: Account
    dealer_a: Account
    sub_a: Account
    owner_a1: Account
    owner_s1: Account
    dealer_b: Account
    owner_b1: Account

    def all(self) -> list[Account]:
        return [self.admin, self.dealer_a, self.sub_a, self.owner_a1, self.owner_s1,
                self.dealer_b, self.owner_b1]


async def build_tree(db: Database) -> Tree:
    async with db.session() as session:
        admin = await accounts.create_root_admin(session, "admin", PASSWORD)

        async def child(parent: Account, name: str, role: Role) -> Account:
            return await accounts.create_account(
                session, admin, parent_id=parent.id, username=name, password=PASSWORD,
                role=role, locale="en",
            )

        dealer_a = await child(admin, "dealer-a", Role.DEALER)
        sub_a = await child(dealer_a, "sub-a", Role.DEALER)
        owner_a1 = await child(dealer_a, "owner-a1", Role.OWNER)
        owner_s1 = await child(sub_a, "owner-s1", Role.OWNER)
        dealer_b = await child(admin, "dealer-b", Role.DEALER)
        owner_b1 = await child(dealer_b, "owner-b1", Role.OWNER)
        for owner in (owner_a1, owner_s1, owner_b1):
            session.add(Terminal(endpoint=f"pos-{owner.username}", owner_id=owner.id,
                                 security_mode=SecurityMode.NOSEC))
        return Tree(admin, dealer_a, sub_a, owner_a1, owner_s1, dealer_b, owner_b1)


@pytest.fixture()
async def tree(database: Database) -> Tree:
    return await build_tree(database)


@dataclass
class Core:
    """What the app reads from a running DmServer; its LwM2M side is never started (page
    and API tests do not talk CoAP; the browser tests use the real server and simulator)."""

    settings: Settings
    db: Database
    tokens: TokenSigner
    lwm2m: object = None


@pytest.fixture()
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database_url,
                    login_max_failures=3, login_lockout_s=60)


@pytest.fixture()
async def app(settings: Settings, database: Database) -> Any:
    import dashboard
    from dm_server.lwm2m.dtls import PskStore
    from dm_server.lwm2m.endpoint import Lwm2mEndpoint
    from lwm2m_core.model import ObjectModelRepository

    core = Core(settings, database, TokenSigner("test-secret", 3600))
    # The LwM2M side, built but not started: no sockets, so terminals are unreachable.
    core.lwm2m = Lwm2mEndpoint(settings, database, ObjectModelRepository.default(), PskStore())
    import dm_server.firmware as firmware

    routers = [*dashboard.api_routers(core), *firmware.api_routers(core)]
    application = create_app(core, routers)  # type: ignore[arg-type]
    dashboard.configure_app(core, application)
    return application


@pytest.fixture()
async def client_factory(app: Any) -> AsyncIterator[Any]:
    clients: list[httpx.AsyncClient] = []

    def make() -> httpx.AsyncClient:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                   base_url="http://testserver")
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "page has no CSRF token"
    return match.group(1)


async def login(client: httpx.AsyncClient, username: str, password: str = PASSWORD) -> str:
    """Log in through the form; returns a CSRF token for further posts."""
    page = await client.get("/login")
    response = await client.post("/login", data={
        "username": username, "password": password, "csrf_token": csrf_of(page.text),
        "next": "/"})
    assert response.status_code == 303, response.text
    home = await client.get("/profile")
    assert home.status_code == 200
    return csrf_of(home.text)


async def api_token(client: httpx.AsyncClient, username: str) -> dict[str, str]:
    response = await client.post("/api/v1/auth/token",
                                 data={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}

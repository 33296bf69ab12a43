"""The bulk Register writer (services.registrations.register_many) against a real
database: what each kind of terminal gets written, and that a refusal writes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from dm_server.db import migrate
from dm_server.db.base import utcnow
from dm_server.db.models import Registration, Terminal, TerminalStateChange
from dm_server.db.models.terminal import SecurityMode, TradingState
from dm_server.db.session import Database
from dm_server.services.registrations import Origin, RegisterParams, register_many
from lwm2m_core.link import parse_registration
from lwm2m_core.numbers import CoapCode

pytestmark = pytest.mark.db

LINKS = "</1/0>,</3/0>,</26241/0>"


def params(endpoint: str) -> RegisterParams:
    return RegisterParams(endpoint, 300, "1.1", "U", False, LINKS, parse_registration(LINKS))


@pytest.fixture
async def db(database_url):
    migrate.upgrade(database_url)
    database = Database(database_url)
    async with database.session() as session:
        session.add_all(
            [
                Terminal(endpoint="pos-psk", security_mode=SecurityMode.PSK,
                         psk_identity="pos-psk", psk_key=b"k" * 16,
                         trading_state=TradingState.OFFLINE),
                Terminal(endpoint="pos-open", security_mode=SecurityMode.NOSEC,
                         trading_state=TradingState.OFFLINE),
            ]
        )  # fmt: skip
    try:
        yield database
    finally:
        await database.dispose()


async def changes_of(session, endpoint: str) -> list[tuple[str, str]]:
    rows = await session.execute(
        select(TerminalStateChange.previous, TerminalStateChange.state)
        .join(Terminal, Terminal.id == TerminalStateChange.terminal_id)
        .where(Terminal.endpoint == endpoint)
        .order_by(TerminalStateChange.id)
    )
    return [(previous.value, state.value) for previous, state in rows]


async def test_first_registration_brings_terminals_online_then_refreshes_them(db):
    first = utcnow()
    plain = Origin("coap", "127.0.0.1:40001", None)
    secure = Origin("coaps", "127.0.0.1:40002", "pos-psk")
    async with db.session() as session:
        answers = await register_many(
            session,
            [(params("pos-open"), plain), (params("pos-psk"), secure), (params("pos-new"), plain)],
            dev_auto_accept=True,
            now=first,
        )
    assert [a.endpoint for a in answers] == ["pos-open", "pos-psk", "pos-new"]
    assert len({a.location_id for a in answers}) == 3

    later = first + timedelta(seconds=90)
    async with db.session() as session:
        (again,) = await register_many(
            session, [(params("pos-open"), plain)], dev_auto_accept=False, now=later
        )
    assert again.location_id != answers[0].location_id

    async with db.session() as session:
        terminals = {
            t.endpoint: t for t in await session.scalars(select(Terminal).order_by(Terminal.id))
        }
        assert {name: t.trading_state for name, t in terminals.items()} == {
            "pos-psk": TradingState.IDLE,
            "pos-open": TradingState.IDLE,
            "pos-new": TradingState.IDLE,
        }
        assert terminals["pos-new"].auto_accepted
        # Coming online writes one history row; registering again while online, none.
        for name in terminals:
            assert await changes_of(session, name) == [("offline", "idle")]
        assert terminals["pos-psk"].last_seen_at == first
        assert terminals["pos-open"].last_seen_at == later
        registration = await session.scalar(
            select(Registration).where(Registration.terminal_id == terminals["pos-open"].id)
        )
        assert registration.location_id == again.location_id
        assert registration.expires_at == later + timedelta(seconds=300)
        assert registration.objects[0] == {"object_id": 1, "instances": [0], "version": None}


async def test_a_refused_register_writes_nothing_and_its_neighbours_go_through(db):
    wrong_identity = Origin("coaps", "127.0.0.1:40003", "someone-else")
    async with db.session() as session:
        answers = await register_many(
            session,
            [
                (params("pos-psk"), wrong_identity),
                (params("bad name!"), Origin("coap", "127.0.0.1:40004", None)),
                (params("pos-open"), Origin("coap", "127.0.0.1:40005", None)),
            ],
            dev_auto_accept=False,
        )
    refused = [(type(a).__name__, getattr(a, "coap_code", None)) for a in answers[:2]]
    assert refused == [
        ("RegistrationRefused", CoapCode.FORBIDDEN),
        ("RegistrationRefused", CoapCode.BAD_REQUEST),
    ]
    assert answers[2].endpoint == "pos-open"
    async with db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Registration)) == 1
        psk = await session.scalar(select(Terminal).where(Terminal.endpoint == "pos-psk"))
        assert psk.trading_state is TradingState.OFFLINE
        assert psk.last_seen_at is None
        assert await changes_of(session, "pos-psk") == []

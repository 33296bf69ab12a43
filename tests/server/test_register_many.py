"""The bulk registration writers (services.registrations.register_many and update_many)
against a real database: what each request gets written, and that a refusal writes
nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from dm_server.db import migrate
from dm_server.db.base import utcnow
from dm_server.db.models import Registration, Terminal, TerminalStateChange
from dm_server.db.models.terminal import SecurityMode, TradingState
from dm_server.db.session import Database
from dm_server.services.registrations import (
    Origin,
    RegisterParams,
    UpdateParams,
    register_many,
    update_many,
)
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


async def test_updates_refresh_registrations_and_refusals_write_nothing(db):
    start = utcnow()
    plain = Origin("coap", "127.0.0.1:40001", None)
    secure = Origin("coaps", "127.0.0.1:40002", "pos-psk")
    async with db.session() as session:
        opened, psk = await register_many(
            session, [(params("pos-open"), plain), (params("pos-psk"), secure)],
            dev_auto_accept=False, now=start,
        )  # fmt: skip
    links = '</>;rt="oma.lwm2m";ct=112,</1/0>,</3/0>'
    later = start + timedelta(seconds=30)
    moved = Origin("coap", "127.0.0.1:40009", None)
    async with db.session() as session:
        answers = await update_many(
            session,
            [
                (UpdateParams(opened.location_id, 600, None, None, None), moved),
                (UpdateParams("no-such-id", None, None, None, None), plain),
                (UpdateParams(psk.location_id, 900, None, None, None), plain),  # not its DTLS
                # The same registration again in the batch: the later values win.
                (UpdateParams(opened.location_id, None, ("UQ", True), links,
                              parse_registration(links)), moved),
            ],
            now=later,
        )  # fmt: skip
    refusals = [getattr(a, "coap_code", None) for a in answers[1:3]]
    assert refusals == [CoapCode.NOT_FOUND, CoapCode.FORBIDDEN]
    assert answers[0].address == answers[3].address == "127.0.0.1:40009"
    assert answers[3].queue_mode and answers[3].content_format == 112

    async with db.session() as session:
        rows = {
            r.location_id: r
            for r in await session.scalars(select(Registration).order_by(Registration.id))
        }
        opened_row, psk_row = rows[opened.location_id], rows[psk.location_id]
        assert (opened_row.lifetime_s, opened_row.binding, opened_row.queue_mode) == (
            600, "UQ", True
        )
        assert opened_row.expires_at == later + timedelta(seconds=600)
        assert opened_row.address == "127.0.0.1:40009"
        assert opened_row.content_format == 112 and opened_row.links_text == links
        assert [o["object_id"] for o in opened_row.objects] == [1, 3]
        # The refused Update of the PSK terminal changed nothing.
        assert (psk_row.lifetime_s, psk_row.updated_at) == (300, start)
        seen = {
            endpoint: at
            for endpoint, at in await session.execute(
                select(Terminal.endpoint, Terminal.last_seen_at)
            )
        }
        assert seen["pos-open"] == later and seen["pos-psk"] == start

"""Migrations keep data; a restart keeps every terminal and its last known state."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, inspect, text

from dm_server.db import migrate
from dm_server.db.session import sync_url
from dm_server.server import start_server
from tests.server.conftest import coap_uri
from tests.server.test_operations import registered

pytestmark = pytest.mark.db

FIRST_REVISION = "0001"


def test_upgrade_from_first_migration_to_head_keeps_data(database_url):
    migrate.upgrade(database_url, FIRST_REVISION)
    engine = create_engine(sync_url(database_url))
    now = datetime(2026, 11, 1, tzinfo=UTC)
    with engine.begin() as db:
        db.execute(
            text(
                "INSERT INTO accounts (id, parent_id, path, role, username, password_hash,"
                " display_name, locale, disabled, failed_logins, created_at)"
                " VALUES (1, NULL, '/1/', 'ADMIN', 'admin', 'x', 'Admin', 'en', false, 0, :now)"
            ),
            {"now": now},
        )
        db.execute(
            text(
                "INSERT INTO terminals (id, endpoint, owner_id, security_mode, psk_identity,"
                " psk_key, trading_state, state_changed_at, last_seen_at, created_at)"
                " VALUES (1, 'pos-old', 1, 'PSK', 'id-old', :key, 'IDLE', :now, :now, :now)"
            ),
            {"now": now, "key": b"0123456789abcdef"},
        )
        db.execute(
            text(
                "INSERT INTO registrations (terminal_id, location_id, lifetime_s, lwm2m_version,"
                " binding, queue_mode, scheme, address, links_text, objects, content_format,"
                " registered_at, updated_at, expires_at, end_reason)"
                " VALUES (1, 'abc123', 300, '1.1', 'U', false, 'coaps', '10.0.0.5:5683',"
                " '</3/0>', '[]', 112, :now, :now, :now, '')"
            ),
            {"now": now},
        )
        db.execute(
            text(
                "INSERT INTO events (terminal_id, event_uid, kind, amount, currency, data, source,"
                " received_at) VALUES (1, 'evt-1', 'sale', 1500, 'KRW', '{}', 'send', :now)"
            ),
            {"now": now},
        )
    engine.dispose()

    migrate.upgrade(database_url, "head")

    engine = create_engine(sync_url(database_url))
    with engine.connect() as db:
        terminal = db.execute(
            text(
                "SELECT endpoint, psk_identity, psk_key, auto_accepted, firmware_version, owner_id"
                " FROM terminals"
            )
        ).one()
        assert terminal == ("pos-old", "id-old", b"0123456789abcdef", False, None, 1)
        assert db.execute(text("SELECT location_id, address FROM registrations")).one() == (
            "abc123",
            "10.0.0.5:5683",
        )
        assert db.execute(text("SELECT event_uid, amount FROM events")).one() == ("evt-1", 1500)
        assert db.execute(text("SELECT username, path FROM accounts")).one() == ("admin", "/1/")
        assert "observations" in inspect(db).get_table_names()
    engine.dispose()
    # And back down to the first revision, still with the data.
    migrate.downgrade(database_url, FIRST_REVISION)
    engine = create_engine(sync_url(database_url))
    with engine.connect() as db:
        assert db.execute(text("SELECT endpoint FROM terminals")).scalar() == "pos-old"
    engine.dispose()


async def test_restart_keeps_terminals_registrations_and_values(settings, terminals):
    first = await start_server(settings, extensions=[])
    try:
        import httpx

        from tests.server.conftest import ADMIN_PASSWORD

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{first.http_port}") as api:
            token = (
                await api.post(
                    "/api/v1/auth/token", data={"username": "admin", "password": ADMIN_PASSWORD}
                )
            ).json()["access_token"]
            api.headers["Authorization"] = f"Bearer {token}"
            terminal = await registered(first, api, terminals, endpoint="pos-keep")
            await api.post("/api/v1/terminals/pos-keep/read", json={"path": "/3/0"})
            await api.post("/api/v1/terminals/pos-keep/observe", json={"path": "/3/0/3"})
    finally:
        await first.stop()

    # Same database and data folder, and the terminal keeps its socket (and NAT mapping).
    second = await start_server(settings, extensions=[])
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{second.http_port}") as api:
            token = (
                await api.post(
                    "/api/v1/auth/token", data={"username": "admin", "password": ADMIN_PASSWORD}
                )
            ).json()["access_token"]
            api.headers["Authorization"] = f"Bearer {token}"
            detail = (await api.get("/api/v1/terminals/pos-keep")).json()
            assert detail["trading_state"] == "idle"
            assert detail["registration"]["ended_at"] is None
            assert detail["firmware_version"] == "1.0.0"
            assert any(v["path"] == "/3/0/2" and v["value"] == "SN-0001" for v in detail["values"])
            # Plain CoAP terminals are reachable at their stored address right away.
            answer = await api.post("/api/v1/terminals/pos-keep/read", json={"path": "/3/0/1"})
            assert answer.json()["value"] == "PT-100", answer.text
            # Its Update is recognised (same registration id) after the restart.
            terminal.server = coap_uri(second)
            assert (await terminal.update()).code.is_successful()
    finally:
        await second.stop()

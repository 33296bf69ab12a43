"""Fixtures: a real DM server on loopback ephemeral ports with a real database.

The database is a SQLite file in the test's tmp folder, or, when
POSFLEET_TEST_DATABASE_URL names a PostgreSQL server, a fresh database created there for
the test and dropped after it (so parallel runs and other suites never collide).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from dm_server.server import DmServer, start_server
from dm_server.settings import Settings
from tests.databases import database_for_test
from tests.server.fake_terminal import FakeTerminal

# No SO_REUSEPORT on test sockets: another process binding port 0 could share them.
os.environ["AIOCOAP_REUSE_PORT"] = "0"

ADMIN_PASSWORD = "admin-test-password"


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    with database_for_test(tmp_path, "posfleet_srv") as url:
        yield url


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        bind="127.0.0.1",
        coap_port=0,
        coaps_port=0,
        http_port=0,
        data_dir=tmp_path,
        database_url=database_url,
        admin_user="admin",
        admin_password=ADMIN_PASSWORD,
        request_timeout_s=3.0,
        expiry_sweep_s=0.2,
        min_lifetime_s=1,
        queue_awake_s=0.0,
        log_level="WARNING",
    )


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[DmServer]:
    running = await start_server(settings, extensions=[])
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def api(server: DmServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{server.http_port}", timeout=15
    ) as client:
        answer = await client.post(
            "/api/v1/auth/token", data={"username": "admin", "password": ADMIN_PASSWORD}
        )
        assert answer.status_code == 200, answer.text
        client.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
        yield client


@pytest.fixture
async def terminals(server: DmServer) -> AsyncIterator[list[FakeTerminal]]:
    """Started fake terminals are appended here and stopped after the test."""
    started: list[FakeTerminal] = []
    yield started
    for terminal in started:
        await terminal.stop()


async def new_terminal(
    server: DmServer,
    started: list[FakeTerminal],
    endpoint: str,
    credentials: dict[str, object] | None = None,
) -> FakeTerminal:
    terminal = await FakeTerminal(endpoint, server.model).start(credentials)
    started.append(terminal)
    return terminal


def coap_uri(server: DmServer) -> str:
    return f"coap://127.0.0.1:{server.coap_port}"

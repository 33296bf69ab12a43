"""The agent and the simulator against the real DM server (in-process, loopback, real DB):
DTLS-PSK registration, REST operations through to the agent, Send into the event store,
firmware from the server's package store, and one-command provisioning of a fleet."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

import dm_server.firmware
from device_client.agent import Agent, run_terminal
from device_client.simulator import Fleet, TradingProfile, make_terminals, write_csv
from dm_server.server import DmServer, start_server
from dm_server.settings import Settings
from lwm2m_core.numbers import FirmwareUpdateResult
from posfleet.licence_token import load_or_create_signing_key, public_key_text
from tests.databases import database_for_test
from tests.device.conftest import wait_registered
from tests.device.test_firmware import make_package

pytestmark = pytest.mark.db
ADMIN_PASSWORD = "device-test-password"


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    with database_for_test(tmp_path, "posfleet_dev") as url:
        yield url


@pytest.fixture
async def dm(tmp_path: Path, database_url: str) -> AsyncIterator[DmServer]:
    settings = Settings(database_url=database_url,
        bind="127.0.0.1", coap_port=0, coaps_port=0, http_port=0, data_dir=tmp_path / "srv",
        admin_user="admin", admin_password=ADMIN_PASSWORD, request_timeout_s=5.0,
        log_level="WARNING", rate_limit_per_s=5000, rate_limit_burst=5000,
    )
    settings.data_dir.mkdir(parents=True)
    server = await start_server(settings, extensions=[dm_server.firmware])
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def api(dm: DmServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{dm.http_port}",
                                 timeout=15) as client:
        answer = await client.post("/api/v1/auth/token",
                                   data={"username": "admin", "password": ADMIN_PASSWORD})
        assert answer.status_code == 200, answer.text
        client.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
        yield client


def manufacturer(dm: DmServer):  # type: ignore[no-untyped-def]
    return load_or_create_signing_key(dm.settings.resolved_licence_key_file)


async def operate(api: httpx.AsyncClient, endpoint: str, op: str, **body) -> dict:  # type: ignore[no-untyped-def,type-arg]
    answer = await api.post(f"/api/v1/terminals/{endpoint}/{op}", json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


async def test_dtls_agent_is_managed_through_the_rest_api(dm, api, tmp_path):
    key = bytes(range(16))
    answer = await api.post("/api/v1/terminals", json={
        "endpoint": "t-dtls", "security_mode": "psk", "psk_identity": "t-dtls",
        "psk_key_hex": key.hex()})
    assert answer.status_code == 201, answer.text
    from device_client.settings import TerminalSettings

    settings = TerminalSettings(
        server_uri=f"coaps://127.0.0.1:{dm.coaps_port}", endpoint="t-dtls",
        psk_identity="t-dtls", psk_key=key, data_dir=tmp_path / "t-dtls",
        manufacturer_key=public_key_text(manufacturer(dm).public_key()),
        backoff_initial=0.1, backoff_max=1.0, send_interval=0.05)
    agent = Agent(settings)
    await agent.start()
    try:
        await wait_registered(agent, timeout=10)
        result = await operate(api, "t-dtls", "read", path="/3/0/2")
        assert result["status"] == "done", result
        assert "SN-t-dtls" in str(result)
        # /3/0/15 rather than a POS Terminal resource: the server observes /26241/0/0 itself.
        result = await operate(api, "t-dtls", "write", path="/3/0/15", value="Europe/Berlin",
                               format="text")
        assert result["status"] == "done", result
        assert agent.device.values[15] == "Europe/Berlin"
        agent.pos.open_shift("kim")
        sale = agent.pos.sale(9900)
        async with asyncio.timeout(10):
            while agent.store.pending_count():
                await asyncio.sleep(0.05)
        events = (await api.get("/api/v1/terminals/t-dtls/events")).json()
        assert sale.event_id in {e["event_uid"] for e in events["items"]}
    finally:
        await agent.stop()


async def test_firmware_from_the_server_store(dm, api, tmp_path):
    await api.post("/api/v1/terminals", json={"endpoint": "t-fw", "security_mode": "nosec"})
    package = make_package(manufacturer(dm), tmp_path, "2.0.0")
    answer = await api.post("/api/v1/firmware", content=package)
    assert answer.status_code == 201, answer.text
    info = answer.json()
    listed = (await api.get("/api/v1/firmware")).json()
    assert [p["version"] for p in listed] == ["2.0.0"]
    # HTTP download with a Range, as a resuming terminal does.
    part = await api.get(info["http_path"], headers={"Range": "bytes=100-"})
    assert part.status_code == 206 and part.content == package[100:]

    from device_client.settings import TerminalSettings

    settings = TerminalSettings(
        server_uri=f"coap://127.0.0.1:{dm.coap_port}", endpoint="t-fw",
        data_dir=tmp_path / "t-fw", firmware_confirm_timeout=10,
        manufacturer_key=public_key_text(manufacturer(dm).public_key()),
        backoff_initial=0.1, backoff_max=1.0)
    stop = asyncio.Event()
    task = asyncio.create_task(run_terminal(settings, stop))
    try:
        async with asyncio.timeout(10):
            while (await api.get("/api/v1/terminals/t-fw")).json().get("registration") is None:
                await asyncio.sleep(0.1)
        uri = f"coap://127.0.0.1:{dm.coap_port}/fw/{info['file']}"
        result = await operate(api, "t-fw", "write", path="/5/0/1", value=uri, format="text")
        assert result["status"] == "done", result
        async with asyncio.timeout(15):
            while "2" not in str((await operate(api, "t-fw", "read", path="/5/0/3"))["value"]):
                await asyncio.sleep(0.1)
        assert (await operate(api, "t-fw", "execute", path="/5/0/2"))["status"] == "done"
        async with asyncio.timeout(20):
            while True:
                try:
                    result = await operate(api, "t-fw", "read", path="/5/0/5")
                    if str(int(FirmwareUpdateResult.SUCCESS)) == str(result.get("value")):
                        break
                except AssertionError:
                    pass  # restarting
                await asyncio.sleep(0.2)
        result = await operate(api, "t-fw", "read", path="/3/0/3")
        assert result["value"] == "2.0.0", result

        # The next version over HTTP (pull with Range support on the server side).
        answer = await api.post("/api/v1/firmware",
                                content=make_package(manufacturer(dm), tmp_path, "2.1.0"))
        http_uri = f"http://127.0.0.1:{dm.http_port}{answer.json()['http_path']}"
        result = await operate(api, "t-fw", "write", path="/5/0/1", value=http_uri,
                               format="text")
        assert result["status"] == "done", result
        async with asyncio.timeout(15):
            while "2" not in str((await operate(api, "t-fw", "read", path="/5/0/3"))["value"]):
                await asyncio.sleep(0.1)
        result = await operate(api, "t-fw", "read", path="/5/0/7")
        assert result["value"] == "2.1.0", result
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_simulated_fleet_provisioned_in_one_go(dm, api, tmp_path):
    terminals = make_terminals(6, prefix="simx", secure=True)
    csv_path = tmp_path / "fleet.csv"
    write_csv(terminals, csv_path)
    answer = await api.post("/api/v1/terminals/import", content=csv_path.read_bytes(),
                            headers={"Content-Type": "text/csv"})
    assert answer.status_code == 201, answer.text
    fleet = Fleet(f"coaps://127.0.0.1:{dm.coaps_port}", terminals, tmp_path / "fleet",
                  profile=TradingProfile(sales_per_hour=3600 * 4, speed=1.0),
                  flaky_share=0.0, seed=3, start_rate=50)
    await fleet.start()
    try:
        assert await fleet.wait_registered(15) == 6
        async with asyncio.timeout(15):
            while fleet.stats().events_sent < 12:
                await asyncio.sleep(0.2)
        state = (await api.get("/api/v1/fleet/state")).json()
        assert state.get("offline", 0) == 0, state
        assert sum(state.values()) >= 6
    finally:
        await fleet.stop()

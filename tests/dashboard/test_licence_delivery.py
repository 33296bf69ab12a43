"""The whole licence loop over real CoAP: the server signs and writes the token into a real
terminal agent's POS License object, the agent verifies it offline, and the server shows
the terminal's verdict. A token for another terminal is refused and changes nothing."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace

import httpx
import pytest

from device_client.agent import run_terminal
from device_client.settings import TerminalSettings
from dm_server.server import start_server

from .conftest import PASSWORD

pytestmark = pytest.mark.db

REGISTER_WAIT_S = 15.0


async def _wait_for(predicate, timeout: float) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.2)
    raise AssertionError("condition not reached in time")


async def test_issue_write_verify_report(settings, tmp_path) -> None:
    import dashboard

    server = await start_server(
        replace(settings, bind="127.0.0.1", coap_port=0, coaps_port=-1, http_port=0,
                admin_password=PASSWORD, log_level="WARNING"),
        extensions=[dashboard],
    )
    stop = asyncio.Event()
    agent_task = None
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}") as api:
            token = (await api.post("/api/v1/auth/token",
                                    data={"username": "admin", "password": PASSWORD})).json()
            headers = {"Authorization": f"Bearer {token['access_token']}"}
            key = (await api.get("/api/v1/licences/public-key", headers=headers)).json()
            for endpoint in ("pos-a", "pos-b"):
                response = await api.post("/api/v1/terminals", headers=headers, json={
                    "endpoint": endpoint, "security_mode": "nosec"})
                assert response.status_code == 201, response.text
            # Offline: the write waits in the queue (with the read-back behind it).
            queued = await api.post("/api/v1/licences", headers=headers, json={
                "endpoint": "pos-a", "edition": "premium", "features": ["loyalty"],
                "days": 30})
            assert queued.status_code == 201, queued.text
            assert queued.json()["delivery"] == "queued", queued.json()
            terminal = TerminalSettings(
                server_uri=f"coap://127.0.0.1:{server.coap_port}", endpoint="pos-a",
                data_dir=tmp_path / "terminal", manufacturer_key=key["public_key"],
                lifetime=60,
            )
            agent_task = asyncio.create_task(run_terminal(terminal, stop))

            async def registered() -> bool:
                detail = await api.get("/api/v1/terminals/pos-a", headers=headers)
                return detail.json().get("trading_state") in ("idle", "running")

            await _wait_for(registered, REGISTER_WAIT_S)
            licence_url = f"/api/v1/licences/{queued.json()['id']}"

            async def reported_valid() -> bool:
                licence = (await api.get(licence_url, headers=headers)).json()
                return licence["delivery"] == "written" and licence["reported_state"] == "valid"

            await _wait_for(reported_valid, REGISTER_WAIT_S)

            # Online: renewing writes at once and reads the verdict back.
            renewed = await api.post(f"{licence_url}/renew", headers=headers,
                                     json={"days": 365})
            assert renewed.status_code == 200, renewed.text
            licence = renewed.json()
            assert licence["delivery"] == "written", licence
            assert licence["reported_state"] == "valid", licence
            assert licence["replaces_id"] == queued.json()["id"]

            # A token signed for pos-b, written to pos-a, is refused by the terminal.
            other = await api.post("/api/v1/licences", headers=headers, json={
                "endpoint": "pos-b", "edition": "basic", "days": 30})
            write = await api.post("/api/v1/terminals/pos-a/write", headers=headers, json={
                "path": "/26242/0/0", "value": other.json()["token"]})
            status = await api.post("/api/v1/terminals/pos-a/read", headers=headers,
                                    json={"path": "/26242/0/1"})
            # The agent refuses it (4.00) and keeps its valid licence.
            assert write.json()["code"] == "4.00", write.json()
            assert status.json()["value"] == 0, status.json()
    finally:
        stop.set()
        if agent_task is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(agent_task, 10)
        await server.stop()

"""lwm2m-node-lib's client (npm, an LwM2M 1.0 client) managed by our server via the REST API.

The client registers as LwM2M 1.0, answers in plain text without a Content-Format, stores
whatever a Write carries, and silently drops any request whose Accept or Content-Format is
a number it does not know (TLV 11542, SenML 110/112): it only speaks text. The server must
pick text for single values of a 1.0 client by itself, and honour ``"format": "text"``.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.interop.peers import STEP_TIMEOUT, InteractivePeer
from tests.interop.servers import ServerProcess

DEVICE = 3
TEXT = "text"
#: How long the REST API may take to show a notification the client sent.
NOTIFY_WAIT_S = 10.0
POLL_S = 0.2


async def connect(node_client: InteractivePeer, server: ServerProcess, endpoint: str) -> str:
    """Give the client a Device object, register it, return its registration location."""
    await node_client.command("create /3/0", r"ObjectUri: /3/0")
    await node_client.command("set /3/0 0 ACME", r"-> 0: ACME")
    await node_client.command("set /3/0 1 Model-1", r"-> 1: Model-1")
    await node_client.command("set /3/0 4 reboot", r"-> 4: reboot")
    match = await node_client.command(
        f"connect 127.0.0.1 {server.coap_port} {endpoint} /", r"Device location: (\S+)"
    )
    return match[1]


async def operation(server: ServerProcess, endpoint: str, name: str, body: dict) -> dict:
    async with server.api() as api:
        reply = await api.post(f"/terminals/{endpoint}/{name}", json=body)
    assert reply.status_code == 200, f"{name} {body}: {reply.status_code} {reply.text}"
    result = reply.json()
    assert result["status"] == "done", f"{name} {body}: {result}"
    return result


async def terminal(server: ServerProcess, endpoint: str) -> dict:
    async with server.api() as api:
        reply = await api.get(f"/terminals/{endpoint}")
    assert reply.status_code == 200, reply.text
    return reply.json()


async def test_node_client_registers_is_executed_discovered_and_deregisters(
    dm_server: ServerProcess, node_client: InteractivePeer
) -> None:
    endpoint = f"node-{uuid.uuid4().hex[:10]}"
    location = await connect(node_client, dm_server, endpoint)
    registered = await terminal(dm_server, endpoint)
    assert registered["trading_state"] != "offline"
    assert registered["registration"]["location"] == "/" + location
    assert registered["registration"]["lwm2m_version"] == "1.0"
    assert registered["registration"]["objects"][0]["object_id"] == DEVICE

    await operation(dm_server, endpoint, "execute", {"path": "/3/0/4"})
    await node_client.expect(
        r"Command executed:\s+-+\s+-> ObjectType: 3\s+-> ObjectId: 0\s+-> ResourceId: 4"
    )

    discovered = await operation(dm_server, endpoint, "discover", {"path": "/3/0"})
    assert "/3/0/0" in str(discovered["value"]), discovered

    await node_client.command("disconnect", r"Disconnected", STEP_TIMEOUT)
    assert (await terminal(dm_server, endpoint))["trading_state"] == "offline"


@pytest.mark.parametrize("fmt", [None, TEXT], ids=["servers-choice", "text"])
async def test_node_client_is_read_written_and_observed(
    dm_server: ServerProcess, node_client: InteractivePeer, fmt: str | None
) -> None:
    endpoint = f"node-{uuid.uuid4().hex[:10]}"
    await connect(node_client, dm_server, endpoint)
    chosen = {} if fmt is None else {"format": fmt}

    read = await operation(dm_server, endpoint, "read", {"path": "/3/0/0", **chosen})
    assert read["value"] == "ACME", read
    await node_client.expect(r"-> ResourceId: 0")

    await operation(dm_server, endpoint, "write", {"path": "/3/0/1", "value": "Model-2", **chosen})
    await node_client.expect(r"-> Written value: Model-2")

    observed = await operation(dm_server, endpoint, "observe", {"path": "/3/0/0", **chosen})
    assert observed["value"] == "ACME", observed
    await node_client.command("set /3/0 0 BETA", r"-> 0: BETA")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + NOTIFY_WAIT_S
    while True:
        values = {v["path"]: v["value"] for v in (await terminal(dm_server, endpoint))["values"]}
        if values.get("/3/0/0") == "BETA":
            break
        assert loop.time() < deadline, f"the notification never reached the values: {values}"
        await asyncio.sleep(POLL_S)

"""lwm2m-node-lib's client (npm, an LwM2M 1.0 client) managed by our server via the REST API.

The client registers as LwM2M 1.0, answers in plain text without a Content-Format (or with
the pre-standard 1541), and stores whatever a Write carries; so these tests prove the
server's content negotiation with an old, loose peer, not only with our own agent.
"""

from __future__ import annotations

import asyncio
import uuid

from tests.interop.peers import STEP_TIMEOUT, InteractivePeer
from tests.interop.servers import ServerProcess

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
    return reply.json()


async def terminal(server: ServerProcess, endpoint: str) -> dict:
    async with server.api() as api:
        reply = await api.get(f"/terminals/{endpoint}")
    assert reply.status_code == 200, reply.text
    return reply.json()


async def test_node_client_is_registered_read_written_executed_and_observed(
    dm_server: ServerProcess, node_client: InteractivePeer
) -> None:
    endpoint = f"node-{uuid.uuid4().hex[:10]}"
    location = await connect(node_client, dm_server, endpoint)
    assert location.startswith("rd/")
    assert (await terminal(dm_server, endpoint))["state"] != "offline"

    read = await operation(dm_server, endpoint, "read", {"path": "/3/0/0"})
    assert "ACME" in str(read), read
    await node_client.expect(r"-> ResourceId: 0")

    await operation(dm_server, endpoint, "write", {"path": "/3/0/1", "value": "Model-2"})
    await node_client.expect(r"-> Written value: Model-2")

    await operation(dm_server, endpoint, "execute", {"path": "/3/0/4"})
    await node_client.expect(
        r"Command executed:\s+-+\s+-> ObjectType: 3\s+-> ObjectId: 0\s+"
        r"-> ResourceId: 4"
    )

    observed = await operation(dm_server, endpoint, "observe", {"path": "/3/0/0"})
    assert "ACME" in str(observed), observed
    await node_client.command("set /3/0 0 BETA", r"-> 0: BETA")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + NOTIFY_WAIT_S
    while "BETA" not in str(await terminal(dm_server, endpoint)):
        assert loop.time() < deadline, "the notification never reached the terminal's values"
        await asyncio.sleep(POLL_S)

    await node_client.command("disconnect", r"Disconnected", STEP_TIMEOUT)
    assert (await terminal(dm_server, endpoint))["state"] == "offline"

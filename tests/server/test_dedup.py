"""The deduplication window with the swept expiry queue (dm_server.lwm2m.tuning), over
real UDP on loopback against a real aiocoap server context."""

from __future__ import annotations

import asyncio
import socket

import aiocoap
import aiocoap.resource as resource
import pytest
from aiocoap.numbers.constants import TransportTuning
from aiocoap.numbers.types import Type

from dm_server.lwm2m import tuning


class Counting(resource.Resource):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    async def render_post(self, request: aiocoap.Message) -> aiocoap.Message:
        self.calls += 1
        return aiocoap.Message(code=aiocoap.CHANGED, payload=str(self.calls).encode())


@pytest.fixture
async def server():
    tuning.apply(60)
    counting = Counting()
    site = resource.Site()
    site.add_resource(("count",), counting)
    context = await aiocoap.Context.create_server_context(
        site, bind=("127.0.0.1", 0), transports=["udp6"]
    )
    port = next(
        i.token_interface.message_interface.transport.get_extra_info("socket").getsockname()[1]
        for i in context.request_interfaces
    )
    try:
        yield counting, port
    finally:
        await context.shutdown()
        tuning.restore()


def confirmable_post(mid: int) -> bytes:
    message = aiocoap.Message(code=aiocoap.POST, uri_path=("count",), payload=b"x")
    message.mtype, message.mid, message.token = Type.CON, mid, b"\x01\x02"
    return message.encode()


async def exchange(port: int, datagram: bytes) -> aiocoap.Message:
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", port))
        await loop.sock_sendall(sock, datagram)
        async with asyncio.timeout(5):
            return aiocoap.Message.decode(await loop.sock_recv(sock, 2048))


async def test_a_retransmission_is_answered_from_the_cache_not_processed_again(server):
    counting, port = server
    first = await exchange(port, confirmable_post(4242))
    again = await exchange(port, confirmable_post(4242))
    # The second socket has another port, so to aiocoap it is another sender: processed.
    assert counting.calls == 2
    assert first.payload == b"1" and again.payload == b"2"

    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", port))
        answers = []
        for _ in range(2):  # the same sender retransmits the same message
            await loop.sock_sendall(sock, confirmable_post(777))
            async with asyncio.timeout(5):
                answers.append(aiocoap.Message.decode(await loop.sock_recv(sock, 2048)))
    assert counting.calls == 3
    assert [a.payload for a in answers] == [b"3", b"3"]
    assert answers[0].mid == answers[1].mid == 777


async def test_a_message_is_forgotten_after_its_lifetime(server, monkeypatch):
    counting, port = server
    monkeypatch.setattr(TransportTuning, "EXCHANGE_LIFETIME", 0.2)
    monkeypatch.setattr(tuning, "SWEEP_INTERVAL_S", 0.1)
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", port))
        payloads = []
        for pause in (0.0, 0.0, 0.6):
            await asyncio.sleep(pause)
            await loop.sock_sendall(sock, confirmable_post(9))
            async with asyncio.timeout(5):
                payloads.append(aiocoap.Message.decode(await loop.sock_recv(sock, 2048)).payload)
    # Within the lifetime: the cached answer; after it: processed anew.
    assert payloads == [b"1", b"1", b"2"]
    assert counting.calls == 2


def test_restore_puts_aiocoaps_own_back():
    from aiocoap.messagemanager import MessageManager

    original = MessageManager._deduplicate_message
    tuning.apply(60)
    assert MessageManager._deduplicate_message is not original
    assert TransportTuning.EXCHANGE_LIFETIME == 60
    tuning.restore()
    assert MessageManager._deduplicate_message is original
    assert TransportTuning().EXCHANGE_LIFETIME > 200

"""Send ingestion (idempotent events) and bad input on the CoAP side."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime

import aiocoap
import pytest
from aiocoap.numbers.codes import Code

from lwm2m_core.codec.records import Record
from lwm2m_core.numbers import ContentFormat
from lwm2m_core.path import LwM2mPath
from tests.server.conftest import coap_uri, new_terminal
from tests.server.test_operations import registered

pytestmark = pytest.mark.db


def sale(instance: int, uid: str, amount: int) -> list[Record]:
    base = LwM2mPath(26243, instance)
    when = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)
    return [
        Record(base.child(0), uid),
        Record(base.child(1), "sale"),
        Record(base.child(2), when),
        Record(base.child(3), amount),
        Record(base.child(4), "KRW"),
        Record(base.child(5), "cashier-7"),
        Record(base.child(10), True),
    ]


@pytest.mark.parametrize("fmt", [ContentFormat.SENML_CBOR, ContentFormat.SENML_JSON])
async def test_send_stores_each_event_once(server, api, terminals, fmt):
    terminal = await registered(server, api, terminals)
    records = sale(0, "evt-a", 12000) + sale(1, "evt-b", 3500) + [Record(LwM2mPath(26241, 0, 0), 1)]
    assert (await terminal.send(records, fmt)).code == Code.CHANGED
    # The terminal did not see our answer and sends again, with one new event.
    assert (await terminal.send(records + sale(2, "evt-c", 800), fmt)).code == Code.CHANGED
    page = (await api.get("/api/v1/terminals/pos-op/events")).json()
    assert page["total"] == 3
    by_uid = {e["event_uid"]: e for e in page["items"]}
    assert by_uid["evt-a"]["amount"] == 12000 and by_uid["evt-a"]["currency"] == "KRW"
    assert by_uid["evt-a"]["kind"] == "sale"
    assert by_uid["evt-a"]["occurred_at"] == "2026-11-22T09:30:00Z"
    assert by_uid["evt-a"]["data"]["Cashier ID"] == "cashier-7"
    assert by_uid["evt-a"]["data"]["Customer Present"] is True
    # The other record in the Send is a last known value: trading state Running.
    assert (await api.get("/api/v1/terminals/pos-op")).json()["trading_state"] == "running"


async def test_a_send_larger_than_a_datagram_arrives_in_blocks(server, api, terminals):
    # A terminal back from an outage sends its backlog: more than one CoAP block
    # (Block1), reassembled by the server before it is decoded and stored.
    terminal = await registered(server, api, terminals)
    records = [r for i in range(40) for r in sale(i, f"backlog-{i:02d}", 1000 + i)]
    answer = await terminal.send(records, ContentFormat.SENML_JSON)
    assert answer.code == Code.CHANGED
    page = (await api.get("/api/v1/terminals/pos-op/events", params={"limit": 100})).json()
    assert page["total"] == 40
    assert {e["event_uid"] for e in page["items"]} == {f"backlog-{i:02d}" for i in range(40)}


async def test_send_refusals(server, api, terminals):
    terminal = await registered(server, api, terminals)
    uri = f"{coap_uri(server)}/dp"
    answer = await terminal.request(
        aiocoap.POST, uri, b"\xff\x00garbage", content_format=ContentFormat.SENML_CBOR
    )
    assert answer.code == Code.BAD_REQUEST
    answer = await terminal.request(aiocoap.POST, uri, b"hello", content_format=ContentFormat.TEXT)
    assert answer.code == Code.UNSUPPORTED_CONTENT_FORMAT
    # An event without its Event ID cannot be stored once: refused, nothing stored.
    no_id = [r for r in sale(0, "x", 1) if r.path.resource_id != 0]
    assert (await terminal.send(no_id)).code == Code.BAD_REQUEST
    # Someone who is not registered may not send.
    stranger = await new_terminal(server, terminals, "stranger")
    stranger.server = coap_uri(server)
    assert (await stranger.send(sale(0, "evt-z", 1))).code == Code.FORBIDDEN
    assert (await api.get("/api/v1/terminals/pos-op/events")).json()["total"] == 0


async def test_oversized_payload_and_garbage_datagrams(server, api, terminals):
    terminal = await registered(server, api, terminals)
    big = b"</3/0>," * (server.settings.max_payload_bytes // 7 + 10)
    answer = await terminal.request(
        aiocoap.POST, f"{coap_uri(server)}/rd?ep=pos-op", big, content_format=ContentFormat.LINK
    )
    assert answer.code in (Code.REQUEST_ENTITY_TOO_LARGE, Code.BAD_REQUEST)
    # Garbage datagrams: silence, and the server keeps serving.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
        for junk in (b"", b"\x00", b"\xff" * 40, b"GET / HTTP/1.1\r\n\r\n", bytes(range(256))):
            raw.sendto(junk, ("127.0.0.1", server.coap_port))
    await asyncio.sleep(0.1)
    assert (await terminal.update()).code == Code.CHANGED


async def test_flood_from_one_address_is_rate_limited(settings, terminals):
    from dataclasses import replace

    from dm_server.server import start_server
    from tests.server.fake_terminal import FakeTerminal

    limited = await start_server(
        replace(settings, rate_limit_per_s=5, rate_limit_burst=10), extensions=[]
    )
    try:
        flooder = await FakeTerminal("flooder", limited.model).start()
        terminals.append(flooder)
        uri = f"{coap_uri(limited)}/rd/nothing"
        codes = await asyncio.gather(*(flooder.request(aiocoap.POST, uri) for _ in range(30)))
        counted = [c.code for c in codes]
        assert counted.count(Code.TOO_MANY_REQUESTS) >= 15
        assert Code.NOT_FOUND in counted
    finally:
        await limited.stop()

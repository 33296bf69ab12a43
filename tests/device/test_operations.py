"""DM operations on the agent over real CoAP on loopback, with the spec's response codes."""

from __future__ import annotations

import asyncio
import random

import aiocoap
import pytest
from aiocoap.numbers.codes import Code

from lwm2m_core import codec
from lwm2m_core.link import parse_links
from lwm2m_core.numbers import ContentFormat
from lwm2m_core.path import LwM2mPath
from tests.device.conftest import wait_registered

EP = "t-test"


async def test_read_resource_instance_object_in_several_formats(agent, stub):
    response = await stub.request(EP, Code.GET, "/3/0/2")
    assert response.code == Code.CONTENT
    assert response.payload == b"SN-t-test"
    for fmt in (ContentFormat.TLV, ContentFormat.SENML_CBOR, ContentFormat.SENML_JSON):
        response = await stub.request(EP, Code.GET, "/3/0", accept=fmt)
        assert response.code == Code.CONTENT
        assert response.opt.content_format == fmt
        node = stub.decode(response, "/3/0")
        assert node.resources[0].value == "PosFleet"
        assert 4 not in node.resources  # Reboot is executable, never read
    response = await stub.request(EP, Code.GET, "/26241", accept=ContentFormat.SENML_CBOR)
    node = stub.decode(response, "/26241")
    assert node.instances[0].resources[11].value == "KRW"


@pytest.mark.parametrize(
    ("path", "accept", "code"),
    [
        ("/3/1", None, Code.NOT_FOUND),          # missing instance
        ("/3/0/7", None, Code.NOT_FOUND),        # resource the terminal does not have
        ("/9999", None, Code.NOT_FOUND),         # object not implemented
        ("/3/0/abc", None, Code.NOT_FOUND),      # not a path
        ("/3/0/4", None, Code.METHOD_NOT_ALLOWED),  # executable resource
        ("/0/0", None, Code.UNAUTHORIZED),       # Security is not for a DM server
        ("/3/0", ContentFormat.TEXT, Code.NOT_ACCEPTABLE),  # text cannot carry an instance
        ("/3/0/0", 9999, Code.NOT_ACCEPTABLE),
    ],
)
async def test_read_errors(agent, stub, path, accept, code):
    response = await stub.request(EP, Code.GET, path, accept=accept)
    assert response.code == code, response.payload


async def test_write_replace_and_partial_update(agent, stub):
    response = await stub.request(EP, Code.PUT, "/26241/0/14", b"Gangnam store",
                                  content_format=ContentFormat.TEXT)
    assert response.code == Code.CHANGED
    assert (await stub.request(EP, Code.GET, "/26241/0/14")).payload == b"Gangnam store"
    # Partial update of an instance (POST) with SenML-JSON, two resources at once.
    payload = b'[{"bn":"/26241/0/","n":"13","vs":"S-7"},{"n":"15","vs":"08:30-21:00"}]'
    response = await stub.request(EP, Code.POST, "/26241/0", payload,
                                  content_format=ContentFormat.SENML_JSON)
    assert response.code == Code.CHANGED
    node = stub.decode(await stub.request(EP, Code.GET, "/26241/0", accept=ContentFormat.TLV),
                       "/26241/0")
    assert node.resources[13].value == "S-7"
    assert node.resources[14].value == "Gangnam store"
    assert node.resources[15].value == "08:30-21:00"


@pytest.mark.parametrize(
    ("path", "payload", "fmt", "code"),
    [
        ("/1/0/1", b"abc", ContentFormat.TEXT, Code.BAD_REQUEST),       # not an integer
        ("/1/0/1", b"5", ContentFormat.TEXT, Code.BAD_REQUEST),         # lifetime too short
        ("/3/0/0", b"ACME", ContentFormat.TEXT, Code.METHOD_NOT_ALLOWED),  # read-only
        ("/3/0/9", b"50", ContentFormat.TEXT, Code.METHOD_NOT_ALLOWED),  # read-only, absent
        ("/1/0/5", b"50", ContentFormat.TEXT, Code.NOT_FOUND),          # writable, absent
        ("/26241/0/15", b"25:00-26:00", ContentFormat.TEXT, Code.BAD_REQUEST),
        ("/5/0/3", b"1", ContentFormat.TEXT, Code.METHOD_NOT_ALLOWED),
        ("/1/0/1", b"\xff\xfe", ContentFormat.TLV, Code.BAD_REQUEST),    # malformed TLV
        ("/1/0/1", b"60", 4711, Code.UNSUPPORTED_CONTENT_FORMAT),
        ("/1/0", b"{not cbor", ContentFormat.SENML_CBOR, Code.BAD_REQUEST),
    ],
)
async def test_bad_writes_change_nothing(agent, stub, path, payload, fmt, code):
    before = stub.decode(await stub.request(EP, Code.GET, "/1/0", accept=ContentFormat.TLV), "/1/0")
    response = await stub.request(EP, Code.PUT, path, payload, content_format=fmt)
    assert response.code == code, response.payload
    after = stub.decode(await stub.request(EP, Code.GET, "/1/0", accept=ContentFormat.TLV), "/1/0")
    assert after == before


async def test_instance_write_is_all_or_nothing(agent, stub):
    # Lifetime is fine, Binding is not: neither may be applied.
    payload = b'[{"bn":"/1/0/","n":"1","v":120},{"n":"7","vs":"XYZ"}]'
    response = await stub.request(EP, Code.POST, "/1/0", payload,
                                  content_format=ContentFormat.SENML_JSON)
    assert response.code == Code.BAD_REQUEST
    assert (await stub.request(EP, Code.GET, "/1/0/1")).payload == b"60"


async def test_lifetime_write_sends_update_with_new_lifetime(agent, stub):
    updates = stub.state.registrations[EP].updates
    response = await stub.request(EP, Code.PUT, "/1/0/1", b"120", content_format=ContentFormat.TEXT)
    assert response.code == Code.CHANGED
    await stub.wait_for(lambda: stub.state.registrations[EP].updates > updates)
    assert stub.state.registrations[EP].lifetime == 120


async def test_execute(agent, stub):
    updates = stub.state.registrations[EP].updates
    assert (await stub.request(EP, Code.POST, "/1/0/8")).code == Code.CHANGED
    await stub.wait_for(lambda: stub.state.registrations[EP].updates > updates)
    # Execute on a readable resource, on an instance, with bad arguments:
    assert (await stub.request(EP, Code.POST, "/3/0/0")).code == Code.METHOD_NOT_ALLOWED
    assert (await stub.request(EP, Code.POST, "/3/0/5", b"0='wrong'")).code == Code.BAD_REQUEST
    assert (await stub.request(EP, Code.POST, "/26244/0/14", b"0=x")).code == Code.BAD_REQUEST
    assert (await stub.request(EP, Code.POST, "/26244/0/14", b"0='c-17'")).code == Code.CHANGED
    assert agent.insight.deleted == ["c-17"]


async def test_discover_and_write_attributes(agent, stub):
    response = await stub.request(EP, Code.PUT, "/26241/0/6", query=("pmin=2", "pmax=30", "gt=5"))
    assert response.code == Code.CHANGED
    response = await stub.request(EP, Code.GET, "/26241/0", accept=ContentFormat.LINK)
    assert response.code == Code.CONTENT
    links = {link.target: dict(link.params) for link in parse_links(response.payload)}
    assert links["/26241/0/6"] == {"pmin": 2, "pmax": 30, "gt": 5.0}
    response = await stub.request(EP, Code.GET, "/3/0/11", accept=ContentFormat.LINK)
    assert parse_links(response.payload)[0].params["dim"] == 1
    for query in (("pmin=x",), ("bogus=1",), ("pmin=10", "pmax=5"), ("lt=10", "gt=5")):
        response = await stub.request(EP, Code.PUT, "/26241/0/6", query=query)
        assert response.code == Code.BAD_REQUEST, query
    response = await stub.request(EP, Code.PUT, "/3/0/0", query=("gt=5",))  # text resource
    assert response.code == Code.BAD_REQUEST
    links = {link.target: dict(link.params) for link in parse_links(
        (await stub.request(EP, Code.GET, "/26241/0/6", accept=ContentFormat.LINK)).payload)}
    assert links["/26241/0/6"] == {"pmin": 2, "pmax": 30, "gt": 5.0}  # unchanged


async def test_create_and_delete(agent, stub):
    payload = b'[{"bn":"/10259/1/","n":"0","vs":"aiocoap"}]'
    response = await stub.request(EP, Code.POST, "/10259", payload,
                                  content_format=ContentFormat.SENML_JSON)
    assert response.code == Code.CREATED
    assert response.opt.location_path == ("10259", "1")
    await stub.wait_for(lambda: 1 in stub.state.registrations[EP].objects.get(10259, ()))
    assert (await stub.request(EP, Code.GET, "/10259/1/0")).payload == b"aiocoap"
    response = await stub.request(EP, Code.POST, "/3", payload,
                                  content_format=ContentFormat.SENML_JSON)
    assert response.code == Code.METHOD_NOT_ALLOWED
    assert (await stub.request(EP, Code.DELETE, "/10259/1")).code == Code.DELETED
    assert (await stub.request(EP, Code.GET, "/10259/1/0")).code == Code.NOT_FOUND
    assert (await stub.request(EP, Code.DELETE, "/10259/0")).code == Code.METHOD_NOT_ALLOWED
    assert (await stub.request(EP, Code.DELETE, "/3/0")).code == Code.METHOD_NOT_ALLOWED
    assert (await stub.request(EP, Code.DELETE, "/10259/7")).code == Code.NOT_FOUND


async def test_system_log_read(agent, stub):
    agent.log.info("printer paper low")
    response = await stub.request(EP, Code.GET, "/10259/0/1")
    assert response.code == Code.CONTENT
    assert b"printer paper low" in response.payload
    assert b"registered as t-test" in response.payload


async def test_observe_with_pmin_and_threshold(agent, stub):
    await stub.request(EP, Code.PUT, "/26241/0/6", query=("gt=1.5",))
    request = await stub.request(EP, Code.GET, "/26241/0/6", observe=0)
    first = await asyncio.wait_for(request.response, 5)
    assert first.code == Code.CONTENT and first.payload == b"0"
    notifications = request.observation.__aiter__()
    agent.pos.open_shift("kim")
    agent.pos.sale(1000)  # 1: does not cross gt=1.5, no notification
    agent.pos.sale(2000)  # 2: crosses it
    note = await asyncio.wait_for(notifications.__anext__(), 5)
    assert note.payload == b"2"
    request.observation.cancel()


async def test_observe_pmax_without_change(agent, stub):
    await stub.request(EP, Code.PUT, "/3/0/13", query=("pmax=1",))
    request = await stub.request(EP, Code.GET, "/3/0/13", observe=0)
    await asyncio.wait_for(request.response, 5)
    note = await asyncio.wait_for(request.observation.__aiter__().__anext__(), 3)
    assert note.code == Code.CONTENT
    request.observation.cancel()


async def test_garbage_never_breaks_the_agent(agent, stub):
    rng = random.Random(4)
    paths = ["/1/0", "/1/0/1", "/3/0/13", "/26241/0", "/5/0/1", "/10259", "/3/0/11/0", "/"]
    formats = [None, ContentFormat.TEXT, ContentFormat.TLV, ContentFormat.SENML_CBOR,
               ContentFormat.SENML_JSON, ContentFormat.OPAQUE, ContentFormat.LINK]
    for _ in range(60):
        payload = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 40)))
        code = rng.choice([Code.PUT, Code.POST, Code.GET, Code.DELETE, Code.FETCH])
        response = await stub.request(EP, code, rng.choice(paths), payload,
                                      content_format=rng.choice(formats))
        assert response.code.is_successful() or 128 <= int(response.code) < 160, response
    assert (await stub.request(EP, Code.GET, "/3/0/2")).payload == b"SN-t-test"


async def test_registration_payload_lists_instances_not_security(agent, stub):
    objects = stub.state.registrations[EP].objects
    assert 0 not in objects
    assert objects[3] == (0,) and objects[5] == (0,) and 26243 in objects


async def test_reregisters_when_server_forgot(agent, stub):
    stub.state.registrations.clear()
    agent.registration.trigger_update()
    await stub.wait_for(lambda: EP in stub.state.registrations)
    assert stub.state.register_count == 2


async def test_deregisters_on_stop(stub, make_settings):
    from device_client.agent import Agent

    a = Agent(make_settings(stub.uri, endpoint="t-stop"))
    await a.start()
    await wait_registered(a)
    await a.stop()
    assert stub.state.deregistered == ["t-stop"]


def test_send_payload_roundtrip(tmp_path, make_settings):
    """Send's SenML-CBOR decodes to the same event ids and times (no network)."""

    async def run():
        from device_client.agent import Agent

        a = Agent(make_settings("coap://127.0.0.1:9", endpoint="t-enc"))
        a.pos.open_shift("lee")
        sale = a.pos.sale(15000, items=3)
        records = codec.decode_records(a.send_payload([sale]), ContentFormat.SENML_CBOR, a.models)
        values = {r.path: r.value for r in records}
        assert values[LwM2mPath(26243, sale.sequence, 0)] == sale.event_id
        assert values[LwM2mPath(26243, sale.sequence, 3)] == 15000
        assert all(r.time == sale.time for r in records)
        a.store.close()

    asyncio.run(run())


async def test_block2_read_of_a_long_log_any_block_any_options(agent, stub):
    for number in range(80):
        agent.log.info("line %03d of a long log that needs several blocks", number)
    whole = await stub.request(EP, Code.GET, "/10259/0/1")  # aiocoap follows Block2
    assert whole.code == Code.CONTENT and b"line 079" in whole.payload
    assert len(whole.payload) > 2048
    # Like Wakaama: block 1 asked directly, with an (empty) Content-Format block 0 lacked.
    from aiocoap.optiontypes import BlockOption

    reg = stub.state.registrations[EP]
    message = aiocoap.Message(code=Code.GET, uri=f"coap://{reg.address}/10259/0/1")
    message.opt.block2 = BlockOption.BlockwiseTuple(1, False, 6)
    message.opt.content_format = 0
    response = await stub.context.request(message, handle_blockwise=False).response
    assert response.code == Code.CONTENT
    assert response.opt.block2.block_number == 1 and response.opt.etag
    assert response.payload == whole.payload[1024:2048]


async def test_gt_lt_on_a_time_resource(agent, stub):
    response = await stub.request(EP, Code.PUT, "/3/0/13", query=("gt=100", "lt=10"))
    assert response.code == Code.CHANGED


def test_backoff_is_jittered_and_bounded():
    from device_client.registration import backoff_delay

    rng = random.Random(1)
    for attempt in range(12):
        ceiling = min(60.0, 2.0 * 2**attempt)
        delays = [backoff_delay(attempt, 2.0, 60.0, rng) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) - min(delays) > ceiling * 0.5  # spread out, not one instant


async def test_registers_once_the_server_appears(make_settings):
    from device_client.agent import Agent
    from tests.device.stub_server import StubServer

    probe = await StubServer.start()
    port = probe.port
    await probe.stop()  # the port is free now: nobody answers there
    agent = Agent(make_settings(f"coap://127.0.0.1:{port}", endpoint="t-late",
                                request_timeout=0.3))
    await agent.start()
    await asyncio.sleep(0.5)
    assert not agent.registered
    server = await StubServer.start(port)
    try:
        await wait_registered(agent, timeout=10)
        assert "t-late" in server.state.registrations
    finally:
        await agent.stop()
        await server.stop()


async def test_factory_reset_refused_while_trading(agent, stub):
    agent.pos.open_shift("kim")
    response = await stub.request(EP, Code.POST, "/3/0/5", b"0='SN-t-test'")
    assert response.code == Code.SERVICE_UNAVAILABLE
    assert not agent.restart_reason.done()
    response = await stub.request(EP, Code.POST, "/3/0/5", b"0='SN-t-test',1='force'")
    assert response.code == Code.CHANGED
    assert await asyncio.wait_for(agent.restart_reason, 2) == "factory reset"


async def test_update_goes_out_before_the_lifetime_ends(stub, make_settings):
    from device_client.agent import Agent

    # Lifetime 10 s with the Update due when 90 % of it is left: after about 1 s.
    a = Agent(make_settings(stub.uri, endpoint="t-upd", lifetime=10, update_margin=0.9))
    await a.start()
    try:
        await wait_registered(a)
        await stub.wait_for(lambda: stub.state.registrations["t-upd"].updates >= 2, timeout=5)
        assert stub.state.register_count == 1
    finally:
        await a.stop()

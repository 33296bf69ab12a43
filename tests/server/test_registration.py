"""The registration interface over real CoAP: Register, Update, De-register, expiry."""

from __future__ import annotations

import asyncio

import aiocoap
import pytest
from aiocoap.numbers.codes import Code

from lwm2m_core.numbers import ContentFormat
from tests.server.conftest import coap_uri, new_terminal

pytestmark = pytest.mark.db


async def provision(api, endpoint: str, mode: str = "nosec", **extra: object) -> dict:
    answer = await api.post(
        "/api/v1/terminals", json={"endpoint": endpoint, "security_mode": mode, **extra}
    )
    assert answer.status_code == 201, answer.text
    return answer.json()[0]


async def state_of(api, endpoint: str) -> dict:
    answer = await api.get(f"/api/v1/terminals/{endpoint}")
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_register_update_deregister(server, api, terminals):
    await provision(api, "pos-1")
    terminal = await new_terminal(server, terminals, "pos-1")
    answer = await terminal.register(coap_uri(server), lifetime=60, binding="U")
    assert answer.code == Code.CREATED
    assert answer.opt.location_path[0] == "rd" and len(answer.opt.location_path) == 2

    detail = await state_of(api, "pos-1")
    assert detail["trading_state"] == "idle"
    registration = detail["registration"]
    assert registration["location"] == "/" + terminal.location
    assert registration["lwm2m_version"] == "1.1"
    assert {"object_id": 3, "instances": [0], "version": None} in registration["objects"]
    assert registration["content_format"] == ContentFormat.SENML_CBOR

    answer = await terminal.update("?lt=120")
    assert answer.code == Code.CHANGED
    assert (await state_of(api, "pos-1"))["registration"]["lifetime_s"] == 120

    answer = await terminal.deregister()
    assert answer.code == Code.DELETED
    detail = await state_of(api, "pos-1")
    assert detail["trading_state"] == "offline"
    assert detail["registration"]["end_reason"] == "deregistered"

    # The registration is gone: Update and De-register now get 4.04.
    assert (await terminal.update()).code == Code.NOT_FOUND
    assert (await terminal.deregister()).code == Code.NOT_FOUND


async def test_reregistration_replaces_the_old_one(server, api, terminals):
    await provision(api, "pos-2")
    terminal = await new_terminal(server, terminals, "pos-2")
    await terminal.register(coap_uri(server))
    first = terminal.location
    await terminal.register(coap_uri(server))
    assert terminal.location != first
    answer = await terminal.request(aiocoap.POST, f"{coap_uri(server)}/{first}")
    assert answer.code == Code.NOT_FOUND
    assert (await terminal.update()).code == Code.CHANGED


@pytest.mark.parametrize(
    ("query", "payload", "expected"),
    [
        ("lt=60&lwm2m=1.1", b"</3/0>", Code.BAD_REQUEST),  # no ep
        ("ep=pos-3&lt=0&lwm2m=1.1", b"</3/0>", Code.BAD_REQUEST),  # absurd lifetime
        ("ep=pos-3&lt=99999999999&lwm2m=1.1", b"</3/0>", Code.BAD_REQUEST),
        ("ep=pos-3&lt=abc", b"</3/0>", Code.BAD_REQUEST),
        ("ep=pos-3&lt=60&lwm2m=1.1", b"<3/0", Code.BAD_REQUEST),  # bad link format
        ("ep=pos-3&lt=60&lwm2m=1.1", b"</3/0/1/2/3>", Code.BAD_REQUEST),
        ("ep=pos-3&lt=60&lwm2m=9.9", b"</3/0>", Code.PRECONDITION_FAILED),
        ("ep=pos-3&lt=60&b=X", b"</3/0>", Code.BAD_REQUEST),
        ("ep=pos-3&ep=pos-4", b"</3/0>", Code.BAD_REQUEST),
        ("ep=bad%20name", b"</3/0>", Code.BAD_REQUEST),
    ],
)
async def test_malformed_registrations_are_refused(
    server, api, terminals, query, payload, expected
):
    await provision(api, "pos-3")
    terminal = await new_terminal(server, terminals, "probe")
    answer = await terminal.request(
        aiocoap.POST, f"{coap_uri(server)}/rd?{query}", payload, content_format=ContentFormat.LINK
    )
    assert answer.code == expected, answer.payload
    assert answer.payload  # a reason a person can read
    assert (await state_of(api, "pos-3"))["registration"] is None


async def test_unknown_endpoint_refused_unless_dev_auto_accept(server, api, terminals):
    terminal = await new_terminal(server, terminals, "stranger")
    answer = await terminal.register(coap_uri(server))
    assert answer.code == Code.FORBIDDEN
    assert (await api.get("/api/v1/terminals/stranger")).status_code == 404


async def test_psk_terminal_may_not_register_over_plain_coap(server, api, terminals):
    await provision(api, "pos-psk", mode="psk")
    terminal = await new_terminal(server, terminals, "pos-psk")
    assert (await terminal.register(coap_uri(server))).code == Code.FORBIDDEN


async def test_dev_auto_accept_creates_the_terminal(settings, terminals):
    from dataclasses import replace

    from dm_server.server import start_server

    dev = await start_server(replace(settings, dev_auto_accept=True), extensions=[])
    try:
        from tests.server.fake_terminal import FakeTerminal

        terminal = await FakeTerminal("anyone", dev.model).start()
        terminals.append(terminal)
        assert (await terminal.register(coap_uri(dev))).code == Code.CREATED
    finally:
        await dev.stop()


async def test_lifetime_expiry_marks_offline(server, api, terminals):
    await provision(api, "pos-5")
    terminal = await new_terminal(server, terminals, "pos-5")
    await terminal.register(coap_uri(server), lifetime=1)
    assert (await state_of(api, "pos-5"))["trading_state"] == "idle"
    for _ in range(50):
        await asyncio.sleep(0.1)
        detail = await state_of(api, "pos-5")
        if detail["trading_state"] == "offline":
            break
    assert detail["trading_state"] == "offline"
    assert detail["registration"]["end_reason"] == "lifetime expired"
    assert (await terminal.update()).code == Code.NOT_FOUND


async def test_update_of_unknown_registration_is_not_found(server, terminals):
    terminal = await new_terminal(server, terminals, "ghost")
    answer = await terminal.request(aiocoap.POST, f"{coap_uri(server)}/rd/doesnotexist")
    assert answer.code == Code.NOT_FOUND
    answer = await terminal.request(aiocoap.DELETE, f"{coap_uri(server)}/rd/doesnotexist")
    assert answer.code == Code.NOT_FOUND

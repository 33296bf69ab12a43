"""DTLS with PSK: aiocoap's tinydtls client and libcoap's coap-client-openssl.

The registration handler must check that the identity which completed the handshake is
the one provisioned for the endpoint in ``ep``, and DM requests must reach the terminal
over the session it opened.
"""

from __future__ import annotations

import asyncio
import shutil

import pytest
from aiocoap.numbers.codes import Code

from tests.server.conftest import new_terminal
from tests.server.test_registration import provision, state_of

pytestmark = pytest.mark.db

KEY = b"secretkey1234567"
COAP_CLIENT = shutil.which("coap-client-openssl")


def coaps_uri(server) -> str:
    return f"coaps://127.0.0.1:{server.coaps_port}"


def dtls_credentials(server, identity: str, key: bytes) -> dict:
    return {f"{coaps_uri(server)}/*": {"dtls": {"psk": key, "client-identity": identity.encode()}}}


async def test_psk_terminal_registers_and_is_managed_over_dtls(server, api, terminals):
    await provision(api, "pos-s1", mode="psk", psk_identity="id-s1", psk_key_hex=KEY.hex())
    terminal = await new_terminal(
        server, terminals, "pos-s1", dtls_credentials(server, "id-s1", KEY)
    )
    answer = await terminal.register(coaps_uri(server))
    assert answer.code == Code.CREATED
    assert (await state_of(api, "pos-s1"))["registration"]["transport"] == "coaps"
    read = await api.post("/api/v1/terminals/pos-s1/read", json={"path": "/3/0/2"})
    assert read.json()["value"] == "SN-0001", read.text
    assert (await terminal.update()).code == Code.CHANGED
    assert (await terminal.deregister()).code == Code.DELETED


async def test_identity_of_another_terminal_is_refused(server, api, terminals):
    await provision(api, "pos-s2", mode="psk", psk_identity="id-s2", psk_key_hex=KEY.hex())
    await provision(api, "pos-s3", mode="psk", psk_identity="id-s3", psk_key_hex=KEY.hex())
    # A valid handshake as id-s2, claiming to be pos-s3.
    terminal = await new_terminal(
        server, terminals, "pos-s3", dtls_credentials(server, "id-s2", KEY)
    )
    answer = await terminal.register(coaps_uri(server))
    assert answer.code == Code.FORBIDDEN
    assert (await state_of(api, "pos-s3"))["registration"] is None


async def run(*args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(process.communicate(), 20)
    return process.returncode or 0, out.decode(errors="replace")


@pytest.mark.interop
@pytest.mark.skipif(COAP_CLIENT is None, reason="libcoap3-bin (coap-client-openssl) not installed")
async def test_libcoap_openssl_client_registers_updates_deregisters(server, api):
    await provision(api, "lib-1", mode="psk", psk_identity="id-lib-1", psk_key_hex=KEY.hex())
    psk = ("-u", "id-lib-1", "-k", KEY.decode(), "-B", "5")
    _code, out = await run(
        COAP_CLIENT,
        "-m",
        "post",
        *psk,
        "-t",
        "40",
        "-e",
        "</1/0>,</3/0>",
        f"{coaps_uri(server)}/rd?ep=lib-1&lt=60&lwm2m=1.1&b=U",
    )
    detail = await state_of(api, "lib-1")
    assert detail["registration"] is not None, out
    assert detail["registration"]["transport"] == "coaps"
    assert detail["trading_state"] == "idle"
    location = detail["registration"]["location"]
    _code, out = await run(COAP_CLIENT, "-m", "post", *psk, f"{coaps_uri(server)}{location}?lt=90")
    assert (await state_of(api, "lib-1"))["registration"]["lifetime_s"] == 90, out
    _code, out = await run(COAP_CLIENT, "-m", "delete", *psk, f"{coaps_uri(server)}{location}")
    detail = await state_of(api, "lib-1")
    assert detail["trading_state"] == "offline", out
    assert detail["registration"]["end_reason"] == "deregistered"


@pytest.mark.interop
@pytest.mark.skipif(COAP_CLIENT is None, reason="libcoap3-bin (coap-client-openssl) not installed")
async def test_libcoap_with_wrong_key_gets_nothing(server, api):
    await provision(api, "lib-2", mode="psk", psk_identity="id-lib-2", psk_key_hex=KEY.hex())
    _code, out = await run(
        COAP_CLIENT,
        "-m",
        "post",
        "-u",
        "id-lib-2",
        "-k",
        "wrongkey12345678",
        "-B",
        "2",
        "-t",
        "40",
        "-e",
        "</3/0>",
        f"{coaps_uri(server)}/rd?ep=lib-2&lt=60",
    )
    assert (await state_of(api, "lib-2"))["registration"] is None, out
    # The server is unharmed: the right key still works.
    await run(
        COAP_CLIENT,
        "-m",
        "post",
        "-u",
        "id-lib-2",
        "-k",
        KEY.decode(),
        "-B",
        "5",
        "-t",
        "40",
        "-e",
        "</3/0>",
        f"{coaps_uri(server)}/rd?ep=lib-2&lt=60",
    )
    assert (await state_of(api, "lib-2"))["registration"] is not None


async def test_lapsed_dtls_registration_frees_its_session(server, api, terminals):
    await provision(api, "pos-s4", mode="psk", psk_identity="id-s4", psk_key_hex=KEY.hex())
    terminal = await new_terminal(
        server, terminals, "pos-s4", dtls_credentials(server, "id-s4", KEY)
    )
    assert (await terminal.register(coaps_uri(server), lifetime=1)).code == Code.CREATED
    pool = server.lwm2m.requester.contexts["coaps"].request_interfaces[0]
    sessions = pool.token_interface.message_interface._pool._connections
    assert len(sessions) == 1
    old_session = next(iter(sessions.values()))
    for _ in range(50):
        await asyncio.sleep(0.1)
        if (await state_of(api, "pos-s4"))["trading_state"] == "offline":
            break
    await asyncio.sleep(0.1)
    assert old_session not in sessions.values()
    # The same terminal, on its old client session, comes back.
    assert (await terminal.register(coaps_uri(server))).code == Code.CREATED


@pytest.mark.interop
@pytest.mark.skipif(COAP_CLIENT is None, reason="libcoap3-bin (coap-client-openssl) not installed")
async def test_a_closed_session_frees_its_address_for_another_terminal(server, api):
    """A terminal's session ends with its close_notify, so another terminal given the same
    address and port (a NAT reusing the mapping) can handshake with its own identity."""
    from dm_server.lwm2m.endpoint import free_udp_port

    for name in ("lib-a", "lib-b"):
        await provision(api, name, mode="psk", psk_identity=f"id-{name}", psk_key_hex=KEY.hex())
    pool = server.lwm2m.requester.contexts["coaps"].request_interfaces[0]
    sessions = pool.token_interface.message_interface._pool._connections
    port = str(free_udp_port("127.0.0.1"))
    for name in ("lib-a", "lib-b"):
        _code, out = await run(
            COAP_CLIENT, "-p", port, "-m", "post", "-u", f"id-{name}", "-k", KEY.decode(),
            "-B", "5", "-t", "40", "-e", "</3/0>",
            f"{coaps_uri(server)}/rd?ep={name}&lt=60",
        )  # fmt: skip
        assert (await state_of(api, name))["registration"] is not None, out
        # libcoap says close_notify as it exits: the session is gone with it.
        for _ in range(20):
            if not sessions:
                break
            await asyncio.sleep(0.05)
        assert not sessions

"""libcoap's command-line client (Debian libcoap3-bin) against our DM server.

A made-up endpoint registers, updates and de-registers over plain CoAP; every step is
checked both in the CoAP response libcoap printed and in what the REST API then reports.
Each libcoap run uses a fresh source port, so the Update also proves the server follows a
terminal whose address changed (a NAT rebinding, in the field).
"""

from __future__ import annotations

import re
import uuid

from tests.interop.peers import CoapResult, libcoap_request
from tests.interop.servers import ServerProcess

#: libcoap prints the response header at verbosity 7: ``v:1 t:ACK c:2.01 i:... [ opts ]``.
RESPONSE_LINE = re.compile(r"v:1 t:(?:ACK|CON|NON) c:(\d\.\d\d) i:\S+ \{[0-9a-f]*\} \[(.*?)\]")
LINKS = "</1/0>,</3/0>,</4/0>"
WAIT_S = "5"


def response(result: CoapResult) -> tuple[str, list[str]]:
    """The response code and the Location-Path segments libcoap printed."""
    printed = result.stdout + result.stderr
    lines = [m for m in RESPONSE_LINE.finditer(printed) if not m[1].startswith("0.")]
    assert lines, f"no response printed by libcoap:\n{printed}"
    code, options = lines[-1][1], lines[-1][2]
    return code, re.findall(r"Location-Path:([^,\s]+)", options)


async def coap(method: str, url: str, *payload_args: str) -> tuple[str, list[str]]:
    result = await libcoap_request(["-v", "7", "-B", WAIT_S, "-m", method, *payload_args, url])
    return response(result)


async def terminal(server: ServerProcess, endpoint: str) -> dict:
    async with server.api() as api:
        reply = await api.get(f"/terminals/{endpoint}")
    assert reply.status_code == 200, reply.text
    return reply.json()


async def test_libcoap_registers_updates_and_deregisters(
    dm_server: ServerProcess, libcoap_client: str
) -> None:
    endpoint = f"libcoap-{uuid.uuid4().hex[:10]}"
    base = f"coap://127.0.0.1:{dm_server.coap_port}"

    code, location = await coap(
        "post", f"{base}/rd?ep={endpoint}&lt=60&lwm2m=1.1&b=U", "-t", "40", "-e", LINKS
    )
    assert code == "2.01"
    assert location and location[0] == "rd", location
    registered = await terminal(dm_server, endpoint)
    assert registered["trading_state"] != "offline", registered
    assert registered["registration"]["location"] == "/" + "/".join(location)
    objects = {o["object_id"]: o["instances"] for o in registered["registration"]["objects"]}
    assert objects == {1: [0], 3: [0], 4: [0]}

    code, _ = await coap("post", f"{base}/{'/'.join(location)}?lt=120")
    assert code == "2.04"
    assert (await terminal(dm_server, endpoint))["registration"]["lifetime_s"] == 120

    code, _ = await coap("delete", f"{base}/{'/'.join(location)}")
    assert code == "2.02"
    assert (await terminal(dm_server, endpoint))["trading_state"] == "offline"

    code, _ = await coap("post", f"{base}/{'/'.join(location)}?lt=120")
    assert code == "4.04", "an Update for a removed registration must be refused"


async def test_libcoap_registration_without_endpoint_name_is_refused(
    dm_server: ServerProcess, libcoap_client: str
) -> None:
    base = f"coap://127.0.0.1:{dm_server.coap_port}"
    code, location = await coap("post", f"{base}/rd?lt=60&lwm2m=1.1", "-t", "40", "-e", LINKS)
    assert code == "4.00"
    assert not location

"""Device management through the REST API to a fake terminal over real CoAP."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from tests.server.conftest import coap_uri, new_terminal
from tests.server.test_registration import provision, state_of

pytestmark = pytest.mark.db


async def registered(server, api, terminals, endpoint="pos-op", **kwargs):
    await provision(api, endpoint)
    terminal = await new_terminal(server, terminals, endpoint)
    answer = await terminal.register(coap_uri(server), **kwargs)
    assert answer.code.is_successful()
    await asyncio.sleep(0.2)  # let the server's after-Register work settle
    return terminal


@pytest.mark.parametrize("fmt", [None, "tlv", "senml-json", "senml-cbor"])
async def test_read_instance_in_every_format(server, api, terminals, fmt):
    terminal = await registered(server, api, terminals)
    body = {"path": "/3/0"} | ({"format": fmt} if fmt else {})
    answer = await api.post("/api/v1/terminals/pos-op/read", json=body)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["status"] == "done" and result["code"] == "2.05"
    assert result["value"]["0"] == "PosFleet"
    assert result["value"]["13"] == "2026-01-01T00:00:00Z"
    assert any(r[1] == "/3/0" for r in terminal.requests)
    # Kept as last known values, and the firmware version is on the terminal.
    detail = await state_of(api, "pos-op")
    assert {"path": "/3/0/1", "value": "PT-100"}.items() <= next(
        v for v in detail["values"] if v["path"] == "/3/0/1"
    ).items()
    assert detail["firmware_version"] == "1.0.0"


async def test_read_missing_path_gives_the_terminal_code(server, api, terminals):
    await registered(server, api, terminals)
    answer = await api.post("/api/v1/terminals/pos-op/read", json={"path": "/3/0/9"})
    assert answer.status_code == 200
    assert answer.json()["code"] == "4.04" and answer.json()["status"] == "failed"


async def test_write_replace_and_partial_update(server, api, terminals):
    terminal = await registered(server, api, terminals)
    answer = await api.post(
        "/api/v1/terminals/pos-op/write", json={"path": "/26241/0/14", "value": "Seocho store"}
    )
    assert answer.json()["code"] == "2.04", answer.text
    from lwm2m_core.path import LwM2mPath

    assert terminal.values[LwM2mPath.parse("/26241/0/14")] == "Seocho store"
    answer = await api.post(
        "/api/v1/terminals/pos-op/write",
        json={
            "path": "/3/0",
            "mode": "update",
            "format": "tlv",
            "value": {"13": "2026-05-01T12:00:00Z"},
        },
    )
    assert answer.json()["code"] == "2.04", answer.text
    assert terminal.values[LwM2mPath.parse("/3/0/13")] == datetime(2026, 5, 1, 12, tzinfo=UTC)
    assert terminal.requests[-1][0].startswith("POST")


async def test_write_of_wrong_type_is_refused_before_sending(server, api, terminals):
    terminal = await registered(server, api, terminals)
    sent = len(terminal.requests)
    answer = await api.post(
        "/api/v1/terminals/pos-op/write", json={"path": "/3/0/13", "value": "not a time"}
    )
    assert answer.status_code == 422
    assert "/3/0/13" in answer.json()["detail"]
    assert len(terminal.requests) == sent


async def test_execute_discover_attributes_create_delete(server, api, terminals):
    terminal = await registered(server, api, terminals)
    answer = await api.post(
        "/api/v1/terminals/pos-op/execute", json={"path": "/3/0/4", "arguments": "0='now'"}
    )
    assert answer.json()["code"] == "2.04"
    assert terminal.executed == [("/3/0/4", "0='now'")]

    answer = await api.post("/api/v1/terminals/pos-op/discover", json={"path": "/3/0"})
    links = answer.json()["value"]
    assert {"target": "/3/0/0", "params": {}} in links

    answer = await api.post(
        "/api/v1/terminals/pos-op/write-attributes",
        json={"path": "/26241/0/0", "attributes": {"pmin": 5, "pmax": 60}},
    )
    assert answer.json()["code"] == "2.04"
    assert terminal.attributes["/26241/0/0"] == ["pmin=5", "pmax=60"]

    answer = await api.post(
        "/api/v1/terminals/pos-op/create",
        json={
            "path": "/26243",
            "instance_id": 7,
            "format": "senml-cbor",
            "value": {"0": "evt-7", "1": "sale"},
        },
    )
    assert answer.json()["code"] == "2.01", answer.text
    answer = await api.post("/api/v1/terminals/pos-op/delete", json={"path": "/26243/7"})
    assert answer.json()["code"] == "2.02"
    answer = await api.post("/api/v1/terminals/pos-op/delete", json={"path": "/26243/7"})
    assert answer.json()["code"] == "4.04"


async def test_observe_keeps_notifications_and_follows_trading_state(server, api, terminals):
    terminal = await registered(server, api, terminals)
    # The server observes the trading state by itself after Register.
    for _ in range(30):
        if "/26241/0/0" in (await state_of(api, "pos-op"))["observations"]:
            break
        await asyncio.sleep(0.1)
    answer = await api.post("/api/v1/terminals/pos-op/observe", json={"path": "/3/0/3"})
    assert answer.json()["value"] == "1.0.0"
    terminal.set_value("/3/0/3", "1.1.0")
    terminal.set_value("/26241/0/0", 1)
    for _ in range(30):
        detail = await state_of(api, "pos-op")
        if detail["firmware_version"] == "1.1.0" and detail["trading_state"] == "running":
            break
        await asyncio.sleep(0.1)
    assert detail["firmware_version"] == "1.1.0"
    assert detail["trading_state"] == "running"
    assert set(detail["observations"]) >= {"/3/0/3", "/26241/0/0"}

    answer = await api.post("/api/v1/terminals/pos-op/cancel-observe", json={"path": "/3/0/3"})
    assert answer.json()["status"] == "done"
    assert "/3/0/3" not in (await state_of(api, "pos-op"))["observations"]
    answer = await api.post("/api/v1/terminals/pos-op/cancel-observe", json={"path": "/3/0/3"})
    assert answer.json()["code"] == "4.04"


async def test_reregistration_reestablishes_observations(server, api, terminals):
    terminal = await registered(server, api, terminals)
    await api.post("/api/v1/terminals/pos-op/observe", json={"path": "/3/0/3"})
    observes_before = sum(1 for r in terminal.requests if r[1] == "/3/0/3")
    await terminal.register(coap_uri(server))
    for _ in range(30):
        if sum(1 for r in terminal.requests if r[1] == "/3/0/3") > observes_before:
            break
        await asyncio.sleep(0.1)
    assert sum(1 for r in terminal.requests if r[1] == "/3/0/3") > observes_before
    assert "/3/0/3" in (await state_of(api, "pos-op"))["observations"]


async def test_silent_terminal_gives_timeout_not_a_hang(server, api, terminals):
    terminal = await registered(server, api, terminals)
    terminal.silent = True
    started = asyncio.get_running_loop().time()
    answer = await api.post("/api/v1/terminals/pos-op/read", json={"path": "/3/0/0"})
    elapsed = asyncio.get_running_loop().time() - started
    assert answer.status_code == 504
    assert answer.json()["status"] == "timeout"
    assert "did not answer" in answer.json()["message"]
    assert elapsed < server.settings.request_timeout_s + 2


async def test_offline_terminal_is_refused_or_queued(server, api, terminals):
    terminal = await registered(server, api, terminals)
    await terminal.deregister()
    answer = await api.post("/api/v1/terminals/pos-op/read", json={"path": "/3/0/0"})
    assert answer.status_code == 409
    assert "offline" in answer.json()["detail"]
    answer = await api.post(
        "/api/v1/terminals/pos-op/write",
        json={"path": "/26241/0/14", "value": "Later store", "queue": True},
    )
    assert answer.status_code == 202
    operation_id = answer.json()["operation_id"]
    await terminal.register(coap_uri(server))
    for _ in range(30):
        operation = (await api.get(f"/api/v1/terminals/pos-op/operations/{operation_id}")).json()
        if operation["status"] not in ("queued", "sent"):
            break
        await asyncio.sleep(0.1)
    assert operation["status"] == "done", operation
    from lwm2m_core.path import LwM2mPath

    assert terminal.values[LwM2mPath.parse("/26241/0/14")] == "Later store"


async def test_queue_mode_waits_for_update_then_expires(server, api, terminals):
    terminal = await registered(server, api, terminals, binding="UQ")
    answer = await api.post("/api/v1/terminals/pos-op/read", json={"path": "/3/0/2"})
    assert answer.status_code == 202 and answer.json()["status"] == "queued"
    first = answer.json()["operation_id"]
    reads_before = sum(1 for r in terminal.requests if r[1] == "/3/0/2")
    assert reads_before == 0
    assert (await terminal.update()).code.is_successful()
    for _ in range(30):
        operation = (await api.get(f"/api/v1/terminals/pos-op/operations/{first}")).json()
        if operation["status"] == "done":
            break
        await asyncio.sleep(0.1)
    assert operation["status"] == "done"
    assert operation["result"]["value"] == "SN-0001"

    # An operation nobody picks up expires with a clear status.
    server.lwm2m.operations.settings = server.settings.__class__(
        **{**server.settings.__dict__, "queue_expiry_s": 0}
    )
    answer = await api.post("/api/v1/terminals/pos-op/read", json={"path": "/3/0/1"})
    second = answer.json()["operation_id"]
    for _ in range(30):
        operation = (await api.get(f"/api/v1/terminals/pos-op/operations/{second}")).json()
        if operation["status"] == "expired":
            break
        await asyncio.sleep(0.1)
    assert operation["status"] == "expired"
    assert "expired" in operation["result"]["message"]


@pytest.mark.parametrize(
    ("operation", "body", "fragment"),
    [
        ("read", {"path": "/3/x"}, "path"),
        ("write", {"path": "/3/0/0"}, "needs a value"),
        ("execute", {"path": "/3/0"}, "does not apply"),
        ("read", {"path": "/3/0", "format": "xml"}, "format"),
        ("write-attributes", {"path": "/3/0/0", "attributes": {"color": 1}}, "attributes"),
        ("frobnicate", {"path": "/3/0"}, "operation"),
    ],
)
async def test_bad_operation_bodies(server, api, terminals, operation, body, fragment):
    await registered(server, api, terminals)
    answer = await api.post(f"/api/v1/terminals/pos-op/{operation}", json=body)
    assert answer.status_code == 422, answer.text
    assert fragment in answer.json()["detail"]


async def test_lwm2m_1_0_terminal_gets_text_for_single_values_and_tlv_for_instances(
    server, api, terminals
):
    terminal = await registered(server, api, terminals, version="1.0")
    # A 1.0 client that announces no ct: text for one value, TLV for an instance.
    server.lwm2m.peers.get(1).content_format = None
    answer = await api.post("/api/v1/terminals/pos-op/read", json={"path": "/3/0/1"})
    assert answer.json()["value"] == "PT-100"
    assert answer.json()["content_format"] == 0
    answer = await api.post("/api/v1/terminals/pos-op/read", json={"path": "/3/0"})
    assert answer.json()["content_format"] == 11542
    accepts = [r[2].opt.accept for r in terminal.requests if r[1] in ("/3/0/1", "/3/0")]
    assert accepts[-2:] == [0, 11542]


async def test_text_format_is_honoured(server, api, terminals):
    terminal = await registered(server, api, terminals)
    answer = await api.post(
        "/api/v1/terminals/pos-op/read", json={"path": "/3/0/1", "format": "text"}
    )
    assert answer.json()["value"] == "PT-100" and answer.json()["content_format"] == 0
    answer = await api.post(
        "/api/v1/terminals/pos-op/write",
        json={"path": "/26241/0/14", "value": "Text store", "format": "text"},
    )
    assert answer.json()["code"] == "2.04"
    put = [r for r in terminal.requests if r[0].startswith("PUT") and r[1] == "/26241/0/14"]
    assert put[-1][2].opt.content_format == 0
    answer = await api.post(
        "/api/v1/terminals/pos-op/observe", json={"path": "/3/0/3", "format": "text"}
    )
    assert answer.json()["content_format"] == 0

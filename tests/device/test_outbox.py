"""The durable outbox: at-least-once delivery with unique ids, nothing lost across restarts,
server outages and power cuts (a real subprocess killed with SIGKILL at random points)."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import sys
from datetime import UTC, datetime

import pytest

from device_client.pos import STATE_KEY, PosTerminal
from device_client.store import EventType, PosEvent, TerminalStore
from tests.device.conftest import wait_registered

#: Kills of the trading terminal process; each run lives a random 0.8-2.0 s.
KILLS = 3


def test_store_survives_reopen_and_acknowledges(tmp_path):
    store = TerminalStore(tmp_path / "t.sqlite3")
    pos = PosTerminal(store, "KRW")
    pos.open_shift("kim")
    sale = pos.sale(12000, items=2)
    refund = pos.refund(12000, sale.receipt or "", "damaged", customer_present=False)
    store.close()
    store = TerminalStore(tmp_path / "t.sqlite3")
    pending = store.pending(10)
    assert [e.event_type for e in pending] == [EventType.SHIFT_OPEN, EventType.SALE,
                                               EventType.REFUND]
    assert pending[2].event_id == refund.event_id and pending[2].customer_present is False
    assert [e.sequence for e in pending] == [1, 2, 3]
    pos = PosTerminal(store, "KRW")
    assert pos.counters.sales_amount == 12000 and pos.counters.refunds_count == 1
    store.acknowledge([1, 2], keep=1)
    assert [e.sequence for e in store.pending(10)] == [3]
    assert [e.sequence for e, acked in store.all_events()] == [2, 3]  # one delivered kept
    store.close()


def test_event_ids_are_unique_and_times_whole_seconds(tmp_path):
    store = TerminalStore(tmp_path / "t.sqlite3")
    now = datetime.now(UTC).replace(microsecond=0)
    ids = {store.record_event(PosEvent(EventType.DRAWER_OPEN, now)).event_id for _ in range(50)}
    assert len(ids) == 50
    store.close()


async def test_send_retries_until_acknowledged(agent, stub):
    stub.state.refuse_send = True
    agent.pos.open_shift("park")
    sales = [agent.pos.sale(1000 * (i + 1)) for i in range(3)]
    await asyncio.sleep(0.3)
    assert stub.state.events == []
    assert agent.store.pending_count() == 4
    stub.state.refuse_send = False
    await stub.wait_for(lambda: len(stub.state.events) >= 4)
    assert {s.event_id for s in sales} <= set(stub.state.events)
    await asyncio.sleep(0.1)
    assert agent.store.pending_count() == 0


async def test_events_survive_a_server_outage(stub, make_settings):
    """Events made while the server is gone are delivered after it comes back."""
    from device_client.agent import Agent
    from tests.device.stub_server import StubServer

    a = Agent(make_settings(stub.uri, endpoint="t-out", request_timeout=0.5))
    await a.start()
    await wait_registered(a)
    port = stub.port
    await stub.stop()
    a.pos.open_shift("choi")
    made = [a.pos.sale(500 + i) for i in range(5)]
    await asyncio.sleep(0.5)
    back = await StubServer.start(port)
    try:
        await back.wait_for(lambda: {e.event_id for e in made} <= set(back.state.events),
                            timeout=15)
        assert "t-out" in back.state.registrations  # re-registered with the new server
    finally:
        await a.stop()
        await back.stop()


async def _run_killed(stub, data_dir, rng) -> None:
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "posfleet.cli", "terminal", "--server", stub.uri,
        "--endpoint", "t-kill", "--data-dir", str(data_dir), "--trade-rate", "1500",
        "--lifetime", "60", "--log-level", "WARNING",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, env=env,
    )
    await asyncio.sleep(rng.uniform(0.8, 2.0))
    process.send_signal(signal.SIGKILL)
    await process.wait()


@pytest.mark.slow
async def test_nothing_lost_when_killed_at_random_points(stub, tmp_path):
    rng = random.Random(7)
    data_dir = tmp_path / "t-kill"
    db = data_dir / "terminal.sqlite3"
    for round_number in range(KILLS):
        stub.state.refuse_send = round_number == 1  # one round with the server refusing
        await _run_killed(stub, data_dir, rng)
        with sqlite3.connect(db) as check:
            assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stub.state.refuse_send = False

    # A last, clean run without trading drains the outbox.
    from device_client.agent import Agent
    from device_client.settings import TerminalSettings

    agent = Agent(TerminalSettings(server_uri=stub.uri, endpoint="t-kill", data_dir=data_dir,
                                   send_interval=0.05, backoff_initial=0.05, backoff_max=0.2))
    await agent.start()
    try:
        async with asyncio.timeout(20):
            while agent.store.pending_count():
                await asyncio.sleep(0.1)
        counters = agent.store.get(STATE_KEY)
        last = agent.store.recent(1)[0].sequence
    finally:
        await agent.stop()

    # Every event ever committed reached the server: sequence numbers 1..last, no gap,
    # each with one event id (repeats after a kill carry the same id).
    by_sequence: dict[int, set[str]] = {}
    ids_at: dict[tuple[int, int], str] = {}
    for record in stub.state.event_records:
        if record.path.object_id == 26243:
            key = (record.path.object_instance_id, record.time)
            if record.path.resource_id == 0:
                ids_at[key] = record.value
            if record.path.resource_id == 14:
                by_sequence.setdefault(record.value, set()).add(key)
    assert last > 20, "the terminal traded too little to test anything"
    assert sorted(by_sequence) == list(range(1, last + 1))
    for keys in by_sequence.values():
        assert len({ids_at[k] for k in keys}) == 1
    received = set(stub.state.events)
    assert len(received) == last
    sales = {(r.path.object_instance_id, r.time) for r in stub.state.event_records
             if r.path.resource_id == 1 and r.value == "sale"}
    # The counters were written in the same transaction as the events: they agree.
    assert counters["sales_count"] == len({ids_at[k] for k in sales})

"""The follow-up workers after Register: bounded, one entry per terminal, failures contained."""

from __future__ import annotations

import asyncio

import pytest

from dm_server.lwm2m.followups import FollowUps
from dm_server.lwm2m.peers import Peer


def peer(terminal_id: int, address: str = "127.0.0.1:5000") -> Peer:
    return Peer(terminal_id, f"ep-{terminal_id}", "coap", address, "1.1", None, False)


async def test_at_most_concurrency_run_at_once_and_all_finish():
    running, most, done = 0, 0, []
    release = asyncio.Event()

    async def work(p: Peer, _objects: list) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await release.wait()
        running -= 1
        done.append(p.terminal_id)

    followups = FollowUps(work, concurrency=3)
    for terminal_id in range(10):
        followups.submit(peer(terminal_id), [])
    await asyncio.sleep(0.05)
    assert most == 3
    assert followups.waiting == 7
    release.set()
    async with asyncio.timeout(5):
        while len(done) < 10:
            await asyncio.sleep(0.01)
    assert sorted(done) == list(range(10))
    assert followups.finished == 10
    await followups.close()


async def test_a_terminal_registering_again_keeps_its_place_with_the_newest_registration():
    seen: list[tuple[int, str]] = []
    gate = asyncio.Event()

    async def work(p: Peer, _objects: list) -> None:
        await gate.wait()
        seen.append((p.terminal_id, p.address))

    followups = FollowUps(work, concurrency=1)
    followups.submit(peer(1), [])  # taken by the worker at once, waits at the gate
    await asyncio.sleep(0)
    followups.submit(peer(2, "old"), [])
    followups.submit(peer(3), [])
    followups.submit(peer(2, "new"), [])
    followups.discard(3)
    gate.set()
    async with asyncio.timeout(5):
        while followups.waiting or len(seen) < 2:
            await asyncio.sleep(0.01)
    assert seen == [(1, "127.0.0.1:5000"), (2, "new")]
    await followups.close()


async def test_one_failure_does_not_stop_the_rest(caplog):
    done = []

    async def work(p: Peer, _objects: list) -> None:
        if p.terminal_id == 0:
            raise RuntimeError("terminal went away")
        done.append(p.terminal_id)

    followups = FollowUps(work, concurrency=1)
    for terminal_id in range(3):
        followups.submit(peer(terminal_id), [])
    async with asyncio.timeout(5):
        while followups.finished < 3:
            await asyncio.sleep(0.01)
    assert done == [1, 2]
    assert "ep-0" in caplog.text
    await followups.close()


def test_concurrency_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        FollowUps(lambda p, o: asyncio.sleep(0), concurrency=0)

"""What follows a Register (observing the trading state again, sending queued operations),
done by a few workers instead of a task per registration.

A registration storm (a whole fleet coming back after a power cut or a server restart)
must be answered first: a Register left unanswered is retransmitted by the terminal and
costs the server twice, and each follow-up is itself a request to the terminal. With a
task per Register, thousands of follow-ups competed with the Registers still arriving
and all had requests in flight at once. Here at most ``concurrency`` run at a time; the
rest wait in arrival order, one entry per terminal (a terminal that registers again
before its follow-up ran keeps its place and gets the newest registration).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from dm_server.lwm2m.peers import Peer
from dm_server.tasks import cancel_and_wait

log = logging.getLogger(__name__)

FollowUp = Callable[[Peer, list[dict[str, Any]]], Awaitable[None]]


class FollowUps:
    def __init__(self, work: FollowUp, concurrency: int) -> None:
        if concurrency < 1:
            raise ValueError("follow-up concurrency must be at least 1")
        self.work = work
        self.concurrency = concurrency
        #: terminal id -> (peer, registered objects), oldest first.
        self._waiting: dict[int, tuple[Peer, list[dict[str, Any]]]] = {}
        self._workers: set[asyncio.Task[None]] = set()
        #: Follow-ups finished (done or failed), for measurements.
        self.finished = 0

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def submit(self, peer: Peer, objects: list[dict[str, Any]]) -> None:
        self._waiting[peer.terminal_id] = (peer, objects)
        if len(self._workers) < self.concurrency:
            worker = asyncio.create_task(self._run(), name="registration follow-up")
            self._workers.add(worker)
            worker.add_done_callback(self._workers.discard)

    def discard(self, terminal_id: int) -> None:
        """Forget a terminal's waiting follow-up (it de-registered or lapsed)."""
        self._waiting.pop(terminal_id, None)

    async def _run(self) -> None:
        while self._waiting:
            terminal_id = next(iter(self._waiting))
            peer, objects = self._waiting.pop(terminal_id)
            try:
                await self.work(peer, objects)
            except Exception:  # one terminal's failure must not stop the others' follow-ups
                log.exception("follow-up of %s's registration failed", peer.endpoint)
            self.finished += 1

    async def close(self) -> None:
        self._waiting.clear()
        await cancel_and_wait(list(self._workers))

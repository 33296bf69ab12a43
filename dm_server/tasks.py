"""Background tasks of the server: how they end at shutdown."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any] | None]) -> None:
    """Cancel ``tasks`` (None entries skipped) and wait until each has ended.

    For shutdown only: whatever a task raises while it ends is of no interest any more,
    but it must have ended before what it uses (sessions, sockets) goes away.
    """
    ending = [task for task in tasks if task is not None]
    for task in ending:
        task.cancel()
    for task in ending:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task

"""One CoAP request with a bound on the wait, without cancelling aiocoap's response future.

Cancelling ``request.response`` (as ``asyncio.timeout`` or ``wait_for`` around it would)
makes aiocoap raise ``InvalidStateError`` when the answer arrives late; with a thousand
agents in one process that is log noise and lost exchanges. So the wait is shielded and a
late answer is simply dropped.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiocoap


def _consume(future: asyncio.Future[Any]) -> None:
    """Retrieve a late result or error so asyncio does not report it as never retrieved."""
    if not future.cancelled():
        future.exception()


async def request(context: aiocoap.Context, message: aiocoap.Message, timeout: float,
                  **options: Any) -> aiocoap.Message:
    """Send ``message``; its response, or TimeoutError after ``timeout`` seconds."""
    response = context.request(message, **options).response
    try:
        async with asyncio.timeout(timeout):
            return await asyncio.shield(response)
    except (TimeoutError, asyncio.CancelledError):
        response.add_done_callback(_consume)
        raise

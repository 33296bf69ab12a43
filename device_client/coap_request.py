"""One CoAP request with a bound on the wait, without cancelling aiocoap's response future.

Cancelling ``request.response`` (as ``asyncio.timeout`` or ``wait_for`` around it would)
makes aiocoap raise ``InvalidStateError`` when the answer arrives late; with a thousand
agents in one process that is log noise and lost exchanges. So the wait is shielded and a
late answer is simply dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from typing import Any

import aiocoap

#: aiocoap's switch for SO_REUSEPORT on the sockets it binds (read when it binds).
_REUSE_PORT_ENV = "AIOCOAP_REUSE_PORT"


@contextlib.contextmanager
def exclusive_port() -> Iterator[None]:
    """Bind aiocoap sockets made inside this block without SO_REUSEPORT.

    aiocoap sets SO_REUSEPORT on every server socket. With port 0, Linux may then hand the
    same port to another process's reuse-port socket and split datagrams between the two:
    seen on this machine as a Register answered 4.01 by somebody else's agent. An agent
    never wants to share its port, so its context is created inside this block.
    """
    previous = os.environ.get(_REUSE_PORT_ENV)
    os.environ[_REUSE_PORT_ENV] = "0"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(_REUSE_PORT_ENV, None)
        else:
            os.environ[_REUSE_PORT_ENV] = previous


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

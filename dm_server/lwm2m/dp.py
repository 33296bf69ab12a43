"""``POST /dp``: the Send operation (TS Core §6.4.5), SenML-CBOR or SenML-JSON records.

The sender must be a registered terminal (found by its DTLS identity or the address it
registered from). Events (object 26243) are stored once per Event ID; other records
become last known values. Answer 2.04 Changed once everything is committed, so a
terminal that gets no answer may safely send again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiocoap import Message
from aiocoap.resource import Resource

DP_PATH = ("dp",)


class SendResource(Resource):  # type: ignore[misc]
    def __init__(self, on_send: Callable[[Message], Awaitable[Message]]) -> None:
        super().__init__()
        self.on_send = on_send

    async def render_post(self, request: Message) -> Message:
        return await self.on_send(request)

"""Sends DM requests to terminals from the server's own sockets, with a bounded wait.

A request goes to the remote the terminal last spoke from (see :mod:`peers`), through
the context that owns that socket (plain CoAP or DTLS), so it crosses the terminal's NAT.
Every wait is bounded: a terminal that stops answering gives :class:`OperationTimeout`,
never a hung API call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiocoap import Message
from aiocoap import error as coap_error
from aiocoap.numbers.codes import Code

from dm_server.errors import OperationTimeout, TerminalUnreachable
from dm_server.lwm2m.peers import Peer
from lwm2m_core.numbers import CoapCode
from lwm2m_core.path import LwM2mPath

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Response:
    code: CoapCode
    payload: bytes
    content_format: int | None
    location: str = ""

    @property
    def ok(self) -> bool:
        return self.code.is_success


def _uri_path(path: LwM2mPath) -> tuple[str, ...]:
    return tuple(str(i) for i in path.ids)


class Requester:
    """Builds and sends CoAP requests to a :class:`Peer`."""

    def __init__(self, contexts: dict[str, Any], timeout_s: float) -> None:
        #: scheme ("coap" / "coaps") -> the aiocoap server context owning that socket.
        self.contexts = contexts
        self.timeout_s = timeout_s

    def message(
        self,
        peer: Peer,
        code: CoapCode,
        path: LwM2mPath,
        payload: bytes = b"",
        content_format: int | None = None,
        accept: int | None = None,
        query: Sequence[str] = (),
        observe: int | None = None,
    ) -> tuple[Any, Message]:
        context = self.contexts.get(peer.scheme)
        if context is None:
            raise TerminalUnreachable(f"{peer.endpoint}: the server has no {peer.scheme} socket")
        if peer.remote is not None:
            msg = Message(code=Code(int(code)), payload=payload)
            msg.remote = peer.remote
        elif peer.scheme == "coap":
            msg = Message(code=Code(int(code)), payload=payload, uri=peer.uri_base + "/")
        else:
            raise TerminalUnreachable(
                f"{peer.endpoint}: its DTLS session is gone (server restart?); it will be "
                "reachable after its next Update or Register"
            )
        msg.opt.uri_path = _uri_path(path)
        if content_format is not None:
            msg.opt.content_format = content_format
        if accept is not None:
            msg.opt.accept = accept
        if query:
            msg.opt.uri_query = tuple(query)
        if observe is not None:
            msg.opt.observe = observe
        return context, msg

    async def send(
        self,
        peer: Peer,
        code: CoapCode,
        path: LwM2mPath,
        payload: bytes = b"",
        content_format: int | None = None,
        accept: int | None = None,
        query: Sequence[str] = (),
    ) -> Response:
        context, msg = self.message(peer, code, path, payload, content_format, accept, query)
        request = context.request(msg)
        return await self.wait(peer, request.response, f"{code.name} {path}")

    async def wait(self, peer: Peer, future: Any, what: str) -> Response:
        try:
            answer = await asyncio.wait_for(future, self.timeout_s)
        except TimeoutError:
            raise OperationTimeout(
                f"{peer.endpoint} did not answer {what} within {self.timeout_s:g} s; "
                "it may be offline or asleep"
            ) from None
        except coap_error.ConstructionRenderableError as exc:
            raise TerminalUnreachable(f"{peer.endpoint}: {what} failed: {exc}") from None
        except (coap_error.Error, OSError) as exc:
            # ConRetransmitsExceeded, RST, DTLS alerts, network errors.
            raise TerminalUnreachable(
                f"{peer.endpoint} did not take {what}: {type(exc).__name__} {exc}"
            ) from None
        return to_response(answer)


def to_response(answer: Message) -> Response:
    try:
        code = CoapCode(int(answer.code))
    except ValueError:
        code = CoapCode.INTERNAL_SERVER_ERROR
    location = "/" + "/".join(answer.opt.location_path) if answer.opt.location_path else ""
    fmt = answer.opt.content_format
    return Response(code, answer.payload, int(fmt) if fmt is not None else None, location)

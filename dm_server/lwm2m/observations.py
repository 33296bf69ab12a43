"""Observations the server holds on terminals (TS Core §6.4.1, RFC 7641 client side).

Each live observation is an aiocoap client request with Observe=0 whose notifications
are handed to a callback (which stores them as last known values). Cancel is passive
(RFC 7641 §3.6): aiocoap forgets the token, and the terminal's next notification gets a
Reset, which ends the observation there. The wanted observations are also kept in the
database so a new registration re-establishes them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from dm_server.lwm2m.peers import Peer
from dm_server.lwm2m.requester import Requester, Response, to_response
from dm_server.tasks import cancel_and_wait
from lwm2m_core.numbers import CoapCode, ContentFormat
from lwm2m_core.path import LwM2mPath

log = logging.getLogger(__name__)

#: Observe option value that registers (RFC 7641 §2).
OBSERVE_REGISTER = 0

NotificationHandler = Callable[[Peer, LwM2mPath, ContentFormat, Response], Awaitable[None]]


@dataclass
class LiveObservation:
    peer: Peer
    path: LwM2mPath
    request: Any
    task: asyncio.Task[None] | None = None


class ObservationTracker:
    def __init__(self, requester: Requester, on_notification: NotificationHandler) -> None:
        self.requester = requester
        self.on_notification = on_notification
        #: terminal id -> path -> observation (indexed per terminal: Register cancels all
        #: of one terminal's observations, which must not scan the whole fleet).
        self._live: dict[int, dict[str, LiveObservation]] = {}

    def _get(self, terminal_id: int, path: str) -> LiveObservation | None:
        return self._live.get(terminal_id, {}).get(path)

    def _pop(self, terminal_id: int, path: str) -> LiveObservation | None:
        paths = self._live.get(terminal_id)
        if not paths:
            return None
        live = paths.pop(path, None)
        if not paths:
            del self._live[terminal_id]
        return live

    def is_live(self, terminal_id: int, path: LwM2mPath) -> bool:
        return self._get(terminal_id, str(path)) is not None

    def live_paths(self, terminal_id: int) -> list[str]:
        return sorted(self._live.get(terminal_id, {}))

    async def observe(
        self, peer: Peer, path: LwM2mPath, fmt: ContentFormat, small: bool = False
    ) -> Response:
        """Start observing; returns the first answer (its value is the current one).

        ``small``: the value is known to fit one datagram (a number), so aiocoap's
        block-wise layer, which costs more than the rest of the request, is left out.
        """
        self.cancel(peer.terminal_id, path)
        context, msg = self.requester.message(
            peer, CoapCode.GET, path, accept=int(fmt), observe=OBSERVE_REGISTER
        )
        request = context.request(msg, handle_blockwise=not small)
        first = await self.requester.wait(peer, request.response, f"Observe {path}")
        observation = getattr(request, "observation", None)
        if first.ok and observation is not None and not observation.cancelled:
            live = LiveObservation(peer, path, request)
            live.task = asyncio.create_task(
                self._follow(live, fmt), name=f"observe {peer.endpoint} {path}"
            )
            self._live.setdefault(peer.terminal_id, {})[str(path)] = live
        return first

    async def _follow(self, live: LiveObservation, fmt: ContentFormat) -> None:
        try:
            async for notification in live.request.observation:
                try:
                    await self.on_notification(live.peer, live.path, fmt, to_response(notification))
                except Exception:  # one bad notification must not end the observation
                    log.exception("%s %s: notification not stored", live.peer.endpoint, live.path)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the terminal ended it (4.04, RST) or went away
            log.info("%s %s: observation ended: %s", live.peer.endpoint, live.path, exc)
        finally:
            if self._get(live.peer.terminal_id, str(live.path)) is live:
                self._pop(live.peer.terminal_id, str(live.path))

    def cancel(self, terminal_id: int, path: LwM2mPath) -> bool:
        live = self._pop(terminal_id, str(path))
        if live is None:
            return False
        observation = getattr(live.request, "observation", None)
        if observation is not None:
            observation.cancel()
        if live.task is not None:
            live.task.cancel()
        return True

    def cancel_all(self, terminal_id: int) -> None:
        for path in list(self._live.get(terminal_id, {})):
            self.cancel(terminal_id, LwM2mPath.parse(path))

    async def close(self) -> None:
        everything = [live for paths in self._live.values() for live in paths.values()]
        tasks = [live.task for live in everything if live.task is not None]
        for live in everything:
            self.cancel(live.peer.terminal_id, live.path)
        await cancel_and_wait(tasks)

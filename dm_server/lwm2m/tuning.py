"""aiocoap's deduplication cache, made to cost less.

aiocoap keeps every received confirmable message with its response for EXCHANGE_LIFETIME
(RFC 7252 §4.8.2: 247 s) to answer retransmissions; measured here at about 2.4 KB each,
that is about 590 MB at 1,000 messages/s. The 247 s assume a MAX_LATENCY of 100 s; a
duplicate can only arrive while the sender still retransmits (MAX_TRANSMIT_SPAN, 45 s)
plus the time in flight, so a shorter window is safe for terminals with default
transmission parameters on ordinary networks. A duplicate seen after the window is
processed again, which the registration interface and Send tolerate (Send is idempotent
by Event ID; a repeated Register just replaces the registration).

aiocoap also schedules one event-loop timer per received message to forget it again; at
thousands of messages a second a sampling profile put 7 % of a Send's samples in
creating those timers, and tens of thousands of them sat in the loop's heap (an A/B of
Sends alone: 596 / 575 µs per Send with the queue below, 608 / 609 µs without).
:func:`apply` replaces it with one queue per message layer, swept once a second: a
message is forgotten up to a second later than its lifetime. Duplicates are still
recognised and answered by aiocoap's own code.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from aiocoap.messagemanager import MessageManager
from aiocoap.numbers.constants import TransportTuning

_ORIGINAL = TransportTuning.__dict__["EXCHANGE_LIFETIME"]
_ORIGINAL_DEDUPLICATE = MessageManager.__dict__["_deduplicate_message"]
#: Never below the sender's retransmission span plus a margin for flight time.
MIN_EXCHANGE_LIFETIME_S = TransportTuning().MAX_TRANSMIT_SPAN + 5.0
#: How often expired messages are forgotten.
SWEEP_INTERVAL_S = 1.0


class _Expiry:
    """When each remembered message of one message layer is to be forgotten, in order
    of arrival (lifetimes are one setting, so that is also the order of expiry)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, recent: dict[Any, Any]) -> None:
        self.loop = loop
        self.recent = recent
        self.due: deque[tuple[float, Any]] = deque()
        self.timer: asyncio.TimerHandle | None = None

    def add(self, key: Any, lifetime_s: float) -> None:
        deadline = self.loop.time() + lifetime_s
        self.due.append((deadline, key))
        if self.timer is None:
            self.timer = self.loop.call_at(deadline + SWEEP_INTERVAL_S, self.sweep)

    def sweep(self) -> None:
        now = self.loop.time()
        due, recent = self.due, self.recent
        while due and due[0][0] <= now:
            recent.pop(due.popleft()[1], None)
        self.timer = (
            self.loop.call_at(max(due[0][0], now + SWEEP_INTERVAL_S), self.sweep) if due else None
        )


def _deduplicate_message(self: Any, message: Any) -> bool:
    """aiocoap's check, with :class:`_Expiry` instead of a timer per message."""
    key = (message.remote, message.mid)
    recent = self._recent_messages
    if key in recent:
        return bool(_ORIGINAL_DEDUPLICATE(self, message))
    expiry = self.__dict__.get("_posfleet_expiry")
    if expiry is None:
        expiry = self._posfleet_expiry = _Expiry(self.loop, recent)
    expiry.add(key, message.transport_tuning.EXCHANGE_LIFETIME)
    recent[key] = None
    return False


def apply(seconds: float) -> float:
    """Use ``seconds`` (at least MIN_EXCHANGE_LIFETIME_S) for every received message, and
    the swept expiry queue instead of a timer per message."""
    seconds = max(seconds, MIN_EXCHANGE_LIFETIME_S)
    TransportTuning.EXCHANGE_LIFETIME = seconds  # type: ignore[misc, assignment]
    MessageManager._deduplicate_message = _deduplicate_message
    return seconds


def restore() -> None:
    TransportTuning.EXCHANGE_LIFETIME = _ORIGINAL  # type: ignore[misc]
    MessageManager._deduplicate_message = _ORIGINAL_DEDUPLICATE

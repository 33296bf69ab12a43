"""aiocoap's deduplication cache, made to cost less.

aiocoap keeps every received confirmable message with its response for EXCHANGE_LIFETIME
(RFC 7252 §4.8.2: 247 s) to answer retransmissions; measured here at about 2.4 KB each,
that is about 590 MB at 1,000 messages/s. The 247 s assume a MAX_LATENCY of 100 s; a
duplicate can only arrive while the sender still retransmits (MAX_TRANSMIT_SPAN, 45 s)
plus the time in flight, so a shorter window is safe for terminals with default
transmission parameters on ordinary networks. A duplicate seen after the window is
processed again, which the registration interface and Send tolerate (Send is idempotent
by Event ID; a repeated Register just replaces the registration).
"""

from __future__ import annotations

from aiocoap.numbers.constants import TransportTuning

_ORIGINAL = TransportTuning.__dict__["EXCHANGE_LIFETIME"]
#: Never below the sender's retransmission span plus a margin for flight time.
MIN_EXCHANGE_LIFETIME_S = TransportTuning().MAX_TRANSMIT_SPAN + 5.0


def apply(seconds: float) -> float:
    """Use ``seconds`` (at least MIN_EXCHANGE_LIFETIME_S) for every received message."""
    seconds = max(seconds, MIN_EXCHANGE_LIFETIME_S)
    TransportTuning.EXCHANGE_LIFETIME = seconds  # type: ignore[misc, assignment]
    return seconds


def restore() -> None:
    TransportTuning.EXCHANGE_LIFETIME = _ORIGINAL  # type: ignore[misc]

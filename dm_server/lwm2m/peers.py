"""Where each registered terminal can be reached right now.

A terminal sits behind NAT, so requests must go to the address it registered (or last
updated) from, through the same socket: the aiocoap remote of its last request. Plain-CoAP
peers can also be rebuilt from the stored address after a restart; a DTLS session cannot,
the terminal must talk to us first.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Peer:
    terminal_id: int
    endpoint: str
    scheme: str
    address: str
    lwm2m_version: str = "1.1"
    content_format: int | None = None
    queue_mode: bool = False
    #: The aiocoap remote of the terminal's last request, or None after a restart.
    remote: Any = None
    #: The DTLS identity it registered with (a Send over DTLS must come from the same).
    psk_identity: str | None = None
    #: time.monotonic() of the last message from the terminal (for queue mode).
    last_heard: float = field(default_factory=time.monotonic)

    @property
    def uri_base(self) -> str:
        return f"{self.scheme}://{self.address}"


class PeerTable:
    def __init__(self) -> None:
        self._by_terminal: dict[int, Peer] = {}
        self._by_address: dict[tuple[str, str], int] = {}

    def get(self, terminal_id: int) -> Peer | None:
        return self._by_terminal.get(terminal_id)

    def put(self, peer: Peer) -> None:
        self.drop(peer.terminal_id)
        self._by_terminal[peer.terminal_id] = peer
        self._by_address[(peer.scheme, peer.address)] = peer.terminal_id

    def drop(self, terminal_id: int) -> Peer | None:
        peer = self._by_terminal.pop(terminal_id, None)
        if peer is not None and self._by_address.get((peer.scheme, peer.address)) == terminal_id:
            del self._by_address[(peer.scheme, peer.address)]
        return peer

    def find_by_address(self, scheme: str, address: str) -> Peer | None:
        terminal_id = self._by_address.get((scheme, address))
        return None if terminal_id is None else self._by_terminal.get(terminal_id)

    def __len__(self) -> int:
        return len(self._by_terminal)

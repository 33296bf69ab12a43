"""PSK credentials for aiocoap's DTLS server transport, looked up in O(1).

aiocoap's ``CredentialsMap.find_dtls_psk`` scans every entry; with thousands of terminals
that is a linear search per handshake, so this map keeps identity -> key in a dict. The
claim it returns ends up in ``remote.authenticated_claims``, which is how the registration
handler learns who completed the handshake.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import aiocoap
from aiocoap.credentials import CredentialsMap
from aiocoap.transports.tinydtls import CODE_CLOSE_NOTIFY, LEVEL_WARNING, CloseNotifyReceived
from aiocoap.transports.tinydtls_server import (
    MessageInterfaceTinyDTLSServer,
    _AddressDTLS,
    _DatagramServerSocketSimpleDTLS,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PskClaim:
    """Proof that the peer knows the key of ``identity``."""

    identity: str


class PskStore(CredentialsMap):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self._keys: dict[bytes, bytes] = {}

    def set(self, identity: str, key: bytes) -> None:
        self._keys[identity.encode()] = key

    def remove(self, identity: str) -> None:
        self._keys.pop(identity.encode(), None)

    def __bool__(self) -> bool:
        # aiocoap replaces falsy credentials with an empty map: an empty store is still ours.
        return True

    @property
    def count(self) -> int:
        return len(self._keys)

    def find_dtls_psk(self, identity: bytes) -> tuple[bytes, PskClaim]:
        key = self._keys[bytes(identity)]  # KeyError: unknown identity, handshake fails
        return key, PskClaim(bytes(identity).decode(errors="replace"))


def psk_identity_of(remote: Any) -> str | None:
    """The PSK identity a DTLS remote authenticated with, or None (plain CoAP)."""
    for claim in getattr(remote, "authenticated_claims", None) or ():
        if isinstance(claim, PskClaim):
            return claim.identity
    return None


class _PeerSession(_AddressDTLS):  # type: ignore[misc]
    """One peer's DTLS session, ended when the peer says it is closing it.

    Peers send close_notify as a warning-level alert (aiocoap's own DTLS client does, when
    a terminal's agent stops); aiocoap's server only acts on a fatal one, logs "Unhandled
    alert level 1 code 0" and keeps the session. Kept, it belongs to that address for good:
    the next terminal a NAT (or the kernel) gives the same address and port to cannot
    handshake with its own identity ("DTLS stack tried accessing different keys"), which
    failed about 3 % of 2,000 fresh sessions in tests/server/measure_dtls.py.
    """

    def _event(self, level: int, code: int) -> None:
        if (level, code) == (LEVEL_WARNING, CODE_CLOSE_NOTIFY):
            self._inject_error(CloseNotifyReceived())
            return
        super()._event(level, code)


class _ServerSocket(_DatagramServerSocketSimpleDTLS):  # type: ignore[misc]
    _Address = _PeerSession

    def datagram_received(self, data: bytes, sockaddr: Any) -> None:
        """Hand the datagram to its address's session; drop a session that another
        identity is handshaking over.

        A session is kept per address and port. When another terminal gets that address
        and port (a NAT reusing a mapping, or a port reused without a close_notify),
        its handshake reaches the old session, and the PSK look-up refuses the second
        identity ("DTLS stack tried accessing different keys"). That look-up comes after
        tinydtls checked the handshake's cookie, so the new peer really holds the
        address: the old session is ended, and the new terminal's next handshake starts
        afresh instead of being refused for as long as the old session lived.
        """
        try:
            super().datagram_received(data, sockaddr)
        except Exception:
            stale = self._connections.get(sockaddr)
            if stale is None or stale._psk_store._claims is None:
                raise
            log.info(
                "DTLS: a new identity handshakes from %s, whose session was %s's; ended it",
                stale.hostinfo,
                stale._psk_store._claims,
            )
            stale._inject_error(aiocoap.error.LibraryShutdown("another peer took the address"))


class DtlsServerInterface(MessageInterfaceTinyDTLSServer):  # type: ignore[misc]
    """aiocoap's DTLS server transport, able to send requests back to its peers, and
    ending a peer's session on its close_notify (:class:`_PeerSession`).

    Upstream only recognises plain-socket addresses as its own (``recognize_remote``), so a
    request to a DTLS peer finds no interface ("NoRequestInterface"). The server must
    send DM requests to terminals over the session they opened, so this accepts the
    transport's own DTLS addresses too.
    """

    _serversocket = _ServerSocket

    async def recognize_remote(self, remote: Any) -> bool:
        return isinstance(remote, _AddressDTLS) and remote._protocol is self._pool


def forget_session(remote: Any) -> bool:
    """Drop the DTLS session of a peer whose registration lapsed.

    aiocoap's DTLS server keeps every session until shutdown (its purge is never called),
    (measured: 6-22 KB each with 300 peers, 3 KB with 2,000). A terminal silent for a whole
    lifetime handshakes again anyway.
    """
    if not isinstance(remote, _AddressDTLS):
        return False
    try:
        # close_notify first, so the terminal knows to handshake again.
        remote._dtls_socket.close(remote._dtls_session)
    except Exception:  # noqa: S110 - best effort; the session is dropped below either way
        pass
    try:
        remote._inject_error(aiocoap.error.LibraryShutdown("registration lapsed"))
    except KeyError:  # already gone
        pass
    return True


async def create_dtls_server_context(
    site: Any, bind: tuple[str, int], credentials: PskStore, loggername: str
) -> Any:
    """A server context with only :class:`DtlsServerInterface`, listening on bind port + 1."""
    import asyncio

    loop = asyncio.get_running_loop()
    context = aiocoap.Context(
        loop=loop, serversite=site, loggername=loggername, server_credentials=credentials
    )
    await context._append_tokenmanaged_messagemanaged_transport(
        lambda mman: DtlsServerInterface.create_server(
            bind, mman, log=context.log, loop=loop, server_credentials=credentials
        )
    )
    return context

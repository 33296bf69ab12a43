"""PSK credentials for aiocoap's DTLS server transport, looked up in O(1).

aiocoap's ``CredentialsMap.find_dtls_psk`` scans every entry; with thousands of terminals
that is a linear search per handshake, so this map keeps identity -> key in a dict. The
claim it returns ends up in ``remote.authenticated_claims``, which is how the registration
handler learns who completed the handshake.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiocoap
from aiocoap.credentials import CredentialsMap
from aiocoap.transports.tinydtls_server import MessageInterfaceTinyDTLSServer, _AddressDTLS


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


class DtlsServerInterface(MessageInterfaceTinyDTLSServer):  # type: ignore[misc]
    """aiocoap's DTLS server transport, able to send requests back to its peers.

    Upstream only recognises plain-socket addresses as its own (``recognize_remote``), so a
    request to a DTLS peer finds no interface ("NoRequestInterface"). The server must
    send DM requests to terminals over the session they opened, so this accepts the
    transport's own DTLS addresses too.
    """

    async def recognize_remote(self, remote: Any) -> bool:
        return isinstance(remote, _AddressDTLS) and remote._protocol is self._pool


def forget_session(remote: Any) -> bool:
    """Drop the DTLS session of a peer whose registration lapsed.

    aiocoap's DTLS server keeps every session until shutdown (its purge is never called),
    about 22 KB each. A terminal silent for a whole lifetime handshakes again anyway.
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

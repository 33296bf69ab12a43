"""PSK credentials for aiocoap's DTLS server transport, looked up in O(1).

aiocoap's ``CredentialsMap.find_dtls_psk`` scans every entry; with thousands of terminals
that is a linear search per handshake, so this map keeps identity -> key in a dict. The
claim it returns ends up in ``remote.authenticated_claims``, which is how the registration
handler learns who completed the handshake.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiocoap.credentials import CredentialsMap


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

    def __len__(self) -> int:
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

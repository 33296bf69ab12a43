"""Signed licence tokens, shared by the DM server (signs) and the terminal (verifies offline).

A token is two base64url segments (no padding) joined by a dot, like a compact JWS without
a header::

    base64url(canonical JSON payload) "." base64url(Ed25519 signature over segment 1)

The signature covers the *encoded* payload segment, so the verifier never has to
re-canonicalise JSON. The payload names its format version (``v``), the key that signed it
(``kid``: the first 8 bytes of SHA-256 of the raw public key, hex) and the terminal's
endpoint name, so a token copied to another terminal or signed by another key is refused.
Times are whole seconds since the Unix epoch (UTC).

The manufacturer's private key lives in a file outside the database (PKCS#8 PEM, mode
0600); terminals get the 32-byte raw public key as base64url text (:func:`public_key_text`).
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

#: Version of the payload layout; a verifier refuses versions it does not know.
TOKEN_FORMAT_VERSION = 1
#: Upper bound on an encoded token; anything longer is garbage, refused before decoding.
MAX_TOKEN_LENGTH = 4096
#: Length of an Ed25519 signature and raw public key, in bytes (RFC 8032).
SIGNATURE_LENGTH = 64
PUBLIC_KEY_LENGTH = 32
#: Bytes of the public key's SHA-256 kept as its key id.
KEY_ID_BYTES = 8
#: Owner-only read/write: the signing key must not be readable by other users.
PRIVATE_KEY_FILE_MODE = 0o600


class LicenceTokenError(ValueError):
    """A token could not be built (bad licence fields) or a key file could not be used."""


class LicenceState(enum.IntEnum):
    """What a terminal concludes from its token; the integer goes into object 26242."""

    VALID = 0
    GRACE = 1
    EXPIRED = 2
    INVALID = 3
    NOT_YET_VALID = 4
    ABSENT = 5
    #: Set by the terminal when the server executes Revoke (/26242/0/11), never by a token.
    REVOKED = 6


class Edition(enum.StrEnum):
    """Editions the manufacturer sells; list prices per edition live in the server settings."""

    BASIC = "basic"
    STANDARD = "standard"
    PREMIUM = "premium"


@dataclass(frozen=True)
class Licence:
    """The facts a token carries. ``features`` are kept sorted so equal licences sign equal."""

    licence_id: str
    endpoint: str
    edition: str
    features: tuple[str, ...]
    issued: datetime
    starts: datetime
    expires: datetime
    grace_days: int
    key_id: str = ""

    def grace_ends(self) -> datetime:
        return self.expires + timedelta(days=self.grace_days)

    def to_payload(self) -> dict[str, object]:
        return {
            "v": TOKEN_FORMAT_VERSION,
            "lid": self.licence_id,
            "ep": self.endpoint,
            "ed": self.edition,
            "ft": sorted(set(self.features)),
            "iat": _epoch(self.issued),
            "nbf": _epoch(self.starts),
            "exp": _epoch(self.expires),
            "grace": self.grace_days,
            "kid": self.key_id,
        }

    @classmethod
    def from_payload(cls, payload: dict[str, object]) -> Licence:
        """Rebuild a licence from a decoded payload; raises ``ValueError`` on a bad field."""
        if payload.get("v") != TOKEN_FORMAT_VERSION:
            raise ValueError(f"unknown token format version {payload.get('v')!r}")
        features = payload.get("ft")
        if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
            raise ValueError("features must be a list of strings")
        grace = payload.get("grace")
        if not isinstance(grace, int) or isinstance(grace, bool) or grace < 0:
            raise ValueError("grace days must be a non-negative integer")
        return cls(
            licence_id=_text(payload, "lid"),
            endpoint=_text(payload, "ep"),
            edition=_text(payload, "ed"),
            features=tuple(features),
            issued=_from_epoch(payload, "iat"),
            starts=_from_epoch(payload, "nbf"),
            expires=_from_epoch(payload, "exp"),
            grace_days=grace,
            key_id=_text(payload, "kid"),
        )


@dataclass(frozen=True)
class LicenceStatus:
    """Outcome of :func:`verify_token`: a state, a reason a person can read, and the licence
    when the token was authentic (also for expired ones, so the terminal can show dates)."""

    state: LicenceState
    reason: str
    licence: Licence | None = field(default=None)

    @property
    def usable(self) -> bool:
        """True while the terminal may run licensed features (valid or in grace)."""
        return self.state in (LicenceState.VALID, LicenceState.GRACE)


# --- keys -------------------------------------------------------------------------------


def key_id(public_key: Ed25519PublicKey) -> str:
    """Short stable name of a public key, carried in every token it verifies."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).digest()[:KEY_ID_BYTES].hex()


def public_key_text(public_key: Ed25519PublicKey) -> str:
    """The raw public key as base64url text: what terminals are configured with."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return _b64encode(raw)


def public_key_from_text(text: str) -> Ed25519PublicKey:
    """Inverse of :func:`public_key_text`; raises :class:`LicenceTokenError` on bad input."""
    try:
        raw = _b64decode(text.strip())
    except ValueError as exc:
        raise LicenceTokenError(f"public key is not base64url: {exc}") from exc
    if len(raw) != PUBLIC_KEY_LENGTH:
        raise LicenceTokenError(
            f"public key must be {PUBLIC_KEY_LENGTH} bytes, got {len(raw)}"
        )
    return Ed25519PublicKey.from_public_bytes(raw)


def load_or_create_signing_key(path: Path) -> Ed25519PrivateKey:
    """Load the manufacturer's signing key, creating it (mode 0600) on first start.

    The file is created with ``O_EXCL`` so two processes starting at once cannot each
    write a different key; the loser reads the winner's.
    """
    path = Path(path)
    if path.exists():
        return load_signing_key(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    private_key = Ed25519PrivateKey.generate()
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_KEY_FILE_MODE)
    except FileExistsError:
        return load_signing_key(path)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return private_key


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """Read a PKCS#8 PEM Ed25519 private key; refuses other key types."""
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise LicenceTokenError(f"cannot read signing key {path}: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise LicenceTokenError(f"{path} is not an Ed25519 private key")
    return key


# --- tokens -----------------------------------------------------------------------------


def sign_token(private_key: Ed25519PrivateKey, licence: Licence) -> str:
    """Sign ``licence`` and return the compact token; the key id is filled in here."""
    if not licence.endpoint or not licence.licence_id:
        raise LicenceTokenError("a licence needs a licence id and a terminal endpoint")
    if any(t.tzinfo is None for t in (licence.issued, licence.starts, licence.expires)):
        raise LicenceTokenError("licence times must be timezone-aware (UTC)")
    if licence.expires <= licence.starts:
        raise LicenceTokenError("a licence must expire after it starts")
    if licence.grace_days < 0:
        raise LicenceTokenError("grace days cannot be negative")
    payload = dict(licence.to_payload(), kid=key_id(private_key.public_key()))
    body = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    segment = _b64encode(body.encode("ascii"))
    signature = private_key.sign(segment.encode("ascii"))
    return f"{segment}.{_b64encode(signature)}"


def decode_unverified(token: str) -> Licence:
    """Read a token's licence *without* checking the signature (for display and lookup
    only; never for a decision). Raises ``ValueError`` on a malformed token."""
    segment, _signature = _split(token)
    return Licence.from_payload(_payload(segment))


def verify_token(
    token: str,
    public_key: Ed25519PublicKey | Iterable[Ed25519PublicKey],
    endpoint: str,
    now: datetime | None = None,
) -> LicenceStatus:
    """Decide offline whether ``token`` licenses terminal ``endpoint`` at ``now``.

    Several public keys may be trusted at once (key rotation); the token's ``kid`` picks
    one. Never raises on bad input: every problem is an ``INVALID`` status with a reason.
    """
    now = now or datetime.now(UTC)
    if not token:
        return LicenceStatus(LicenceState.ABSENT, "no licence token installed")
    try:
        segment, signature = _split(token)
        payload = _payload(segment)
    except ValueError as exc:
        return LicenceStatus(LicenceState.INVALID, f"malformed token: {exc}")
    keys = [public_key] if isinstance(public_key, Ed25519PublicKey) else list(public_key)
    by_id = {key_id(key): key for key in keys}
    key = by_id.get(str(payload.get("kid", "")))
    if key is None:
        return LicenceStatus(LicenceState.INVALID, "signed by a key this terminal does not trust")
    try:
        key.verify(signature, segment.encode("ascii"))
    except InvalidSignature:
        return LicenceStatus(LicenceState.INVALID, "signature does not match: token altered")
    try:
        licence = Licence.from_payload(payload)
    except ValueError as exc:
        return LicenceStatus(LicenceState.INVALID, f"bad licence field: {exc}")
    if licence.endpoint != endpoint:
        return LicenceStatus(
            LicenceState.INVALID, f"licence is for terminal {licence.endpoint!r}", licence
        )
    if now < licence.starts:
        return LicenceStatus(
            LicenceState.NOT_YET_VALID, f"licence starts {licence.starts.isoformat()}", licence
        )
    if now < licence.expires:
        return LicenceStatus(LicenceState.VALID, "licence valid", licence)
    if now < licence.grace_ends():
        return LicenceStatus(
            LicenceState.GRACE,
            f"licence expired, grace period ends {licence.grace_ends().isoformat()}",
            licence,
        )
    return LicenceStatus(
        LicenceState.EXPIRED, f"licence expired {licence.expires.isoformat()}", licence
    )


# --- helpers ----------------------------------------------------------------------------


def _split(token: str) -> tuple[str, bytes]:
    if not isinstance(token, str):
        raise ValueError("token must be text")
    token = token.strip()
    if len(token) > MAX_TOKEN_LENGTH:
        raise ValueError(f"longer than {MAX_TOKEN_LENGTH} characters")
    parts = token.split(".")
    if len(parts) != 2 or not all(parts):
        raise ValueError("expected two dot-separated segments")
    signature = _b64decode(parts[1])
    if len(signature) != SIGNATURE_LENGTH:
        raise ValueError(f"signature must be {SIGNATURE_LENGTH} bytes")
    return parts[0], signature


def _payload(segment: str) -> dict[str, object]:
    try:
        payload = json.loads(_b64decode(segment).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"payload is not JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise ValueError("payload is not a JSON object")
    return payload


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    if not text.isascii():
        raise ValueError("not base64url")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except binascii.Error as exc:
        raise ValueError(f"not base64url: {exc}") from exc


def _epoch(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise LicenceTokenError("licence times must be timezone-aware (UTC)")
    return int(moment.timestamp())


def _from_epoch(payload: dict[str, object], name: str) -> datetime:
    value = payload.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} must be whole seconds since the epoch")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise ValueError(f"{name} out of range") from exc


def _text(payload: dict[str, object], name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str):
        raise ValueError(f"{name} must be text")
    return value

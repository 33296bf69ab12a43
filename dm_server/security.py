"""The only home of password hashing, API tokens and generated secrets.

Passwords: Argon2 via pwdlib. API tokens: bearer tokens signed with a server secret
(itsdangerous, HMAC-SHA256) carrying the account id and issue time; they expire after
``token_lifetime_s`` and die with the account (disabled accounts are refused at use).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from pwdlib import PasswordHash

_hasher = PasswordHash.recommended()

#: Bytes of randomness in a generated PSK or password.
GENERATED_SECRET_BYTES = 16
TOKEN_SALT = "posfleet-api-token"  # noqa: S105 - a salt name, not a secret
SECRET_FILE = "token-secret"  # noqa: S105 - a file name


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str) -> bool:
    try:
        return _hasher.verify(password, password_hash)
    except Exception:  # a malformed stored hash must not crash log-in: it just fails
        return False


def generate_password() -> str:
    return secrets.token_urlsafe(GENERATED_SECRET_BYTES)


def generate_psk() -> bytes:
    return secrets.token_bytes(GENERATED_SECRET_BYTES)


def load_or_create_secret(data_dir: Path, name: str = SECRET_FILE) -> str:
    """A secret kept in the data folder (mode 0600), created on first use; ``name`` keeps
    the API-token secret and the dashboard's session-cookie secret apart."""
    path = data_dir / name
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(32)
    path.touch(mode=0o600)
    path.write_text(secret)
    return secret


class InvalidToken(Exception):
    """The bearer token is malformed, forged or expired."""


@dataclass(frozen=True)
class TokenSigner:
    secret: str
    lifetime_s: int

    def _serializer(self) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self.secret, salt=TOKEN_SALT)

    def issue(self, account_id: int) -> str:
        return str(self._serializer().dumps({"sub": account_id}))

    def verify(self, token: str) -> int:
        """The account id in a valid token; InvalidToken otherwise."""
        try:
            data = self._serializer().loads(token, max_age=self.lifetime_s)
        except SignatureExpired:
            raise InvalidToken("the token has expired: log in again") from None
        except BadSignature:
            raise InvalidToken("the token is not valid: log in again") from None
        subject = data.get("sub") if isinstance(data, dict) else None
        if not isinstance(subject, int):
            raise InvalidToken("the token is not valid: log in again")
        return subject

"""The licence token: signed by the server, verified offline by the terminal."""

from __future__ import annotations

import base64
import json
import stat
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from posfleet.licence_token import (
    Licence,
    LicenceState,
    LicenceTokenError,
    decode_unverified,
    key_id,
    load_or_create_signing_key,
    public_key_from_text,
    public_key_text,
    sign_token,
    verify_token,
)

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def _licence(**changes: object) -> Licence:
    fields: dict[str, object] = {
        "licence_id": "L-1",
        "endpoint": "pos-0001",
        "edition": "standard",
        "features": ("face", "loyalty"),
        "issued": NOW - timedelta(days=1),
        "starts": NOW - timedelta(days=1),
        "expires": NOW + timedelta(days=30),
        "grace_days": 7,
    }
    fields.update(changes)
    return Licence(**fields)  # type: ignore[arg-type]


@pytest.fixture()
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def test_round_trip_valid(key: Ed25519PrivateKey) -> None:
    token = sign_token(key, _licence())
    status = verify_token(token, key.public_key(), "pos-0001", NOW)
    assert status.state is LicenceState.VALID and status.usable
    assert status.licence is not None
    assert status.licence.features == ("face", "loyalty")
    assert status.licence.key_id == key_id(key.public_key())
    assert decode_unverified(token).expires == NOW + timedelta(days=30)


@pytest.mark.parametrize(
    ("moment", "state"),
    [
        (NOW - timedelta(days=2), LicenceState.NOT_YET_VALID),
        (NOW + timedelta(days=29), LicenceState.VALID),
        (NOW + timedelta(days=31), LicenceState.GRACE),
        (NOW + timedelta(days=37, seconds=1), LicenceState.EXPIRED),
    ],
)
def test_expiry_with_grace(key: Ed25519PrivateKey, moment: datetime, state: LicenceState) -> None:
    status = verify_token(sign_token(key, _licence()), key.public_key(), "pos-0001", moment)
    assert status.state is state
    assert status.usable == (state in (LicenceState.VALID, LicenceState.GRACE))


def test_foreign_terminal_refused(key: Ed25519PrivateKey) -> None:
    status = verify_token(sign_token(key, _licence()), key.public_key(), "pos-0002", NOW)
    assert status.state is LicenceState.INVALID
    assert "pos-0001" in status.reason


def test_other_key_refused(key: Ed25519PrivateKey) -> None:
    other = Ed25519PrivateKey.generate()
    status = verify_token(sign_token(other, _licence()), key.public_key(), "pos-0001", NOW)
    assert status.state is LicenceState.INVALID and "trust" in status.reason


def test_key_rotation_accepts_any_trusted_key(key: Ed25519PrivateKey) -> None:
    old = Ed25519PrivateKey.generate()
    token = sign_token(old, _licence())
    status = verify_token(token, [key.public_key(), old.public_key()], "pos-0001", NOW)
    assert status.state is LicenceState.VALID


def test_tampered_payload_refused(key: Ed25519PrivateKey) -> None:
    segment, signature = sign_token(key, _licence()).split(".")
    payload = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    payload["exp"] += 365 * 86_400
    forged = base64.urlsafe_b64encode(
        json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    ).rstrip(b"=").decode()
    status = verify_token(f"{forged}.{signature}", key.public_key(), "pos-0001", NOW)
    assert status.state is LicenceState.INVALID and "altered" in status.reason


@pytest.mark.parametrize(
    "token",
    ["garbage", "a.b.c", ".", "x" * 5000, "Zm9v.AAAA", "é.é", "e30." + "A" * 86],
)
def test_garbage_is_invalid_not_a_crash(key: Ed25519PrivateKey, token: str) -> None:
    assert verify_token(token, key.public_key(), "pos-0001", NOW).state is LicenceState.INVALID


def test_empty_token_is_absent(key: Ed25519PrivateKey) -> None:
    assert verify_token("", key.public_key(), "pos-0001", NOW).state is LicenceState.ABSENT


def test_sign_refuses_nonsense(key: Ed25519PrivateKey) -> None:
    with pytest.raises(LicenceTokenError):
        sign_token(key, _licence(expires=NOW - timedelta(days=5)))
    with pytest.raises(LicenceTokenError):
        sign_token(key, _licence(endpoint=""))
    with pytest.raises(LicenceTokenError):
        sign_token(key, _licence(starts=datetime(2026, 1, 1)))  # naive time


def test_key_file_created_once_with_mode_0600(tmp_path) -> None:
    path = tmp_path / "keys" / "licence-signing.pem"
    first = load_or_create_signing_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = load_or_create_signing_key(path)
    assert key_id(first.public_key()) == key_id(second.public_key())
    text = public_key_text(first.public_key())
    assert key_id(public_key_from_text(text)) == key_id(first.public_key())
    with pytest.raises(LicenceTokenError):
        public_key_from_text("AAAA")

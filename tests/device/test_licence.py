"""Object 26242 on the agent: tokens verified offline with the manufacturer key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiocoap.numbers.codes import Code
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lwm2m_core.numbers import ContentFormat
from posfleet.licence_token import Licence, LicenceState, sign_token

EP = "t-test"


def token(key, endpoint=EP, days=(-1, 30), grace=7):  # type: ignore[no-untyped-def]
    now = datetime.now(UTC).replace(microsecond=0)
    licence = Licence("L-1", endpoint, "premium", ("loyalty", "face"), now,
                      now + timedelta(days=days[0]), now + timedelta(days=days[1]), grace)
    return sign_token(key, licence)


async def write(stub, value: str):  # type: ignore[no-untyped-def]
    return await stub.request(EP, Code.PUT, "/26242/0/0", value.encode(),
                              content_format=ContentFormat.TEXT)


async def status(stub) -> int:  # type: ignore[no-untyped-def]
    return int((await stub.request(EP, Code.GET, "/26242/0/1")).payload)


async def test_licence_tokens(agent, stub, manufacturer_key):
    assert await status(stub) == LicenceState.ABSENT
    good = token(manufacturer_key)
    assert (await write(stub, good)).code == Code.CHANGED
    assert await status(stub) == LicenceState.VALID
    assert (await stub.request(EP, Code.GET, "/26242/0/3")).payload == b"premium"
    features = stub.decode(await stub.request(EP, Code.GET, "/26242/0/4",
                                              accept=ContentFormat.SENML_CBOR), "/26242/0/4")
    assert sorted(features.instances.values()) == ["face", "loyalty"]

    # Refused, and the licence in force stays: tampered, foreign key, other terminal, junk.
    tampered = good[:-3] + ("A" if good[-3] != "A" else "B") + good[-2:]
    for bad in (tampered, token(Ed25519PrivateKey.generate()),
                token(manufacturer_key, endpoint="someone-else"), "not-a-token"):
        response = await write(stub, bad)
        assert response.code == Code.BAD_REQUEST, bad
        assert (await stub.request(EP, Code.GET, "/26242/0/0")).payload == good.encode()
        assert await status(stub) == LicenceState.VALID

    # Authentic but expired: kept, reported in grace, then expired.
    assert (await write(stub, token(manufacturer_key, days=(-40, -2)))).code == Code.CHANGED
    assert await status(stub) == LicenceState.GRACE
    assert (await write(stub, token(manufacturer_key, days=(-40, -20)))).code == Code.CHANGED
    assert await status(stub) == LicenceState.EXPIRED

    assert (await stub.request(EP, Code.POST, "/26242/0/11")).code == Code.CHANGED
    assert await status(stub) == LicenceState.REVOKED
    assert (await write(stub, good)).code == Code.CHANGED
    assert await status(stub) == LicenceState.VALID
    assert (await write(stub, "")).code == Code.CHANGED
    assert await status(stub) == LicenceState.ABSENT

"""The REST API: log-in, provisioning (one, bulk, CSV), listing, scoping, errors."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from dm_server.db.models import Account, Role, Terminal
from dm_server.services import accounts
from tests.server.conftest import ADMIN_PASSWORD
from tests.server.test_registration import provision

pytestmark = pytest.mark.db


async def test_login_errors_are_json_without_internals(server, api):
    bare = api.__class__(base_url=api.base_url)
    async with bare:
        answer = await bare.post("/api/v1/auth/token", data={"username": "admin", "password": "x"})
        assert answer.status_code == 401
        assert answer.json() == {"detail": "wrong user name or password"}
        answer = await bare.get("/api/v1/terminals")
        assert answer.status_code == 401 and "log in" in answer.json()["detail"]
        answer = await bare.get("/api/v1/terminals", headers={"Authorization": "Bearer forged"})
        assert answer.status_code == 401 and "not valid" in answer.json()["detail"]
        ok = await bare.post(
            "/api/v1/auth/token", data={"username": "admin", "password": ADMIN_PASSWORD}
        )
        assert ok.status_code == 200 and ok.json()["token_type"] == "bearer"
    me = (await api.get("/api/v1/auth/me")).json()
    assert me["username"] == "admin" and me["role"] == "admin"


async def test_provision_one_bulk_and_csv(server, api):
    created = await provision(api, "pos-a", mode="psk")
    assert created["psk_identity"] == "pos-a"
    assert len(bytes.fromhex(created["psk_key_hex"])) == 16
    assert server.psk_store.find_dtls_psk(b"pos-a")[0].hex() == created["psk_key_hex"]

    answer = await api.post(
        "/api/v1/terminals",
        json=[
            {"endpoint": "pos-b", "security_mode": "nosec"},
            {
                "endpoint": "pos-c",
                "psk_identity": "id-c",
                "psk_key_hex": "00112233445566778899aabb",
            },
        ],
    )
    assert answer.status_code == 201, answer.text
    csv_text = (
        "endpoint,security_mode,psk_identity,psk_key_hex\n"
        "pos-d,psk,id-d,0102030405060708090a0b0c0d0e0f10\n"
        "pos-e,nosec,,\n"
    )
    answer = await api.post(
        "/api/v1/terminals/import", content=csv_text.encode(), headers={"Content-Type": "text/csv"}
    )
    assert answer.status_code == 201, answer.text
    assert [t["endpoint"] for t in answer.json()] == ["pos-d", "pos-e"]

    # All or nothing: one taken endpoint refuses the whole batch.
    answer = await api.post("/api/v1/terminals/import", content=b"endpoint\npos-f\npos-a\n")
    assert answer.status_code == 409 and "pos-a" in answer.json()["detail"]
    assert (await api.get("/api/v1/terminals/pos-f")).status_code == 404
    answer = await api.post("/api/v1/terminals/import", content=b"endpoint,psk_key_hex\nx,zz\n")
    assert answer.status_code == 422 and "line 2" in answer.json()["detail"]
    answer = await api.post("/api/v1/terminals", json={"endpoint": "bad name!"})
    assert answer.status_code == 422 and "endpoint name" in answer.json()["detail"]
    answer = await api.post("/api/v1/terminals", json={"endpoint": "x", "psk_key_hex": "0011"})
    assert answer.status_code == 422 and "PSK must be" in answer.json()["detail"]

    listed = (await api.get("/api/v1/terminals", params={"limit": 2})).json()
    assert listed["total"] == 5 and len(listed["items"]) == 2
    assert "psk_key_hex" not in listed["items"][0]
    found = (await api.get("/api/v1/terminals", params={"q": "pos-d"})).json()
    assert [t["endpoint"] for t in found["items"]] == ["pos-d"]
    offline = (await api.get("/api/v1/terminals", params={"state": "offline"})).json()
    assert offline["total"] == 5
    assert (await api.get("/api/v1/fleet/state")).json() == {"running": 0, "idle": 0, "offline": 5}
    assert (await api.get("/api/v1/terminals", params={"state": "bogus"})).status_code == 422


async def test_every_terminal_query_is_scoped_to_the_callers_subtree(server, api):
    for endpoint in ("mine-1", "theirs-1", "unassigned-1"):
        await provision(api, endpoint)
    async with server.db.session() as session:
        admin = await session.scalar(select(Account).where(Account.username == "admin"))
        dealer_a = await accounts.create_account(
            session,
            admin,
            parent_id=admin.id,
            username="dealer-a",
            password="dealer-a-pass",
            role=Role.DEALER,
        )
        dealer_b = await accounts.create_account(
            session,
            admin,
            parent_id=admin.id,
            username="dealer-b",
            password="dealer-b-pass",
            role=Role.DEALER,
        )
        owner_a = await accounts.create_account(
            session,
            dealer_a,
            parent_id=dealer_a.id,
            username="owner-a",
            password="owner-a-pass",
            role=Role.OWNER,
        )
        owner_b = await accounts.create_account(
            session,
            dealer_b,
            parent_id=dealer_b.id,
            username="owner-b",
            password="owner-b-pass",
            role=Role.OWNER,
        )
        for endpoint, owner in (("mine-1", owner_a), ("theirs-1", owner_b)):
            terminal = await session.scalar(select(Terminal).where(Terminal.endpoint == endpoint))
            terminal.owner_id = owner.id

    async def login(username: str) -> dict[str, str]:
        answer = await api.post(
            "/api/v1/auth/token", data={"username": username, "password": f"{username}-pass"}
        )
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}

    for username in ("dealer-a", "owner-a"):
        headers = await login(username)
        listed = (await api.get("/api/v1/terminals", headers=headers)).json()
        assert [t["endpoint"] for t in listed["items"]] == ["mine-1"], username
        for other in ("theirs-1", "unassigned-1"):
            for method, url in (
                ("GET", f"/api/v1/terminals/{other}"),
                ("GET", f"/api/v1/terminals/{other}/events"),
                ("POST", f"/api/v1/terminals/{other}/read"),
                ("GET", f"/api/v1/terminals/{other}/operations/1"),
            ):
                answer = await api.request(method, url, headers=headers, json={"path": "/3/0"})
                assert answer.status_code == 404, (username, method, url)
        assert (await api.get("/api/v1/fleet/state", headers=headers)).json()["offline"] == 1
    admin_list = (await api.get("/api/v1/terminals")).json()
    assert admin_list["total"] == 3
    # A dealer may not provision for an owner outside its subtree.
    headers = await login("dealer-a")
    answer = await api.post(
        "/api/v1/terminals", json={"endpoint": "new-1", "owner_id": owner_b.id}, headers=headers
    )
    assert answer.status_code == 404


async def test_unknown_routes_and_bad_json_are_json_errors(server, api):
    answer = await api.get("/api/v1/nothing")
    assert answer.status_code == 404 and "detail" in answer.json()
    answer = await api.post(
        "/api/v1/terminals", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 422 and answer.json()["detail"]


async def test_first_start_generates_and_prints_the_admin_password(settings, capsys):
    from dataclasses import replace

    import httpx

    from dm_server.server import start_server

    server = await start_server(replace(settings, admin_password=""), extensions=[])
    try:
        password = server.generated_admin_password
        assert password and len(password) >= 16
        assert password in capsys.readouterr().out
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}") as client:
            answer = await client.post(
                "/api/v1/auth/token", data={"username": "admin", "password": password}
            )
            assert answer.status_code == 200
    finally:
        await server.stop()
    # A second start finds the admin and generates nothing.
    again = await start_server(replace(settings, admin_password=""), extensions=[])
    try:
        assert again.generated_admin_password is None
    finally:
        await again.stop()


def test_posfleet_db_commands(database_url, tmp_path):
    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine, text

    from dm_server.db.migrate import alembic_config
    from dm_server.db.session import sync_url
    from posfleet.cli import main

    def revision() -> str:
        engine = create_engine(sync_url(database_url))
        with engine.connect() as db:
            found = db.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        engine.dispose()
        return found

    common = ["--database-url", database_url, "--data-dir", str(tmp_path)]
    assert main(["db", "upgrade", "0001", *common]) == 0
    assert revision() == "0001"
    assert main(["db", "upgrade", *common]) == 0
    assert (
        revision() == ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()
    )
    assert main(["db", "current", *common]) == 0

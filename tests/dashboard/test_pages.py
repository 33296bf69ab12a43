"""Dashboard pages over HTTP (no browser): log-in, CSRF, lock-out, scoping, escaping."""

from __future__ import annotations

import pytest

from dm_server.db.models.terminal import SecurityMode, Terminal
from dm_server.db.session import Database

from .conftest import PASSWORD, Tree, csrf_of, login

pytestmark = pytest.mark.db


async def test_login_logout_and_pages(client_factory, tree: Tree) -> None:
    client = client_factory()
    assert (await client.get("/")).status_code == 303
    csrf = await login(client, "dealer-a")
    for path in ("/", "/terminals", "/organization", "/licences", "/reports", "/audit",
                 "/profile", "/terminals/pos-owner-a1", "/reports/terminals.csv"):
        response = await client.get(path)
        assert response.status_code == 200, (path, response.text[:500])
    overview = await client.get("/")
    assert "Content-Security-Policy" in overview.headers
    assert "owner-b1" not in overview.text and "dealer-b" not in overview.text
    assert (await client.get("/server")).status_code == 403
    assert (await client.get("/terminals/pos-owner-b1")).status_code == 404
    csv_text = (await client.get("/reports/terminals.csv")).text
    assert "pos-owner-a1" in csv_text and "pos-owner-b1" not in csv_text
    response = await client.post("/logout", data={"csrf_token": csrf})
    assert response.status_code == 303
    assert (await client.get("/")).status_code == 303


async def test_form_without_csrf_is_refused(client_factory, tree: Tree) -> None:
    client = client_factory()
    await login(client, "dealer-a")
    response = await client.post("/organization/accounts", data={
        "parent_id": tree.dealer_a.id, "username": "sneaky", "password": PASSWORD,
        "role": "owner"})
    assert response.status_code == 403
    organisation = await client.get("/organization")
    assert "sneaky" not in organisation.text


async def test_lockout_after_failures(client_factory, tree: Tree) -> None:
    client = client_factory()
    for _ in range(3):
        page = await client.get("/login")
        response = await client.post("/login", data={
            "username": "owner-a1", "password": "wrong-wrong", "csrf_token": csrf_of(page.text)})
        assert response.status_code == 401
    page = await client.get("/login")
    response = await client.post("/login", data={
        "username": "owner-a1", "password": PASSWORD, "csrf_token": csrf_of(page.text)})
    assert response.status_code == 401


async def test_password_change_ends_other_sessions(client_factory, tree: Tree) -> None:
    first, second = client_factory(), client_factory()
    csrf = await login(first, "owner-a1")
    await login(second, "owner-a1")
    response = await first.post("/profile/password", data={
        "csrf_token": csrf, "current_password": PASSWORD, "new_password": "another-pass-2",
        "repeat_password": "another-pass-2"})
    assert response.status_code == 303
    assert (await first.get("/profile")).status_code == 200
    assert (await second.get("/profile")).status_code == 303  # logged out


async def test_terminal_strings_are_escaped(client_factory, tree: Tree,
                                            database: Database) -> None:
    from dm_server.db.models.event import Event

    async with database.session() as session:
        terminal = Terminal(endpoint="pos-x", owner_id=tree.owner_a1.id,
                            security_mode=SecurityMode.NOSEC)
        session.add(terminal)
        await session.flush()
        session.add(Event(terminal_id=terminal.id, event_uid="e1",
                          kind="<script>alert(1)</script>", amount=1000, currency="KRW",
                          data={"note": "<img src=x onerror=alert(1)>"}))
    client = client_factory()
    await login(client, "owner-a1")
    for path in ("/", "/terminals/pos-x"):
        html = (await client.get(path)).text
        assert "<script>alert(1)</script>" not in html
        assert "<img src=x" not in html
        assert "&lt;script&gt;" in html


async def test_korean_user_sees_korean(client_factory, tree: Tree) -> None:
    client = client_factory()
    csrf = await login(client, "dealer-a")
    await client.post("/profile", data={"csrf_token": csrf, "display_name": "딜러 A",
                                        "locale": "ko"})
    html = (await client.get("/licences")).text
    assert 'lang="ko"' in html
    assert "라이선스" in html


async def test_refused_form_shows_the_service_message_in_korean(client_factory,
                                                               tree: Tree) -> None:
    """A service refuses in English templates; a Korean dealer reads the reason in Korean,
    values filled in (and words from data, such as roles, translated too)."""
    client = client_factory()
    csrf = await login(client, "dealer-a")
    await client.post("/profile", data={"csrf_token": csrf, "display_name": "딜러 A",
                                        "locale": "ko"})
    response = await client.post(
        "/organization/accounts",
        data={"csrf_token": csrf, "parent_id": tree.dealer_a.id, "username": "short-pw",
              "password": "abc", "role": "owner"},
        headers={"referer": "/organization"},
    )
    assert response.status_code == 303
    page = (await client.get("/organization")).text
    assert "비밀번호는 8자 이상이어야 합니다." in page
    assert "a password needs" not in page and "short-pw" not in page
    refused = await client.post(
        "/organization/accounts",
        data={"csrf_token": csrf, "parent_id": tree.owner_a1.id, "username": "below-owner",
              "password": PASSWORD, "role": "dealer"},
    )
    assert refused.status_code == 403
    assert "매장 점주 계정 아래에는 대리점 계정을 둘 수 없습니다." in refused.text


async def test_live_stream_sends_counts_and_new_events(client_factory, tree: Tree,
                                                       database: Database, monkeypatch) -> None:
    from dashboard import live
    from dm_server.db.base import utcnow
    from dm_server.db.models.event import Event

    monkeypatch.setattr(live, "TICK_S", 0.05)
    client = client_factory()
    await login(client, "dealer-a")
    response = await client.get("/live?ticks=2")
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.text.count("event: update") == 2
    assert '"counts": {"running": 0, "idle": 0, "offline": 2}' in response.text
    assert (await client.get("/live?terminal=pos-owner-b1&ticks=1")).status_code == 404

    async with database.session() as session:
        first, last_id = await live._snapshot(session, tree.dealer_a, tree.dealer_a, "",
                                              utcnow(), None)
        assert "events" not in first
        session.add(Event(terminal_id=1, event_uid="live-1", kind="<b>refund</b>",
                          amount=5000, currency="KRW"))
        session.add(Event(terminal_id=3, event_uid="live-2", kind="sale", amount=1,
                          currency="KRW"))  # pos-owner-b1: another dealer's
        await session.flush()
        second, _ = await live._snapshot(session, tree.dealer_a, tree.dealer_a, "",
                                         utcnow(), last_id)
    assert [(e["endpoint"], e["kind"]) for e in second["events"]] == [
        ("pos-owner-a1", "<b>refund</b>")]  # raw in JSON; app.js inserts it as text


async def test_api_token_from_profile_has_the_accounts_rights(client_factory, tree: Tree,
                                                              settings) -> None:
    import re
    import stat

    key_file = settings.resolved_licence_key_file
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600  # created at start
    client = client_factory()
    csrf = await login(client, "owner-s1")
    response = await client.post("/profile/api-token", data={"csrf_token": csrf})
    assert response.status_code == 303
    page = (await client.get("/profile")).text
    token = re.search(r"data-api-token>([^<]+)<", page).group(1)
    api = client_factory()
    headers = {"Authorization": f"Bearer {token}"}
    me = (await api.get("/api/v1/auth/me", headers=headers)).json()
    assert me["username"] == "owner-s1" and me["role"] == "owner"
    assert (await api.get("/api/v1/terminals/pos-owner-s1", headers=headers)).status_code == 200
    assert (await api.get("/api/v1/terminals/pos-owner-a1", headers=headers)).status_code == 404
    assert "data-api-token" not in (await client.get("/profile")).text  # shown once


async def test_dealer_assigns_a_terminal_and_it_is_audited(client_factory, tree: Tree) -> None:
    client = client_factory()
    csrf = await login(client, "dealer-a")
    response = await client.post("/organization/assign", data={
        "csrf_token": csrf, "endpoint": "pos-owner-a1", "owner_id": tree.owner_s1.id})
    assert response.status_code == 303
    owner = client_factory()
    await login(owner, "owner-s1")
    assert "pos-owner-a1" in (await owner.get("/terminals")).text
    audit_page = (await client.get("/audit?action=terminal")).text
    assert "terminal.assign" in audit_page and "pos-owner-a1" in audit_page

"""Accounts, licences and audit services against a real database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dm_server.db.base import utcnow
from dm_server.db.models.account import Role
from dm_server.db.models.licence import LicenceLifecycle
from dm_server.db.session import Database
from dm_server.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from dm_server.services import accounts, audit, licensing
from posfleet.licence_token import LicenceState, verify_token

from .conftest import PASSWORD, Tree

pytestmark = pytest.mark.db


@pytest.fixture()
def authority() -> licensing.LicenceAuthority:
    return licensing.LicenceAuthority(
        Ed25519PrivateKey.generate(), prices={"standard": 365_000}, currency="KRW"
    )


async def test_subtree_visibility(database: Database, tree: Tree) -> None:
    async with database.session() as session:
        names = [a.username for a in await accounts.list_accounts(session, tree.dealer_a)]
        assert names == ["dealer-a", "sub-a", "owner-s1", "owner-a1"] or set(names) == {
            "dealer-a", "sub-a", "owner-a1", "owner-s1"}
        with pytest.raises(NotFound):
            await accounts.get_account(session, tree.dealer_a, tree.dealer_b.id)
        with pytest.raises(NotFound):
            await accounts.get_account(session, tree.sub_a, tree.owner_a1.id)
        assert await accounts.count_terminals(session, tree.admin) == 3
        assert await accounts.count_terminals(session, tree.dealer_a) == 2
        assert await accounts.count_terminals(session, tree.owner_b1) == 1


async def test_create_rules(database: Database, tree: Tree) -> None:
    async with database.session() as session:
        with pytest.raises(Forbidden):
            await accounts.create_account(session, tree.owner_a1, parent_id=tree.owner_a1.id,
                                          username="x1", password=PASSWORD, role=Role.OWNER)
        with pytest.raises(NotFound):
            await accounts.create_account(session, tree.dealer_a, parent_id=tree.dealer_b.id,
                                          username="x2", password=PASSWORD, role=Role.OWNER)
        with pytest.raises(Conflict):
            await accounts.create_account(session, tree.dealer_a, parent_id=tree.dealer_a.id,
                                          username="owner-b1", password=PASSWORD, role=Role.OWNER)
        with pytest.raises(InvalidInput):
            await accounts.create_account(session, tree.dealer_a, parent_id=tree.dealer_a.id,
                                          username="x3", password="short", role=Role.OWNER)
        new = await accounts.create_account(session, tree.sub_a, parent_id=tree.sub_a.id,
                                            username="x4", password=PASSWORD, role=Role.OWNER)
        assert new.path == f"{tree.sub_a.path}{new.id}/"
        with pytest.raises(Forbidden):
            await accounts.update_account(session, tree.dealer_a, tree.dealer_a.id, disabled=True)


async def test_lockout_after_failures(database: Database, tree: Tree) -> None:
    policy = accounts.LoginPolicy(max_failures=3, lockout_s=60)
    now = utcnow()
    for _ in range(3):
        async with database.session() as session:
            with pytest.raises(Unauthorized):
                await accounts.authenticate(session, "owner-a1", "wrong-password", policy, now)
    async with database.session() as session:
        with pytest.raises(Unauthorized, match="too many"):
            await accounts.authenticate(session, "owner-a1", PASSWORD, policy, now)
    async with database.session() as session:
        later = now + timedelta(seconds=61)
        account = await accounts.authenticate(session, "owner-a1", PASSWORD, policy, later)
        assert account.locked_until is None
        entries = await audit.list_entries(session, tree.admin, action_prefix="account.lock")
        assert len(entries) == 1


async def test_licence_lifecycle(
    database: Database, tree: Tree, authority: licensing.LicenceAuthority
) -> None:
    now = utcnow()
    async with database.session() as session:
        licence = await licensing.issue(
            session, tree.sub_a, authority, endpoint="pos-owner-s1", edition="standard",
            features=["face", "loyalty"], days=20, now=now,
        )
        assert licence.dealer_id == tree.sub_a.id and licence.price == 20_000
        status = verify_token(licence.token, authority.signing_key.public_key(),
                              "pos-owner-s1", now)
        assert status.state is LicenceState.VALID
        with pytest.raises(Conflict):
            await licensing.issue(session, tree.dealer_a, authority, endpoint="pos-owner-s1",
                                  edition="standard", now=now)
        with pytest.raises(NotFound):
            await licensing.issue(session, tree.dealer_b, authority, endpoint="pos-owner-a1",
                                  edition="standard", now=now)
        with pytest.raises(Forbidden):
            await licensing.issue(session, tree.owner_a1, authority, endpoint="pos-owner-a1",
                                  edition="standard", now=now)
        with pytest.raises(NotFound):
            await licensing.get_licence(session, tree.dealer_b, licence.id)

        soon = await licensing.list_licences(session, tree.dealer_a, expiring_within_days=30)
        assert [t.endpoint for _, t in soon] == ["pos-owner-s1"]
        assert await licensing.list_licences(session, tree.dealer_b, expiring_within_days=90) == []
        forecast = await licensing.revenue_forecast(session, tree.admin, authority, now=now)
        assert [(f.days, f.licences, f.amount) for f in forecast] == [
            (30, 1, 365_000), (60, 1, 365_000), (90, 1, 365_000)]
        ranking = await licensing.dealer_ranking(session, tree.admin, now)
        assert [(r.dealer.username, r.active) for r in ranking][:2] == [
            ("dealer-a", 1), ("sub-a", 1)]

        renewed = await licensing.renew(session, tree.dealer_a, authority, licence.id,
                                        days=365, now=now)
        assert licence.lifecycle is LicenceLifecycle.RENEWED
        assert renewed.expires == licence.expires + timedelta(days=365)
        old, moved = await licensing.transfer(session, tree.dealer_a, authority, renewed.id,
                                              to_endpoint="pos-owner-a1", now=now)
        assert old.lifecycle is LicenceLifecycle.TRANSFERRED
        assert verify_token(moved.token, authority.signing_key.public_key(), "pos-owner-a1",
                            now).state is LicenceState.VALID
        assert verify_token(moved.token, authority.signing_key.public_key(), "pos-owner-s1",
                            now).state is LicenceState.INVALID
        with pytest.raises(NotFound):
            await licensing.transfer(session, tree.dealer_a, authority, moved.id,
                                     to_endpoint="pos-owner-b1", now=now)
        revoked = await licensing.revoke(session, tree.dealer_a, moved.id, reason="unpaid")
        assert revoked.lifecycle is LicenceLifecycle.REVOKED
        history = await licensing.list_licences(session, tree.admin)
        assert len(history) == 3
        actions = [e.action for e in await audit.list_entries(session, tree.dealer_a)]
        assert actions[:4] == ["licence.revoke", "licence.transfer", "licence.renew",
                               "licence.issue"]
        assert await audit.list_entries(session, tree.dealer_b, action_prefix="licence") == []

"""Every API endpoint and page, as every role, with ids from other subtrees: 404 or 403.

The callers are the seven accounts of the test tree; for each, "foreign" means every
account, terminal and licence outside its subtree (the admin, at the root, has none, so it
is only checked against nothing). Forms carry a valid CSRF token, so a 403 here is the
access decision, not a missing token. Lists are checked to hold no foreign ids.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dm_server.db.models.account import Account, Role
from dm_server.db.session import Database
from dm_server.services import licensing

from .conftest import PASSWORD, Tree, api_token, login

pytestmark = pytest.mark.db

DENIED = (403, 404)


@dataclass
class World:
    tree: Tree
    endpoints: dict[int, str]  # owner id -> terminal endpoint
    licences: dict[str, int]  # endpoint -> licence id


@pytest.fixture()
async def world(database: Database, tree: Tree) -> World:
    authority = licensing.LicenceAuthority(Ed25519PrivateKey.generate())
    endpoints = {o.id: f"pos-{o.username}" for o in (tree.owner_a1, tree.owner_s1, tree.owner_b1)}
    ids = {}
    async with database.session() as session:
        for endpoint in endpoints.values():
            licence = await licensing.issue(session, tree.admin, authority, endpoint=endpoint,
                                            edition="standard", days=20)
            ids[endpoint] = licence.id
    return World(tree, endpoints, ids)


def _inside(account: Account, caller: Account) -> bool:
    return account.path.startswith(caller.path)


def _foreign(world: World, caller: Account) -> tuple[list[Account], list[str], list[int]]:
    accounts = [a for a in world.tree.all() if not _inside(a, caller)]
    owners = {a.id for a in world.tree.all() if _inside(a, caller)}
    endpoints = [e for owner, e in world.endpoints.items() if owner not in owners]
    licences = [world.licences[e] for e in endpoints]
    return accounts, endpoints, licences


def _own(world: World, caller: Account) -> tuple[str | None, int | None]:
    for owner_id, endpoint in world.endpoints.items():
        owner = next(a for a in world.tree.all() if a.id == owner_id)
        if _inside(owner, caller):
            return endpoint, world.licences[endpoint]
    return None, None


def _api_requests(world: World, caller: Account) -> list[tuple[str, str, dict | None]]:
    accounts, endpoints, licences = _foreign(world, caller)
    own_endpoint, _own_licence = _own(world, caller)
    requests: list[tuple[str, str, dict | None]] = []
    for account in accounts:
        requests += [
            ("GET", f"/api/v1/accounts/{account.id}", None),
            ("GET", f"/api/v1/accounts?under={account.id}", None),
            ("PATCH", f"/api/v1/accounts/{account.id}", {"disabled": True}),
            ("POST", f"/api/v1/accounts/{account.id}/password", {"new_password": "x" * 12}),
            ("POST", "/api/v1/accounts", {"parent_id": account.id, "username": f"x{account.id}",
                                          "password": PASSWORD, "role": "owner"}),
        ]
        if own_endpoint and account.role is Role.OWNER:
            requests.append(("PUT", f"/api/v1/accounts/terminals/{own_endpoint}/owner",
                             {"owner_id": account.id}))
        requests += [
            ("POST", "/api/v1/terminals", {"endpoint": f"new-{account.id}",
                                           "security_mode": "nosec", "owner_id": account.id}),
            ("POST", "/api/v1/terminals/import",
             f"endpoint,security_mode,owner_id\nnew-csv-{account.id},nosec,{account.id}\n"
             .encode()),
        ]
    for endpoint in endpoints:
        requests += [
            ("GET", f"/api/v1/terminals/{endpoint}", None),
            ("GET", f"/api/v1/terminals/{endpoint}/events", None),
            ("GET", f"/api/v1/terminals/{endpoint}/operations/1", None),
            ("POST", f"/api/v1/terminals/{endpoint}/read", {"path": "/3/0/0"}),
            ("POST", f"/api/v1/terminals/{endpoint}/execute", {"path": "/3/0/4"}),
            ("PUT", f"/api/v1/accounts/terminals/{endpoint}/owner", {"owner_id": caller.id}),
            ("POST", "/api/v1/licences", {"endpoint": endpoint, "edition": "basic"}),
            ("GET", f"/api/v1/licences?endpoint={endpoint}", "empty-list"),
        ]
    for licence_id in licences:
        requests += [
            ("GET", f"/api/v1/licences/{licence_id}", None),
            ("POST", f"/api/v1/licences/{licence_id}/renew", {"days": 30}),
            ("POST", f"/api/v1/licences/{licence_id}/revoke", {"reason": "x"}),
            ("POST", f"/api/v1/licences/{licence_id}/transfer",
             {"to_endpoint": own_endpoint or "pos-owner-a1"}),
        ]
    if caller.role is not Role.ADMIN:
        requests += [("POST", "/api/v1/firmware", b"not a package")]
    if caller.role is Role.OWNER:
        requests += [("GET", "/api/v1/audit", None)]
        if _own_licence:
            requests += [("POST", f"/api/v1/licences/{_own_licence}/revoke", {"reason": "x"})]
    return requests


def _page_requests(world: World, caller: Account) -> list[tuple[str, str, dict | None]]:
    accounts, endpoints, licences = _foreign(world, caller)
    own_endpoint, own_licence = _own(world, caller)
    requests: list[tuple[str, str, dict | None]] = []
    for account in accounts:
        requests += [
            ("GET", f"/scope/{account.id}", None),
            ("POST", f"/organization/accounts/{account.id}", {"disabled": "1"}),
            ("POST", f"/organization/accounts/{account.id}", {"new_password": "x" * 12}),
            ("POST", "/organization/accounts", {"parent_id": account.id, "username": "zz1",
                                                "password": PASSWORD, "role": "owner"}),
        ]
        if own_endpoint and account.role is Role.OWNER:
            requests.append(("POST", f"/terminals/{own_endpoint}/assign",
                             {"owner_id": account.id}))
            requests.append(("POST", "/organization/assign",
                             {"endpoint": own_endpoint, "owner_id": account.id}))
    for endpoint in endpoints:
        requests += [
            ("GET", f"/terminals/{endpoint}", None),
            ("GET", f"/live?terminal={endpoint}&ticks=1", None),
            ("POST", f"/terminals/{endpoint}/operation", {"kind": "read", "path": "/3/0/0"}),
            ("POST", f"/terminals/{endpoint}/operation", {"kind": "reboot"}),
            ("POST", f"/terminals/{endpoint}/assign", {"owner_id": caller.id}),
            ("POST", "/organization/assign", {"endpoint": endpoint, "owner_id": caller.id}),
            ("POST", "/licences/issue", {"endpoint": endpoint, "edition": "basic"}),
        ]
    for licence_id in licences:
        requests += [
            ("POST", f"/licences/{licence_id}/renew", {"days": "30"}),
            ("POST", f"/licences/{licence_id}/revoke", {"reason": "x"}),
            ("POST", f"/licences/{licence_id}/transfer",
             {"to_endpoint": own_endpoint or "pos-owner-a1"}),
        ]
    if caller.role is not Role.ADMIN:
        requests += [
            ("GET", "/server", None),
            ("GET", "/server/backup", None),
            ("POST", "/server/objects", {"action": "validate"}),
            ("POST", "/server/restore", {}),
        ]
    if caller.role is Role.OWNER:
        requests += [("GET", "/audit", None)]
        if own_endpoint:
            requests += [("POST", f"/terminals/{own_endpoint}/operation", {"kind": "reboot"})]
        if own_licence:
            requests += [("POST", f"/licences/{own_licence}/revoke", {"reason": "x"})]
    return requests


@pytest.mark.parametrize("who", ["admin", "dealer_a", "sub_a", "owner_a1", "owner_s1",
                                 "dealer_b", "owner_b1"])
async def test_api_refuses_foreign_ids(client_factory, world: World, who: str) -> None:
    caller: Account = getattr(world.tree, who)
    client = client_factory()
    headers = await api_token(client, caller.username)
    requests = _api_requests(world, caller)
    if caller.role is not Role.ADMIN:
        assert requests, "a non-admin caller must have foreign ids to try"
    for method, url, body in requests:
        if body == "empty-list":
            response = await client.get(url, headers=headers)
            assert response.status_code == 200 and response.json() == [], (who, url)
            continue
        if isinstance(body, bytes):
            response = await client.request(method, url, content=body,
                                            headers={**headers, "Content-Type": "text/csv"})
        else:
            response = await client.request(method, url, json=body, headers=headers)
        assert response.status_code in DENIED, (who, method, url, response.status_code,
                                                response.text[:200])
    listed = (await client.get("/api/v1/accounts", headers=headers)).json()
    foreign_ids = {a.id for a in _foreign(world, caller)[0]}
    assert not foreign_ids & {a["id"] for a in listed}
    licences = (await client.get("/api/v1/licences", headers=headers)).json()
    assert not set(_foreign(world, caller)[1]) & {lic["endpoint"] for lic in licences}


@pytest.mark.parametrize("who", ["admin", "dealer_a", "sub_a", "owner_a1", "owner_s1",
                                 "dealer_b", "owner_b1"])
async def test_pages_refuse_foreign_ids(client_factory, world: World, who: str) -> None:
    caller: Account = getattr(world.tree, who)
    client = client_factory()
    csrf = await login(client, caller.username)
    for method, url, body in _page_requests(world, caller):
        if method == "GET":
            response = await client.get(url)
        else:
            response = await client.post(url, data={**(body or {}), "csrf_token": csrf})
        assert response.status_code in DENIED, (who, method, url, response.status_code,
                                                response.text[:300])
    overview = await client.get("/organization" if caller.role is not Role.OWNER else "/")
    for account in _foreign(world, caller)[0]:
        assert f"/scope/{account.id}\"" not in overview.text


#: Routes that take no id from the account tree, with why they need no foreign-id check.
NOT_SCOPED = {
    ("POST", "/api/v1/auth/token"): "log-in",
    ("GET", "/api/v1/auth/me"): "the caller itself",
    ("POST", "/api/v1/accounts/me/password"): "the caller itself",
    ("GET", "/api/v1/licences/public-key"): "the manufacturer's public key, public by design",
    ("GET", "/firmware/{file_name}"): "firmware packages: terminals download them, signed",
    ("GET", "/api/v1/firmware"): "the manufacturer's package store, not per subtree",
    ("POST", "/api/v1/firmware"): "the manufacturer's package store, not per subtree",
    ("GET", "/login"): "log-in", ("POST", "/login"): "log-in", ("POST", "/logout"): "log-out",
    ("GET", "/profile"): "the caller itself", ("POST", "/profile"): "the caller itself",
    ("POST", "/profile/password"): "the caller itself",
    ("POST", "/profile/api-token"): "the caller itself",
}
#: Lists: scoped by the filter; checked above to hold no foreign ids (or by the page tests).
LISTS = {
    ("GET", "/api/v1/terminals"), ("GET", "/api/v1/fleet/state"), ("GET", "/api/v1/accounts"),
    ("GET", "/api/v1/licences"), ("GET", "/api/v1/licences/forecast"),
    ("GET", "/api/v1/licences/ranking"), ("GET", "/api/v1/audit"), ("GET", "/"),
    ("GET", "/terminals"), ("GET", "/organization"), ("GET", "/licences"), ("GET", "/reports"),
    ("GET", "/reports/{name}.csv"), ("GET", "/audit"), ("GET", "/live"),
}


def _routes(app) -> set[tuple[str, str]]:  # type: ignore[no-untyped-def]
    from dashboard import live, pages

    found = {(method.upper(), path) for path, operations in app.openapi()["paths"].items()
             for method in operations}
    for route in [*pages.router.routes, *live.router.routes]:
        found |= {(method, route.path) for method in route.methods - {"HEAD"}}
    return found


def _template_regex(template: str):  # type: ignore[no-untyped-def]
    import re

    return re.compile("^" + re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(template)) + "$")


async def test_matrix_covers_every_route(app, world: World) -> None:
    """A new route with ids must join the matrix (or say here why it needs no check)."""
    tried: set[tuple[str, str]] = set()
    for caller in (world.tree.dealer_b, world.tree.owner_s1, world.tree.sub_a):
        for method, url, _body in [*_api_requests(world, caller), *_page_requests(world, caller)]:
            tried.add((method, url.split("?")[0]))
    missing = []
    for method, template in sorted(_routes(app)):
        if (method, template) in NOT_SCOPED or (method, template) in LISTS:
            continue
        pattern = _template_regex(template)
        if not any(m == method and pattern.match(url) for m, url in tried):
            missing.append(f"{method} {template}")
    assert not missing, f"routes not tried with foreign ids: {missing}"

"""The admin's Server page: object definitions (validate, upload), backup and restore."""

from __future__ import annotations

import os

import pytest

from .conftest import PASSWORD, Tree, login

pytestmark = pytest.mark.db

DEFINITION = b"""<?xml version="1.0" encoding="utf-8"?>
<LWM2M><Object ObjectType="MODefinition"><Name>Scale</Name>
<Description1>A shop scale.</Description1><ObjectID>26250</ObjectID>
<ObjectURN>urn:oma:lwm2m:x:26250</ObjectURN><LWM2MVersion>1.1</LWM2MVersion>
<ObjectVersion>1.0</ObjectVersion><MultipleInstances>Single</MultipleInstances>
<Mandatory>Optional</Mandatory><Resources><Item ID="0"><Name>Weight</Name>
<Operations>R</Operations><MultipleInstances>Single</MultipleInstances>
<Mandatory>Mandatory</Mandatory><Type>Float</Type><RangeEnumeration></RangeEnumeration>
<Units>g</Units><Description>Weight on the scale.</Description></Item></Resources>
<Description2></Description2></Object></LWM2M>
"""


async def test_object_definition_validate_and_upload(client_factory, tree: Tree, settings) -> None:
    client = client_factory()
    csrf = await login(client, "admin")
    bad = await client.post("/server/objects", data={"csrf_token": csrf, "action": "validate"},
                            files={"definition": ("x.xml", b"<LWM2M><Object>", "text/xml")})
    assert bad.status_code == 303
    assert "not a valid object definition" in (await client.get("/server")).text
    ok = await client.post("/server/objects", data={"csrf_token": csrf, "action": "save"},
                           files={"definition": ("scale.xml", DEFINITION, "text/xml")})
    assert ok.status_code == 303
    assert (settings.data_dir / "objects" / "26250.xml").read_bytes() == DEFINITION
    page = (await client.get("/server")).text
    assert "26250" in page and "Scale" in page
    assert "test-secret" not in page  # secrets never shown


@pytest.mark.skipif(bool(os.environ.get("POSFLEET_TEST_DATABASE_URL")),
                    reason="dashboard backup covers SQLite; PostgreSQL uses pg_dump")
async def test_backup_and_restore(client_factory, tree: Tree) -> None:
    client = client_factory()
    csrf = await login(client, "admin")
    backup = await client.get("/server/backup")
    assert backup.status_code == 200
    assert backup.content.startswith(b"SQLite format 3\x00")
    created = await client.post("/organization/accounts", data={
        "csrf_token": csrf, "parent_id": tree.dealer_a.id, "username": "after-backup",
        "password": PASSWORD, "role": "owner"})
    assert created.status_code == 303
    assert "after-backup" in (await client.get("/organization")).text
    refused = await client.post("/server/restore", data={"csrf_token": csrf},
                                files={"backup": ("x.db", b"not a database", "application/x")})
    assert refused.status_code == 303
    assert "after-backup" in (await client.get("/organization")).text  # nothing lost
    restored = await client.post("/server/restore", data={"csrf_token": csrf},
                                 files={"backup": ("b.db", backup.content, "application/x")})
    assert restored.status_code == 303 and restored.headers["location"] == "/login"
    csrf = await login(client, "admin")
    assert "after-backup" not in (await client.get("/organization")).text

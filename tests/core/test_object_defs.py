"""The shipped object definitions: schema-valid, faithful to OMA, loadable, and as documented.

The official OMA files and schema live outside the repository (``../shared/oma-registry``
next to the checkout); the tests that need them skip with the reason when it is absent.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from lwm2m_core.model import ObjectModelRepository, Operations, ResourceType
from lwm2m_core.path import LwM2mPath

REPO = Path(__file__).resolve().parents[2]
OMA_REGISTRY = REPO.parent / "shared" / "oma-registry"
SCHEMA = OMA_REGISTRY / "LWM2M-v1_1.xsd"
STANDARD_IDS = (0, 1, 3, 4, 5, 10259)
CUSTOM_IDS = (26241, 26242, 26243, 26244)
PRIVATE_RANGE = range(26241, 32769)

needs_registry = pytest.mark.skipif(
    not SCHEMA.is_file(),
    reason=f"OMA registry copy not found at {OMA_REGISTRY} (expected next to the checkout)",
)


def shipped_files() -> list[str]:
    return sorted(
        entry.name
        for entry in resources.files("object_defs").iterdir()
        if entry.name.endswith(".xml")
    )


def shipped_bytes(name: str) -> bytes:
    return resources.files("object_defs").joinpath(name).read_bytes()


@pytest.fixture(scope="module")
def repo() -> ObjectModelRepository:
    return ObjectModelRepository.default()


def test_every_expected_object_is_shipped_one_per_file() -> None:
    assert shipped_files() == sorted(f"{oid}.xml" for oid in (*STANDARD_IDS, *CUSTOM_IDS))


@pytest.fixture(scope="module")
def schema() -> Any:
    xmlschema = pytest.importorskip("xmlschema")
    return xmlschema.XMLSchema(str(SCHEMA))


@needs_registry
@pytest.mark.parametrize("name", shipped_files())
def test_file_validates_against_lwm2m_1_1_schema(schema: Any, name: str) -> None:
    errors = [str(error) for error in schema.iter_errors(shipped_bytes(name).decode("utf-8"))]
    assert errors == [], f"{name} breaks LWM2M-v1_1.xsd: {errors[:3]}"


def _official_object(object_id: int) -> ET.Element:
    root = ET.parse(OMA_REGISTRY / f"{object_id}.xml").getroot()
    element = root.find("Object")
    assert element is not None
    return element


def _field(element: ET.Element, tag: str) -> str:
    return (element.findtext(tag) or "").strip()


@needs_registry
@pytest.mark.parametrize("object_id", STANDARD_IDS)
def test_standard_object_agrees_with_official(repo: ObjectModelRepository, object_id: int) -> None:
    official = _official_object(object_id)
    ours = repo.get_object(object_id)
    assert ours.name == _field(official, "Name")
    assert ours.urn == _field(official, "ObjectURN")
    assert ours.version == _field(official, "ObjectVersion")
    assert ours.lwm2m_version == _field(official, "LWM2MVersion")
    assert ours.multiple == (_field(official, "MultipleInstances") == "Multiple")
    assert ours.mandatory == (_field(official, "Mandatory") == "Mandatory")

    items = official.findall("Resources/Item")
    assert sorted(ours.resources) == sorted(int(item.attrib["ID"]) for item in items)
    for item in items:
        rid = int(item.attrib["ID"])
        resource = ours.resources[rid]
        where = f"/{object_id} resource {rid}"
        assert resource.name == _field(item, "Name"), where
        assert resource.operations is Operations(_field(item, "Operations")), where
        assert resource.multiple == (_field(item, "MultipleInstances") == "Multiple"), where
        assert resource.mandatory == (_field(item, "Mandatory") == "Mandatory"), where
        if resource.operations.executable:
            assert resource.type is ResourceType.NONE, where
        else:
            assert resource.type is ResourceType(_field(item, "Type")), where
        assert resource.units == _field(item, "Units"), where


@needs_registry
@pytest.mark.parametrize("object_id", STANDARD_IDS)
def test_standard_object_descriptions_are_our_own(
    repo: ObjectModelRepository, object_id: int
) -> None:
    """We describe the standard objects in our own words; OMA's prose stays out of the repo."""
    official = _official_object(object_id)
    ours = repo.get_object(object_id)
    assert ours.description != _field(official, "Description1")
    for item in official.findall("Resources/Item"):
        theirs = _field(item, "Description")
        mine = ours.resources[int(item.attrib["ID"])].description
        assert mine, f"/{object_id}/{item.attrib['ID']} has no description"
        assert mine != theirs or len(theirs) < 30, f"/{object_id}/{item.attrib['ID']} copies OMA"
    text = shipped_bytes(f"{object_id}.xml").decode("utf-8")
    assert "Open Mobile Alliance" not in text
    assert "LEGAL DISCLAIMER" not in text


@pytest.mark.parametrize("object_id", CUSTOM_IDS)
def test_custom_object_loads_with_lwm2m_1_1_header(
    repo: ObjectModelRepository, object_id: int
) -> None:
    obj = repo.get_object(object_id)
    assert object_id in PRIVATE_RANGE
    assert obj.urn == f"urn:oma:lwm2m:x:{object_id}"
    assert obj.lwm2m_version == "1.1"
    assert obj.version == "1.0"
    assert obj.resources, f"object {object_id} has no resources"
    for resource in obj.resources.values():
        assert resource.description, f"/{object_id} resource {resource.id} undocumented"
        if resource.type.numeric and resource.range_enumeration:
            assert resource.numeric_range() is not None, (object_id, resource.id)


@pytest.mark.parametrize(
    ("path", "name", "rtype", "operations", "multiple"),
    [
        ("/26241/0/0", "Trading State", ResourceType.INTEGER, Operations.READ, False),
        ("/26241/0/1", "Shift Open", ResourceType.BOOLEAN, Operations.READ, False),
        ("/26241/0/7", "Sales Amount Today", ResourceType.INTEGER, Operations.READ, False),
        ("/26241/0/9", "Refunds Amount Today", ResourceType.INTEGER, Operations.READ, False),
        ("/26241/0/19", "Camera Status", ResourceType.INTEGER, Operations.READ, False),
        ("/26242/0/0", "License Token", ResourceType.STRING, Operations.READ_WRITE, False),
        ("/26242/0/1", "Status", ResourceType.INTEGER, Operations.READ, False),
        ("/26242/0/4/0", "Features", ResourceType.STRING, Operations.READ, True),
        ("/26242/0/11", "Revoke", ResourceType.NONE, Operations.EXECUTE, False),
        ("/26243/7/0", "Event ID", ResourceType.STRING, Operations.READ, False),
        ("/26243/7/3", "Amount", ResourceType.INTEGER, Operations.READ, False),
        ("/26243/7/10", "Customer Present", ResourceType.BOOLEAN, Operations.READ, False),
        ("/26244/0/1", "Visitors", ResourceType.INTEGER, Operations.READ, False),
        ("/26244/0/14", "Delete Customer", ResourceType.NONE, Operations.EXECUTE, False),
    ],
)
def test_resources_later_issues_rely_on(
    repo: ObjectModelRepository,
    path: str,
    name: str,
    rtype: ResourceType,
    operations: Operations,
    multiple: bool,
) -> None:
    resource = repo.get_resource(LwM2mPath.parse(path))
    assert (resource.name, resource.type, resource.operations, resource.multiple) == (
        name,
        rtype,
        operations,
        multiple,
    )


def test_pos_event_is_multi_instance_and_the_rest_single(repo: ObjectModelRepository) -> None:
    assert repo.get_object(26243).multiple
    assert not any(repo.get_object(oid).multiple for oid in (26241, 26242, 26244))


def test_event_type_and_money_conventions(repo: ObjectModelRepository) -> None:
    event_type = repo.get_resource(LwM2mPath(26243, 0, 1))
    assert event_type.enumerated_values() == (
        "sale",
        "refund",
        "void",
        "drawer_open",
        "error",
        "shift_open",
        "shift_close",
    )
    money = [
        repo.get_resource(LwM2mPath(26241, 0, 7)),
        repo.get_resource(LwM2mPath(26241, 0, 9)),
        repo.get_resource(LwM2mPath(26243, 0, 3)),
    ]
    for resource in money:
        assert resource.type is ResourceType.INTEGER
        assert resource.units == "minor units"
        assert resource.numeric_range() == (0, 999_999_999_999)


def test_licence_status_codes_match_the_token_module(repo: ObjectModelRepository) -> None:
    """/26242/0/1 carries posfleet.licence_token.LicenceState values, plus 6 for revoked."""
    licence_token = pytest.importorskip("posfleet.licence_token")
    status = repo.get_resource(LwM2mPath(26242, 0, 1))
    bounds = status.numeric_range()
    assert bounds is not None
    codes = {state.value for state in licence_token.LicenceState}
    assert codes <= set(range(int(bounds[0]), int(bounds[1]) + 1))
    for state in licence_token.LicenceState:
        word = state.name.lower().replace("_", " ")
        assert f"{state.value} {word}" in status.description


DOC = REPO / "docs" / "objects.md"
_COLUMNS = ("ID", "Name", "Type", "Ops", "Instances", "Mandatory", "Units", "Range", "Meaning")


def _documented_rows(object_id: int) -> dict[int, dict[str, str]]:
    """Rows of the resource table under the heading ``## <object_id> ...``, by resource id."""
    rows: dict[int, dict[str, str]] = {}
    section = False
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            section = line.startswith(f"## {object_id} ")
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if section and len(cells) == len(_COLUMNS) and cells[0].isdigit():
            rows[int(cells[0])] = dict(zip(_COLUMNS, cells, strict=True))
    return rows


@pytest.mark.parametrize("object_id", CUSTOM_IDS)
def test_docs_table_agrees_with_xml(repo: ObjectModelRepository, object_id: int) -> None:
    """docs/objects.md must not drift from the XML it documents."""
    rows = _documented_rows(object_id)
    obj = repo.get_object(object_id)
    assert sorted(rows) == sorted(obj.resources), f"docs table of {object_id} lists other ids"
    for rid, resource in obj.resources.items():
        row = rows[rid]
        documented = (
            row["Name"],
            row["Type"],
            row["Ops"],
            row["Instances"],
            row["Mandatory"],
            row["Units"],
            row["Range"].replace(" ", ""),
        )
        expected = (
            resource.name,
            "—" if resource.type is ResourceType.NONE else resource.type.value,
            resource.operations.value,
            "Multiple" if resource.multiple else "Single",
            "yes" if resource.mandatory else "no",
            resource.units,
            resource.range_enumeration.replace(" ", ""),
        )
        assert documented == expected, f"docs/objects.md row for /{object_id}/x/{rid}"
        assert row["Meaning"], f"docs/objects.md row for /{object_id}/x/{rid} has no meaning"

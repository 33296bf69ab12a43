"""Fixtures for the LwM2M core tests: a test object model covering every resource type."""

from __future__ import annotations

import pytest

from lwm2m_core.model import ObjectModelRepository, parse_object_definitions

#: Object ids from the private range no real definition uses.
TEST_OBJECT_ID = 64000
SINGLE_INSTANCE_OBJECT_ID = 64001

_TYPES = [
    ("String", "String"),
    ("Integer", "Integer"),
    ("Unsigned", "Unsigned Integer"),
    ("Float", "Float"),
    ("Boolean", "Boolean"),
    ("Opaque", "Opaque"),
    ("Time", "Time"),
    ("Objlnk", "Objlnk"),
    ("Corelnk", "Corelnk"),
]


def _item(rid: int, name: str, rtype: str, multiple: bool, ops: str = "RW") -> str:
    type_element = f"<Type>{rtype}</Type>" if rtype else "<Type></Type>"
    return (
        f'<Item ID="{rid}"><Name>{name}</Name><Operations>{ops}</Operations>'
        f"<MultipleInstances>{'Multiple' if multiple else 'Single'}</MultipleInstances>"
        f"<Mandatory>Optional</Mandatory>{type_element}<RangeEnumeration></RangeEnumeration>"
        "<Units></Units><Description></Description></Item>"
    )


def _object(oid: int, name: str, multiple: bool, items: list[str]) -> str:
    return (
        f"<Object ObjectType=\"MODefinition\"><Name>{name}</Name><Description1></Description1>"
        f"<ObjectID>{oid}</ObjectID><ObjectURN>urn:oma:lwm2m:x:{oid}</ObjectURN>"
        "<LWM2MVersion>1.1</LWM2MVersion><ObjectVersion>1.0</ObjectVersion>"
        f"<MultipleInstances>{'Multiple' if multiple else 'Single'}</MultipleInstances>"
        f"<Mandatory>Optional</Mandatory><Resources>{''.join(items)}</Resources></Object>"
    )


def _test_objects_xml() -> str:
    # Resource ids: 0-8 single of each type, 10-18 multiple of each type, 20 executable,
    # 300 a single string with a 16-bit id (TLV id-length bit).
    items = [_item(i, f"Single {label}", rtype, False) for i, (label, rtype) in enumerate(_TYPES)]
    items += [
        _item(10 + i, f"Multiple {label}", rtype, True) for i, (label, rtype) in enumerate(_TYPES)
    ]
    items.append(_item(20, "Do It", "", False, ops="E"))
    items.append(_item(300, "Wide Id String", "String", False))
    single = [_item(0, "Name", "String", False), _item(1, "Counts", "Integer", True)]
    return (
        "<LWM2M>"
        + _object(TEST_OBJECT_ID, "Codec Test", True, items)
        + _object(SINGLE_INSTANCE_OBJECT_ID, "Codec Single", False, single)
        + "</LWM2M>"
    )


TEST_OBJECTS_XML = _test_objects_xml()


def make_test_model() -> ObjectModelRepository:
    return ObjectModelRepository(parse_object_definitions(TEST_OBJECTS_XML, "codec-test"))


@pytest.fixture(scope="session")
def codec_model() -> ObjectModelRepository:
    """Test objects 64000 (every type, single and multiple) and 64001 (single instance)."""
    return make_test_model()


@pytest.fixture(scope="session")
def device_model() -> ObjectModelRepository:
    """The definitions shipped in object_defs/ (Device object 3 and friends)."""
    repository = ObjectModelRepository.default()
    if 3 not in repository:
        pytest.skip("object_defs/ has no Device object (3) yet")
    return repository

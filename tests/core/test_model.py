"""The object model loader: every bad definition is a ModelError naming file and element."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lwm2m_core.errors import LwM2MError, ModelError
from lwm2m_core.model import (
    MAX_DEFINITION_BYTES,
    ObjectModel,
    ObjectModelRepository,
    Operations,
    ResourceModel,
    ResourceType,
    parse_object_definitions,
)
from lwm2m_core.path import LwM2mPath

ITEM = """
      <Item ID="{rid}">
        <Name>{name}</Name>
        <Operations>{ops}</Operations>
        <MultipleInstances>{multi}</MultipleInstances>
        <Mandatory>Optional</Mandatory>
        <Type>{rtype}</Type>
        <RangeEnumeration>{range}</RangeEnumeration>
        <Units></Units>
        <Description>test resource</Description>
      </Item>"""


def item(
    rid: object = 0,
    name: str = "Reading",
    ops: str = "R",
    multi: str = "Single",
    rtype: str = "Integer",
    range_: str = "",
) -> str:
    return ITEM.format(rid=rid, name=name, ops=ops, multi=multi, rtype=rtype, range=range_)


def document(object_id: object = 30001, items: str | None = None, name: str = "Test") -> str:
    body = item() if items is None else items
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<LWM2M>
  <Object ObjectType="MODefinition">
    <Name>{name}</Name>
    <Description1>test object</Description1>
    <ObjectID>{object_id}</ObjectID>
    <ObjectURN>urn:oma:lwm2m:x:{object_id}</ObjectURN>
    <LWM2MVersion>1.1</LWM2MVersion>
    <ObjectVersion>1.0</ObjectVersion>
    <MultipleInstances>Multiple</MultipleInstances>
    <Mandatory>Optional</Mandatory>
    <Resources>{body}
    </Resources>
    <Description2></Description2>
  </Object>
</LWM2M>
"""


@pytest.fixture(scope="module")
def repo() -> ObjectModelRepository:
    return ObjectModelRepository.default()


# --- a good document --------------------------------------------------------------------


def test_minimal_document_parses() -> None:
    items = item(0) + item(1, "Go", "E", rtype="") + item(2, "Names", "RW", "Multiple", "String")
    (obj,) = parse_object_definitions(document(items=items), "test.xml")
    assert (obj.id, obj.name, obj.multiple, obj.mandatory, obj.urn) == (
        30001,
        "Test",
        True,
        False,
        "urn:oma:lwm2m:x:30001",
    )
    assert obj.source == "test.xml"
    assert obj.resources[0] == ResourceModel(
        0,
        "Reading",
        Operations.READ,
        False,
        False,
        ResourceType.INTEGER,
        description="test resource",
    )
    assert obj.resources[1].type is ResourceType.NONE
    assert obj.resources[1].operations.executable
    assert obj.resources[2].multiple
    assert obj.resources[2].operations.readable and obj.resources[2].operations.writable


def test_bytes_in_another_declared_encoding_parse() -> None:
    text = document(name="Caisse é").replace('encoding="UTF-8"', 'encoding="ISO-8859-1"')
    (obj,) = parse_object_definitions(text.encode("latin-1"), "latin.xml")
    assert obj.name == "Caisse é"


# --- malformed documents ----------------------------------------------------------------


def _refused(xml: str | bytes, *fragments: str) -> ModelError:
    with pytest.raises(ModelError) as info:
        parse_object_definitions(xml, "bad.xml")
    message = str(info.value)
    assert message.startswith("bad.xml"), message
    for fragment in fragments:
        assert fragment in message, message
    return info.value


@pytest.mark.parametrize(
    "xml",
    [
        "",
        "<LWM2M>",
        "<LWM2M><Object></LWM2M>",
        "not xml at all",
        b"\xff\xfe\x00garbage",
        b'<?xml version="1.0" encoding="UTF-8"?><LWM2M>\xc3\x28</LWM2M>',
    ],
)
def test_not_well_formed(xml: str | bytes) -> None:
    _refused(xml, "not well-formed XML")


def test_unknown_encoding_declaration() -> None:
    _refused(b'<?xml version="1.0" encoding="x-no-such"?><LWM2M/>')


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE LWM2M [
  <!ENTITY a "aaaaaaaaaa">
  <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
  <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
]>
<LWM2M><Object><Name>&c;</Name></Object></LWM2M>
"""
EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE LWM2M [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<LWM2M><Object><Name>&secret;</Name></Object></LWM2M>
"""
PLAIN_DOCTYPE = '<!DOCTYPE LWM2M SYSTEM "http://example.invalid/x.dtd">' + document()


@pytest.mark.parametrize("xml", [BILLION_LAUGHS, EXTERNAL_ENTITY, PLAIN_DOCTYPE])
def test_doctype_and_entities_refused(xml: str) -> None:
    _refused(xml, "DOCTYPE")


def test_doctype_refused_in_utf16_too() -> None:
    """A text search for '<!DOCTYPE' misses UTF-16; the parser itself must refuse it."""
    xml = EXTERNAL_ENTITY.replace(
        '<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-16"?>'
    )
    _refused(xml.encode("utf-16"), "DOCTYPE")


def test_doctype_words_inside_text_are_harmless() -> None:
    (obj,) = parse_object_definitions(document(name="about &lt;!DOCTYPE&gt;"), "ok.xml")
    assert obj.name == "about <!DOCTYPE>"


def test_oversized_document_refused() -> None:
    padding = "<!--" + "x" * MAX_DEFINITION_BYTES + "-->"
    _refused(document() + padding, "limit")


def test_root_must_be_lwm2m() -> None:
    _refused(document().replace("LWM2M>", "Objects>"), "root element must be <LWM2M>")


def test_document_without_objects() -> None:
    _refused("<LWM2M></LWM2M>", "no <Object>")


@pytest.mark.parametrize(
    ("rtype", "fragment"),
    [("Text", "unknown <Type> 'Text'"), ("", "unknown <Type> ''"), ("none", "'none'")],
)
def test_unknown_type(rtype: str, fragment: str) -> None:
    _refused(document(items=item(4, rtype=rtype)), "object 30001 resource 4", fragment)


def test_unknown_operations() -> None:
    _refused(document(items=item(2, ops="RWX")), "resource 2", "unknown <Operations> 'RWX'")


@pytest.mark.parametrize("value", ["Many", "single", ""])
def test_bad_multiplicity(value: str) -> None:
    _refused(document(items=item(1, multi=value)), "resource 1", "<MultipleInstances>")


def test_bad_mandatory_on_object() -> None:
    xml = document().replace(
        "<Mandatory>Optional</Mandatory>\n    <Resources>",
        "<Mandatory>Yes</Mandatory>\n    <Resources>",
    )
    _refused(xml, "object 30001", "<Mandatory> must be Mandatory or Optional")


def test_duplicate_resource_ids() -> None:
    _refused(
        document(items=item(3) + item(3, "Again")), "object 30001", "resource 3 is defined twice"
    )


def test_duplicate_object_ids_in_one_document() -> None:
    one = document(30002)
    start, end = one.index("<Object "), one.index("</LWM2M>")
    twice = one[:end] + one[start:end] + "</LWM2M>"
    _refused(twice, "object 30002 is defined twice")


@pytest.mark.parametrize(
    ("tag", "where"),
    [
        ("Name", "object 30001"),
        ("MultipleInstances", "object 30001"),
        ("Resources", "object 30001"),
        ("ObjectID", "<Object>"),
    ],
)
def test_missing_object_elements(tag: str, where: str) -> None:
    xml = document()
    head, body = xml.split("<Resources>", 1)
    if tag == "Resources":
        body = body.replace("</Resources>", "")
        head = head + "<Other>"
        xml = head + body.replace("<Description2>", "</Other><Description2>", 1)
    else:
        xml = _drop_element(head, tag) + "<Resources>" + body
    _refused(xml, where, f"missing <{tag}>")


@pytest.mark.parametrize("tag", ["Name", "Operations", "MultipleInstances", "Mandatory", "Type"])
def test_missing_resource_elements(tag: str) -> None:
    _refused(document(items=_drop_element(item(7), tag)), "resource 7", f"missing <{tag}>")


def test_executable_needs_no_type() -> None:
    (obj,) = parse_object_definitions(document(items=_drop_element(item(7, ops="E"), "Type")))
    assert obj.resources[7].type is ResourceType.NONE


def test_empty_name_refused() -> None:
    _refused(document(items=item(5, name="  ")), "resource 5", "<Name> is empty")


def test_item_without_id() -> None:
    _refused(document(items=item(0).replace(' ID="0"', "")), "object 30001", "no ID attribute")


@pytest.mark.parametrize("bad", ["abc", "-1", "1.5", "\u00b2", "\u0663", "65535", "9" * 5000, ""])
def test_bad_resource_ids(bad: str) -> None:
    _refused(document(items=item(bad)), "object 30001", "resource ID")


@pytest.mark.parametrize("bad", ["x", "-3", "65535", "123456", "9" * 5000])
def test_bad_object_ids(bad: str) -> None:
    _refused(document(bad), "ObjectID")


def _drop_element(xml: str, tag: str) -> str:
    start = xml.index(f"<{tag}>")
    end = xml.index(f"</{tag}>", start) + len(f"</{tag}>")
    return xml[:start] + xml[end:]


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_only_raise_model_error(data: bytes) -> None:
    try:
        parse_object_definitions(data, "fuzz.xml")
    except ModelError:
        pass


SHIPPED_3 = resources.files("object_defs").joinpath("3.xml").read_bytes()


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_mutated_definition_only_raises_model_error(data: st.DataObject) -> None:
    """Flip, drop and insert bytes in a real definition: a model or a ModelError, nothing else."""
    raw = bytearray(SHIPPED_3)
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(raw) - 1))
        action = data.draw(st.sampled_from(["flip", "drop", "insert"]))
        if action == "flip":
            raw[position] ^= data.draw(st.integers(1, 255))
        elif action == "drop":
            del raw[position : position + data.draw(st.integers(1, 40))]
        else:
            raw[position:position] = data.draw(st.sampled_from([b"<", b">", b"&", b"<Item>", b'"']))
    try:
        objects = parse_object_definitions(bytes(raw), "mutated.xml")
    except ModelError as exc:
        assert str(exc).startswith("mutated.xml")
    else:
        assert all(isinstance(obj, ObjectModel) for obj in objects)


# --- the repository ---------------------------------------------------------------------


def test_default_has_the_shipped_objects(repo: ObjectModelRepository) -> None:
    assert [obj.id for obj in repo] == [0, 1, 3, 4, 5, 10259, 26241, 26242, 26243, 26244]
    assert len(repo) == 10
    assert 3 in repo and 2 not in repo and "3" not in repo


def test_extra_folder_adds_objects(tmp_path: Path) -> None:
    (tmp_path / "30001.xml").write_text(document(30001), encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not a definition", encoding="utf-8")
    repo = ObjectModelRepository.default(tmp_path)
    assert repo.get_object(30001).source == str(tmp_path / "30001.xml")
    assert 3 in repo


def test_extra_folder_may_not_redefine_a_shipped_object(tmp_path: Path) -> None:
    (tmp_path / "my-device.xml").write_text(document(3, name="Device"), encoding="utf-8")
    with pytest.raises(ModelError) as info:
        ObjectModelRepository.default(tmp_path)
    message = str(info.value)
    assert str(tmp_path / "my-device.xml") in message
    assert "object 3 is already defined by object_defs/3.xml" in message


def test_loading_is_all_or_nothing(tmp_path: Path) -> None:
    repo = ObjectModelRepository.default()
    (tmp_path / "a.xml").write_text(document(30001), encoding="utf-8")
    (tmp_path / "b.xml").write_text(document(30002, items=item(1, rtype="Nope")), encoding="utf-8")
    with pytest.raises(ModelError, match=r"b\.xml object 30002 resource 1"):
        repo.load_dir(tmp_path)
    assert 30001 not in repo
    repo.add_document(document(30003), "c.xml")
    with pytest.raises(ModelError, match=r"d\.xml: object 3 is already defined"):
        repo.add_document(document(3), "d.xml")
    assert 30003 in repo
    assert repo.get_object(3).source == "object_defs/3.xml"


def test_add_document_with_a_clash_adds_nothing() -> None:
    repo = ObjectModelRepository.default()
    one = document(30005)
    clash = one[: one.index("</LWM2M>")] + document(5)[document(5).index("<Object ") :]
    with pytest.raises(ModelError, match="object 5 is already defined"):
        repo.add_document(clash, "upload.xml")
    assert 30005 not in repo


def test_load_dir_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not a folder"):
        ObjectModelRepository().load_dir(tmp_path / "missing")
    (tmp_path / "folder.xml").mkdir()
    with pytest.raises(ModelError, match=r"folder\.xml: cannot read"):
        ObjectModelRepository().load_dir(tmp_path)


def test_model_error_is_the_core_error() -> None:
    assert issubclass(ModelError, LwM2MError)


# --- questions answered by the model ----------------------------------------------------


def test_firmware_state(repo: ObjectModelRepository) -> None:
    state = repo.get_resource(LwM2mPath.parse("/5/0/3"))
    assert (state.name, state.type, state.operations, state.multiple, state.mandatory) == (
        "State",
        ResourceType.INTEGER,
        Operations.READ,
        False,
        True,
    )
    assert state.numeric_range() == (0, 3)


def test_power_source_voltage_instance(repo: ObjectModelRepository) -> None:
    voltage = repo.get_resource(LwM2mPath.parse("/3/0/7/1"))
    assert voltage.name == "Power Source Voltage"
    assert voltage.multiple and voltage.type is ResourceType.INTEGER


def test_reboot_is_executable(repo: ObjectModelRepository) -> None:
    reboot = repo.get_resource(LwM2mPath(3, 0, 4))
    assert reboot.operations is Operations.EXECUTE and reboot.type is ResourceType.NONE
    assert not reboot.operations.readable and not reboot.operations.writable


def test_security_keys_have_no_operations(repo: ObjectModelRepository) -> None:
    secret = repo.get_resource(LwM2mPath(0, 0, 5))
    assert secret.operations is Operations.NONE
    assert not (secret.operations.readable or secret.operations.writable)


def test_string_length_range_is_not_a_numeric_range(repo: ObjectModelRepository) -> None:
    uri = repo.get_resource(LwM2mPath(0, 0, 0))
    assert uri.range_enumeration == "0..255"
    assert uri.numeric_range() is None
    assert uri.enumerated_values() is None


def test_float_and_negative_ranges() -> None:
    model = ResourceModel(0, "T", Operations.READ, False, False, ResourceType.FLOAT, "-40.5..85")
    assert model.numeric_range() == (-40.5, 85)
    assert (
        ResourceModel(
            0, "T", Operations.READ, False, False, ResourceType.INTEGER, "any"
        ).numeric_range()
        is None
    )


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("/3/0", "does not name a resource"),
        ("/", "does not name a resource"),
        ("/9999/0/0", "unknown object 9999"),
        ("/3/0/999", "object 3 (Device) has no resource 999"),
        ("/3/0/0/1", "resource Manufacturer is single-instance"),
    ],
)
def test_get_resource_errors_name_the_path(
    repo: ObjectModelRepository, path: str, fragment: str
) -> None:
    with pytest.raises(ModelError) as info:
        repo.get_resource(LwM2mPath.parse(path))
    assert fragment in str(info.value)
    assert info.value.path == LwM2mPath.parse(path)

"""The object model: what each object and resource is, loaded from OMA DDF XML files.

Files follow the LwM2M v1.1 DDF schema (``LWM2M-v1_1.xsd``). Loading checks the structure
we rely on (ids, names, types, operations, multiplicity) and refuses anything else with a
:class:`ModelError` naming the file and element. Definitions may be uploaded through the
dashboard, so parsing refuses DOCTYPE and entity declarations outright (no entity
expansion, no external fetches) and documents above :data:`MAX_DEFINITION_BYTES`.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from importlib import resources
from pathlib import Path
from xml.parsers import expat

from lwm2m_core.errors import ModelError
from lwm2m_core.path import MAX_ID, LwM2mPath

#: Largest definition document accepted. The biggest official object (0) is about 40 kB.
MAX_DEFINITION_BYTES = 1024 * 1024
#: Object ids are 16 bits: at most five decimal digits in a definition.
_MAX_ID_DIGITS = 5


class ResourceType(Enum):
    """Resource data types (TS Core Appendix C)."""

    STRING = "String"
    INTEGER = "Integer"
    UNSIGNED_INTEGER = "Unsigned Integer"
    FLOAT = "Float"
    BOOLEAN = "Boolean"
    OPAQUE = "Opaque"
    TIME = "Time"
    OBJLNK = "Objlnk"
    CORELNK = "Corelnk"
    NONE = "none"  # executable resources carry no value

    @property
    def numeric(self) -> bool:
        """True for the types a numeric RangeEnumeration bounds."""
        return self in _NUMERIC_TYPES


_NUMERIC_TYPES = frozenset(
    {ResourceType.INTEGER, ResourceType.UNSIGNED_INTEGER, ResourceType.FLOAT, ResourceType.TIME}
)


class Operations(Enum):
    """What a server may do with a resource (``NONE``: nothing, e.g. Security keys)."""

    NONE = ""
    READ = "R"
    WRITE = "W"
    READ_WRITE = "RW"
    EXECUTE = "E"

    @property
    def readable(self) -> bool:
        return "R" in self.value

    @property
    def writable(self) -> bool:
        return "W" in self.value

    @property
    def executable(self) -> bool:
        return self is Operations.EXECUTE


_NUMERIC_RANGE = re.compile(r"(-?\d+(?:\.\d+)?)\s*(?:\.\.|-)\s*(-?\d+(?:\.\d+)?)")
_ENUMERATION = re.compile(r"[A-Za-z_][\w-]*(?:\s*,\s*[A-Za-z_][\w-]*)+")
_DECIMAL_ID = re.compile(r"[0-9]+")


def _number(text: str) -> float:
    """An int when the text is integral, so large integer bounds stay exact."""
    return float(text) if "." in text else int(text)


@dataclass(frozen=True)
class ResourceModel:
    """One resource of an object definition (one ``<Item>``)."""

    id: int
    name: str
    operations: Operations
    multiple: bool
    mandatory: bool
    type: ResourceType
    range_enumeration: str = ""
    units: str = ""
    description: str = ""

    def numeric_range(self) -> tuple[float, float] | None:
        """``(low, high)`` when RangeEnumeration is a numeric range such as ``0..100``.

        Only for numeric types: on a String the same text bounds the length, not a value.
        """
        if not self.type.numeric:
            return None
        match = _NUMERIC_RANGE.fullmatch(self.range_enumeration.strip())
        if not match:
            return None
        return _number(match.group(1)), _number(match.group(2))

    def enumerated_values(self) -> tuple[str, ...] | None:
        """The allowed words when RangeEnumeration lists them, as in ``sale,refund,void``."""
        text = self.range_enumeration.strip()
        if self.type is not ResourceType.STRING or not _ENUMERATION.fullmatch(text):
            return None
        return tuple(word.strip() for word in text.split(","))


@dataclass(frozen=True)
class ObjectModel:
    """One object definition; ``source`` names the file it came from, for error messages."""

    id: int
    name: str
    multiple: bool
    mandatory: bool
    version: str = "1.0"
    lwm2m_version: str = "1.0"
    urn: str = ""
    description: str = ""
    resources: dict[int, ResourceModel] = field(default_factory=dict)
    source: str = ""


def _refuse_doctype(*_args: object) -> None:
    raise ModelError("DOCTYPE and entity declarations are not allowed in object definitions")


def _parse_xml(xml_text: str | bytes, source: str) -> ET.Element:
    """Parse with expat directly so a DOCTYPE is refused before anything in it is read."""
    if len(xml_text) > MAX_DEFINITION_BYTES:
        raise ModelError(
            f"{source}: {len(xml_text)} bytes is larger than the limit of {MAX_DEFINITION_BYTES}"
        )
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate()
    parser.buffer_text = True
    parser.StartDoctypeDeclHandler = _refuse_doctype
    parser.EntityDeclHandler = _refuse_doctype
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(xml_text, True)
        return builder.close()
    except ModelError as exc:
        raise ModelError(f"{source}: {exc.message}") from None
    except expat.ExpatError as exc:
        raise ModelError(f"{source}: not well-formed XML: {exc}") from None
    except (LookupError, ValueError) as exc:  # unknown or unusable encoding declarations
        raise ModelError(f"{source}: cannot read the document: {exc}") from None


def _text(element: ET.Element, tag: str, where: str, required: bool = True) -> str:
    child = element.find(tag)
    if child is None:
        if required:
            raise ModelError(f"{where}: missing <{tag}>")
        return ""
    return (child.text or "").strip()


def _name(element: ET.Element, where: str) -> str:
    name = _text(element, "Name", where)
    if not name:
        raise ModelError(f"{where}: <Name> is empty")
    return name


def _parse_id(text: str, where: str, what: str = "id") -> int:
    text = text.strip()
    if not _DECIMAL_ID.fullmatch(text):
        raise ModelError(f"{where}: {what} {text!r} is not a non-negative decimal integer")
    if len(text) > _MAX_ID_DIGITS or int(text) >= MAX_ID:
        raise ModelError(f"{where}: {what} {text} is out of range 0..{MAX_ID - 1}")
    return int(text)


def _multiplicity(text: str, where: str) -> bool:
    if text not in ("Single", "Multiple"):
        raise ModelError(f"{where}: <MultipleInstances> must be Single or Multiple, not {text!r}")
    return text == "Multiple"


def _mandatory(text: str, where: str) -> bool:
    if text not in ("Mandatory", "Optional"):
        raise ModelError(f"{where}: <Mandatory> must be Mandatory or Optional, not {text!r}")
    return text == "Mandatory"


def _resource_from_xml(item: ET.Element, where: str) -> ResourceModel:
    if "ID" not in item.attrib:
        raise ModelError(f"{where}: <Item> has no ID attribute")
    rid = _parse_id(item.attrib["ID"], where, "resource ID")
    where = f"{where} resource {rid}"
    ops_text = _text(item, "Operations", where)
    try:
        operations = Operations(ops_text)
    except ValueError:
        raise ModelError(f"{where}: unknown <Operations> {ops_text!r}") from None
    if operations.executable:
        # An executable carries no value; whatever <Type> says is irrelevant.
        rtype = ResourceType.NONE
    else:
        type_text = _text(item, "Type", where)
        try:
            rtype = ResourceType(type_text)
        except ValueError:
            raise ModelError(f"{where}: unknown <Type> {type_text!r}") from None
        if rtype is ResourceType.NONE:
            raise ModelError(f"{where}: unknown <Type> {type_text!r}")
    return ResourceModel(
        id=rid,
        name=_name(item, where),
        operations=operations,
        multiple=_multiplicity(_text(item, "MultipleInstances", where), where),
        mandatory=_mandatory(_text(item, "Mandatory", where), where),
        type=rtype,
        range_enumeration=_text(item, "RangeEnumeration", where, required=False),
        units=_text(item, "Units", where, required=False),
        description=_text(item, "Description", where, required=False),
    )


def _object_from_xml(element: ET.Element, source: str) -> ObjectModel:
    oid = _parse_id(_text(element, "ObjectID", f"{source} <Object>"), source, "ObjectID")
    where = f"{source} object {oid}"
    resources_el = element.find("Resources")
    if resources_el is None:
        raise ModelError(f"{where}: missing <Resources>")
    resource_models: dict[int, ResourceModel] = {}
    for item in resources_el.findall("Item"):
        resource = _resource_from_xml(item, where)
        if resource.id in resource_models:
            raise ModelError(f"{where}: resource {resource.id} is defined twice")
        resource_models[resource.id] = resource
    return ObjectModel(
        id=oid,
        name=_name(element, where),
        multiple=_multiplicity(_text(element, "MultipleInstances", where), where),
        mandatory=_mandatory(_text(element, "Mandatory", where), where),
        version=_text(element, "ObjectVersion", where, required=False) or "1.0",
        lwm2m_version=_text(element, "LWM2MVersion", where, required=False) or "1.0",
        urn=_text(element, "ObjectURN", where, required=False),
        description=_text(element, "Description1", where, required=False),
        resources=resource_models,
        source=source,
    )


def parse_object_definitions(xml_text: str | bytes, source: str = "<string>") -> list[ObjectModel]:
    """Parse one DDF document (one ``<LWM2M>`` with one or more ``<Object>``)."""
    root = _parse_xml(xml_text, source)
    if root.tag != "LWM2M":
        raise ModelError(f"{source}: root element must be <LWM2M>, not <{root.tag}>")
    objects: list[ObjectModel] = []
    for element in root.findall("Object"):
        obj = _object_from_xml(element, source)
        if any(other.id == obj.id for other in objects):
            raise ModelError(f"{source}: object {obj.id} is defined twice")
        objects.append(obj)
    if not objects:
        raise ModelError(f"{source}: no <Object> element")
    return objects


class ObjectModelRepository:
    """All object models known to one side, by object id.

    Build it with :meth:`default` (the definitions shipped in ``object_defs``) plus any
    extra folders given at run time; later folders may add objects but not redefine one.
    Every loading method is all-or-nothing: on a ModelError the repository is unchanged.
    """

    def __init__(self, objects: Iterable[ObjectModel] = ()) -> None:
        self._objects: dict[int, ObjectModel] = {}
        self._add_all(list(objects))

    @classmethod
    def default(cls, *extra_dirs: str | Path) -> ObjectModelRepository:
        """The shipped definitions plus those in ``extra_dirs``, in that order."""
        repo = cls()
        shipped = resources.files("object_defs")
        found: list[ObjectModel] = []
        for entry in sorted(shipped.iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".xml"):
                source = f"object_defs/{entry.name}"
                found.extend(parse_object_definitions(entry.read_bytes(), source))
        repo._add_all(found)
        for folder in extra_dirs:
            repo.load_dir(folder)
        return repo

    def load_dir(self, folder: str | Path) -> list[ObjectModel]:
        """Add every ``*.xml`` file in ``folder``; nothing is added if any file is bad."""
        folder = Path(folder)
        if not folder.is_dir():
            raise ModelError(f"{folder}: not a folder of object definitions")
        found: list[ObjectModel] = []
        for file in sorted(folder.glob("*.xml")):
            try:
                data = file.read_bytes()
            except OSError as exc:
                raise ModelError(f"{file}: cannot read: {exc.strerror or exc}") from None
            found.extend(parse_object_definitions(data, str(file)))
        self._add_all(found)
        return found

    def add_document(self, xml_text: str | bytes, source: str = "<string>") -> list[ObjectModel]:
        """Parse one document and add its objects (all of them, or none on error)."""
        objects = parse_object_definitions(xml_text, source)
        self._add_all(objects)
        return objects

    def add(self, obj: ObjectModel) -> None:
        """Add one object; refuses an id that is already defined."""
        self._add_all([obj])

    def _add_all(self, objects: list[ObjectModel]) -> None:
        pending: dict[int, ObjectModel] = {}
        for obj in objects:
            existing = self._objects.get(obj.id) or pending.get(obj.id)
            if existing is not None:
                raise ModelError(
                    f"{obj.source or '<model>'}: object {obj.id} is already defined"
                    f" by {existing.source or '<model>'}"
                )
            pending[obj.id] = obj
        self._objects.update(pending)

    def __contains__(self, object_id: object) -> bool:
        return object_id in self._objects

    def __iter__(self) -> Iterator[ObjectModel]:
        return iter(sorted(self._objects.values(), key=lambda o: o.id))

    def __len__(self) -> int:
        return len(self._objects)

    def get_object(self, object_id: int) -> ObjectModel:
        try:
            return self._objects[object_id]
        except KeyError:
            raise ModelError(f"unknown object {object_id}", LwM2mPath(object_id)) from None

    def get_resource(self, path: LwM2mPath) -> ResourceModel:
        """The model of the resource that ``path`` names or lies in (depth 3 or 4)."""
        if path.resource_id is None or path.object_id is None:
            raise ModelError("path does not name a resource", path)
        obj = self._objects.get(path.object_id)
        if obj is None:
            raise ModelError(f"unknown object {path.object_id}", path)
        try:
            resource = obj.resources[path.resource_id]
        except KeyError:
            raise ModelError(
                f"object {obj.id} ({obj.name}) has no resource {path.resource_id}", path
            ) from None
        if path.is_resource_instance and not resource.multiple:
            raise ModelError(f"resource {resource.name} is single-instance", path)
        return resource

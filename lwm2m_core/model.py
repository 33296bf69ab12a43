"""The object model: what each object and resource is, loaded from OMA DDF XML files.

Files follow the LwM2M v1.1 DDF schema (``LWM2M-v1_1.xsd``). Loading checks the structure
we rely on (ids, names, types, operations, multiplicity) and refuses anything else with a
:class:`ModelError` naming the file and element. Parsing uses the standard library with
entity expansion refused, since definitions may be uploaded through the dashboard.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from enum import Enum
from importlib import resources
from pathlib import Path

from lwm2m_core.errors import ModelError
from lwm2m_core.path import MAX_ID, LwM2mPath


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


class Operations(Enum):
    """What a server may do with a resource."""

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


@dataclass(frozen=True)
class ResourceModel:
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
        """``(low, high)`` when RangeEnumeration is a numeric range such as ``0..100``."""
        match = _NUMERIC_RANGE.fullmatch(self.range_enumeration.strip())
        if not match:
            return None
        return float(match.group(1)), float(match.group(2))


@dataclass(frozen=True)
class ObjectModel:
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


_NUMERIC_RANGE = re.compile(r"(-?\d+(?:\.\d+)?)\s*(?:\.\.|-)\s*(-?\d+(?:\.\d+)?)")
_ENTITY_MARKERS = ("<!DOCTYPE", "<!ENTITY")


def _text(element: ET.Element, tag: str, where: str, required: bool = True) -> str:
    child = element.find(tag)
    if child is None:
        if required:
            raise ModelError(f"{where}: missing <{tag}>")
        return ""
    return (child.text or "").strip()


def _parse_id(text: str, where: str) -> int:
    if not text.isdigit():
        raise ModelError(f"{where}: id {text!r} is not a non-negative integer")
    value = int(text)
    if value >= MAX_ID:
        raise ModelError(f"{where}: id {value} is out of range 0..{MAX_ID - 1}")
    return value


def _multiplicity(text: str, where: str) -> bool:
    if text not in ("Single", "Multiple"):
        raise ModelError(f"{where}: MultipleInstances must be Single or Multiple, not {text!r}")
    return text == "Multiple"


def _mandatory(text: str, where: str) -> bool:
    if text not in ("Mandatory", "Optional"):
        raise ModelError(f"{where}: Mandatory must be Mandatory or Optional, not {text!r}")
    return text == "Mandatory"


def _resource_from_xml(item: ET.Element, where: str) -> ResourceModel:
    rid = _parse_id(item.get("ID", ""), where)
    where = f"{where} resource {rid}"
    ops_text = _text(item, "Operations", where)
    try:
        operations = Operations(ops_text)
    except ValueError:
        raise ModelError(f"{where}: unknown Operations {ops_text!r}") from None
    type_text = _text(item, "Type", where, required=False)
    if operations.executable:
        rtype = ResourceType.NONE
    else:
        try:
            rtype = ResourceType(type_text)
        except ValueError:
            raise ModelError(f"{where}: unknown Type {type_text!r}") from None
    return ResourceModel(
        id=rid,
        name=_text(item, "Name", where),
        operations=operations,
        multiple=_multiplicity(_text(item, "MultipleInstances", where), where),
        mandatory=_mandatory(_text(item, "Mandatory", where), where),
        type=rtype,
        range_enumeration=_text(item, "RangeEnumeration", where, required=False),
        units=_text(item, "Units", where, required=False),
        description=_text(item, "Description", where, required=False),
    )


def parse_object_definitions(xml_text: str | bytes, source: str = "<string>") -> list[ObjectModel]:
    """Parse one DDF document (one ``<LWM2M>`` with one or more ``<Object>``)."""
    raw = xml_text.decode("utf-8", errors="replace") if isinstance(xml_text, bytes) else xml_text
    if any(marker in raw for marker in _ENTITY_MARKERS):
        raise ModelError(f"{source}: DOCTYPE and entity declarations are not allowed")
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as exc:
        raise ModelError(f"{source}: not well-formed XML: {exc}") from None
    if root.tag != "LWM2M":
        raise ModelError(f"{source}: root element must be <LWM2M>, not <{root.tag}>")
    objects = []
    for element in root.findall("Object"):
        where = f"{source}"
        oid = _parse_id(_text(element, "ObjectID", where), where)
        where = f"{source} object {oid}"
        resources_el = element.find("Resources")
        if resources_el is None:
            raise ModelError(f"{where}: missing <Resources>")
        resource_models: dict[int, ResourceModel] = {}
        for item in resources_el.findall("Item"):
            resource = _resource_from_xml(item, where)
            if resource.id in resource_models:
                raise ModelError(f"{where}: resource id {resource.id} defined twice")
            resource_models[resource.id] = resource
        objects.append(
            ObjectModel(
                id=oid,
                name=_text(element, "Name", where),
                multiple=_multiplicity(_text(element, "MultipleInstances", where), where),
                mandatory=_mandatory(_text(element, "Mandatory", where), where),
                version=_text(element, "ObjectVersion", where, required=False) or "1.0",
                lwm2m_version=_text(element, "LWM2MVersion", where, required=False) or "1.0",
                urn=_text(element, "ObjectURN", where, required=False),
                description=_text(element, "Description1", where, required=False),
                resources=resource_models,
                source=source,
            )
        )
    if not objects:
        raise ModelError(f"{source}: no <Object> element")
    return objects


class ObjectModelRepository:
    """All object models known to one side, by object id.

    Build it with :meth:`default` (the definitions shipped in ``object_defs``) plus any
    extra folders given at run time; later folders may add objects but not redefine one.
    """

    def __init__(self, objects: list[ObjectModel] | None = None) -> None:
        self._objects: dict[int, ObjectModel] = {}
        for obj in objects or []:
            self.add(obj)

    @classmethod
    def default(cls, *extra_dirs: str | Path) -> ObjectModelRepository:
        repo = cls()
        shipped = resources.files("object_defs")
        for entry in sorted(shipped.iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".xml"):
                repo.add_document(entry.read_bytes(), source=f"object_defs/{entry.name}")
        for folder in extra_dirs:
            repo.load_dir(folder)
        return repo

    def load_dir(self, folder: str | Path) -> None:
        folder = Path(folder)
        if not folder.is_dir():
            raise ModelError(f"{folder}: not a folder of object definitions")
        for file in sorted(folder.glob("*.xml")):
            self.add_document(file.read_bytes(), source=str(file))

    def add_document(self, xml_text: str | bytes, source: str = "<string>") -> list[ObjectModel]:
        objects = parse_object_definitions(xml_text, source)
        for obj in objects:
            self.add(obj)
        return objects

    def add(self, obj: ObjectModel) -> None:
        existing = self._objects.get(obj.id)
        if existing is not None:
            raise ModelError(
                f"{obj.source}: object {obj.id} is already defined by {existing.source}"
            )
        self._objects[obj.id] = obj

    def __contains__(self, object_id: object) -> bool:
        return object_id in self._objects

    def __iter__(self):  # type: ignore[no-untyped-def]
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
        obj = self.get_object(path.object_id)
        try:
            resource = obj.resources[path.resource_id]
        except KeyError:
            raise ModelError(f"object {obj.id} ({obj.name}) has no resource {path.resource_id}", path) from None
        if path.is_resource_instance and not resource.multiple:
            raise ModelError(f"resource {resource.name} is single-instance", path)
        return resource

"""A JSON form of the value tree, for people: the ``posfleet lwm2m`` command and tools.

Values by type: String/Corelnk text, Integer/Unsigned integer numbers, Float numbers,
Boolean true/false, Opaque ``{"hex": "0a1b"}`` (``{"base64": "Chs="}`` also accepted),
Time ISO 8601 text in UTC (``"2013-05-02T10:40:15Z"``; integer seconds accepted), Objlnk
``"3:0"``. Nodes carry their path and, by depth::

    {"path": "/3", "instances": {"0": {"0": "ACME", "6": {"0": 1, "1": 5}}}}
    {"path": "/3/0", "resources": {"0": "ACME", "6": {"0": 1, "1": 5}}}
    {"path": "/3/0/6", "instances": {"0": 1, "1": 5}}
    {"path": "/3/0/0", "value": "ACME"}          (also /3/0/6/1)
    {"records": [{"path": "/3/0/9", "value": 95, "time": "2026-01-01T00:00:00Z"}]}
    {"links": [{"target": "/3/0/7", "params": {"dim": 2, "pmin": 10}}]}

Whether a resource map entry is one value or a map of instances follows the model.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any

from lwm2m_core.codec.records import Record
from lwm2m_core.errors import CodecError, LwM2MError
from lwm2m_core.link import Link, ParamValue
from lwm2m_core.model import ObjectModelRepository, ResourceType
from lwm2m_core.node import (
    LwM2mMultipleResource,
    LwM2mNode,
    LwM2mObject,
    LwM2mObjectInstance,
    LwM2mResource,
    LwM2mResourceInstance,
    LwM2mSingleResource,
    ObjectLink,
    Value,
    check_value,
    time_from_seconds,
)
from lwm2m_core.path import LwM2mPath

JsonObject = dict[str, Any]


def value_to_json(value: Value) -> Any:
    if isinstance(value, bytes):
        return {"hex": value.hex()}
    if isinstance(value, datetime):
        text = value.astimezone(UTC).isoformat()
        return text.replace("+00:00", "Z")
    if isinstance(value, ObjectLink):
        return str(value)
    return value


def value_from_json(data: Any, rtype: ResourceType, path: LwM2mPath) -> Value:
    """A typed value from its JSON form, checked against ``rtype``."""
    value: object = data
    if rtype is ResourceType.OPAQUE:
        value = _opaque_from_json(data, path)
    elif rtype is ResourceType.TIME:
        if isinstance(data, int) and not isinstance(data, bool):
            value = time_from_seconds(data)
        elif isinstance(data, str):
            try:
                value = datetime.fromisoformat(data)
            except ValueError:
                raise CodecError(f"time {data!r:.40} is not ISO 8601", path) from None
    elif rtype is ResourceType.OBJLNK:
        if not isinstance(data, str):
            raise CodecError(f"object link must be text OBJECT:INSTANCE, not {data!r:.40}", path)
        value = ObjectLink.parse(data)
    return check_value(value, rtype, path)


def _opaque_from_json(data: Any, path: LwM2mPath) -> bytes:
    if not isinstance(data, dict) or len(data) != 1:
        raise CodecError('opaque value must be {"hex": ...} or {"base64": ...}', path)
    (kind, text), = data.items()
    if not isinstance(text, str):
        raise CodecError(f"opaque {kind} must be text", path)
    try:
        if kind == "hex":
            return bytes.fromhex(text)
        if kind == "base64":
            return base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error):
        raise CodecError(f"opaque value is not valid {kind}", path) from None
    raise CodecError(f'opaque value must be {{"hex": ...}} or {{"base64": ...}}, not {kind!r}',
                     path)


def _resource_to_json(resource: LwM2mResource) -> Any:
    if isinstance(resource, LwM2mSingleResource):
        return value_to_json(resource.value)
    return {str(riid): value_to_json(v) for riid, v in sorted(resource.instances.items())}


def _instance_to_json(instance: LwM2mObjectInstance) -> JsonObject:
    return {str(rid): _resource_to_json(r) for rid, r in sorted(instance.resources.items())}


def node_to_json(node: LwM2mNode, path: LwM2mPath) -> JsonObject:
    out: JsonObject = {"path": str(path)}
    if isinstance(node, LwM2mObject):
        out["instances"] = {
            str(iid): _instance_to_json(inst) for iid, inst in sorted(node.instances.items())
        }
    elif isinstance(node, LwM2mObjectInstance):
        out["resources"] = _instance_to_json(node)
    elif isinstance(node, LwM2mMultipleResource):
        out["instances"] = _resource_to_json(node)
    else:
        out["value"] = value_to_json(node.value)
    return out


def _id(key: object, path: LwM2mPath) -> int:
    if not isinstance(key, str) or not key.isdigit() or not key.isascii() or len(key) > 5:
        raise CodecError(f"id {key!r:.20} is not a decimal id", path)
    return int(key)


def _mapping(data: Any, what: str, path: LwM2mPath) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise CodecError(f"{what} must be a JSON object", path)
    return data


def _resource_from_json(
    data: Any, path: LwM2mPath, model: ObjectModelRepository
) -> LwM2mResource:
    resource = model.get_resource(path)
    assert path.resource_id is not None
    if resource.multiple:
        instances = {}
        for key, value in _mapping(data, "a multiple resource", path).items():
            riid = _id(key, path)
            instances[riid] = value_from_json(value, resource.type, path.child(riid))
        return LwM2mMultipleResource(path.resource_id, resource.type, instances)
    value = value_from_json(data, resource.type, path)
    return LwM2mSingleResource(path.resource_id, resource.type, value)


def _instance_from_json(
    data: Any, path: LwM2mPath, model: ObjectModelRepository
) -> LwM2mObjectInstance:
    assert path.object_instance_id is not None
    resources = {}
    for key, value in _mapping(data, "an object instance", path).items():
        rid = _id(key, path)
        resources[rid] = _resource_from_json(value, path.child(rid), model)
    return LwM2mObjectInstance(path.object_instance_id, resources)


def _check_keys(data: dict[str, Any], allowed: set[str], path: LwM2mPath) -> None:
    unknown = set(data) - allowed
    if unknown:
        raise CodecError(f"unexpected keys {sorted(unknown)} for this path", path)


def node_from_json(
    data: Any, model: ObjectModelRepository, path: LwM2mPath | None = None
) -> LwM2mNode:
    """The node a JSON form describes; ``path`` overrides the form's own ``path``."""
    data = _mapping(data, "the document", path or LwM2mPath())
    try:
        if path is None:
            path = LwM2mPath.parse(data.get("path", ""))
        if path.is_root:
            raise CodecError("a node needs an object, instance or resource path", path)
        assert path.object_id is not None
        model.get_object(path.object_id)
        if path.is_object:
            _check_keys(data, {"path", "instances"}, path)
            instances = {}
            for key, inst in _mapping(data.get("instances", {}), "instances", path).items():
                iid = _id(key, path)
                instances[iid] = _instance_from_json(inst, path.child(iid), model)
            return LwM2mObject(path.object_id, instances)
        if path.is_object_instance:
            _check_keys(data, {"path", "resources"}, path)
            return _instance_from_json(data.get("resources", {}), path, model)
        resource = model.get_resource(path)
        if path.is_resource and resource.multiple:
            _check_keys(data, {"path", "instances"}, path)
            return _resource_from_json(data.get("instances", {}), path, model)
        _check_keys(data, {"path", "value"}, path)
        if "value" not in data:
            raise CodecError('missing "value"', path)
        value = value_from_json(data["value"], resource.type, path)
        if path.is_resource_instance:
            return LwM2mResourceInstance(path.ids[-1], resource.type, value)
        return LwM2mSingleResource(path.ids[-1], resource.type, value)
    except RecursionError:
        raise CodecError("JSON nesting too deep", path) from None


def records_to_json(records: list[Record]) -> JsonObject:
    return {
        "records": [
            {
                "path": str(r.path),
                "value": value_to_json(r.value),
                "time": value_to_json(r.time) if r.time else None,
            }
            for r in records
        ]
    }


def records_from_json(data: Any, model: ObjectModelRepository) -> list[Record]:
    root = LwM2mPath()
    items = _mapping(data, "the document", root).get("records")
    if not isinstance(items, list):
        raise CodecError('"records" must be a list')
    records = []
    for index, item in enumerate(items):
        item = _mapping(item, f"record {index}", root)
        _check_keys(item, {"path", "value", "time"}, root)
        path = LwM2mPath.parse(item.get("path", ""))
        resource = model.get_resource(path)
        value = value_from_json(item.get("value"), resource.type, path)
        time = item.get("time")
        when = None if time is None else value_from_json(time, ResourceType.TIME, path)
        assert when is None or isinstance(when, datetime)
        records.append(Record(path, value, when))
    return records


def links_to_json(links: list[Link]) -> JsonObject:
    return {
        "links": [
            {
                "target": link.target,
                "params": {
                    name: list(value) if isinstance(value, tuple) else value
                    for name, value in link.params.items()
                },
            }
            for link in links
        ]
    }


def links_from_json(data: Any) -> list[Link]:
    items = _mapping(data, "the document", LwM2mPath()).get("links")
    if not isinstance(items, list):
        raise CodecError('"links" must be a list')
    links = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("target"), str):
            raise CodecError(f'link {index} must be {{"target": "...", "params": {{...}}}}')
        params: dict[str, ParamValue] = {}
        raw_params = item.get("params", {})
        if not isinstance(raw_params, dict):
            raise CodecError(f"link {index}: params must be a JSON object")
        for name, value in raw_params.items():
            params[name] = tuple(value) if isinstance(value, list) else value
        try:
            links.append(Link(item["target"], params))
        except LwM2MError as exc:
            raise CodecError(f"link {index}: {exc.message}") from None
    return links

"""Shared plumbing of the codecs: model look-ups, flattening a node into leaf values and
building a node back from leaf values, with the checks every format needs.

Flat formats (SenML) carry one value per resource or resource instance; TLV is nested but
ends in the same leaves. Building every node through :func:`build_node` means the rules
(path inside the request, resource in the model, type fits, no id twice) live in one place.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from lwm2m_core.errors import CodecError, ModelError
from lwm2m_core.model import ObjectModelRepository, ResourceModel, ResourceType
from lwm2m_core.node import (
    LwM2mMultipleResource,
    LwM2mNode,
    LwM2mObject,
    LwM2mObjectInstance,
    LwM2mResource,
    LwM2mResourceInstance,
    LwM2mSingleResource,
    Value,
    check_value,
)
from lwm2m_core.path import LwM2mPath

#: Largest payload any decoder accepts. LwM2M payloads travel in CoAP blocks; a Device
#: object is a few hundred bytes, a firmware image does not go through these codecs.
MAX_PAYLOAD_BYTES = 1 << 20
#: Most leaf values (SenML records, TLV entries) one payload may carry.
MAX_ENTRIES = 10_000

Leaf = tuple[LwM2mPath, Value]


def check_payload_size(payload: bytes, path: LwM2mPath | None, what: str) -> None:
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise CodecError(f"{what} payload must be bytes, not {type(payload).__name__}", path)
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise CodecError(
            f"{what} payload of {len(payload)} bytes exceeds the limit of {MAX_PAYLOAD_BYTES}",
            path,
        )


def valued_resource(path: LwM2mPath, model: ObjectModelRepository) -> ResourceModel:
    """The model of the resource at ``path`` (depth 3 or 4), refusing executables."""
    resource = model.get_resource(path)
    if resource.type is ResourceType.NONE:
        raise ModelError(f"resource {resource.name} is executable and carries no value", path)
    return resource


def check_leaf(path: LwM2mPath, value: object, model: ObjectModelRepository) -> Value:
    """Check one leaf value against the model; ``path`` has depth 3 (single) or 4."""
    resource = valued_resource(path, model)
    if path.is_resource and resource.multiple:
        raise ModelError(
            f"resource {resource.name} is multiple-instance: its values need an instance id",
            path,
        )
    return check_value(value, resource.type, path)


def single_value_type(path: LwM2mPath, model: ObjectModelRepository, fmt: str) -> ResourceType:
    """Text and opaque carry one value: a single resource or one resource instance."""
    if path.depth < 3:
        raise CodecError(f"{fmt} carries a single value; the path must name a resource", path)
    resource = valued_resource(path, model)
    if path.is_resource and resource.multiple:
        raise CodecError(
            f"{fmt} cannot carry the multiple resource {resource.name}; "
            "name one resource instance",
            path,
        )
    return resource.type


def check_node_kind(node: object, path: LwM2mPath) -> None:
    """Refuse a node whose kind does not match the depth of ``path``."""
    expected: dict[int, tuple[type, ...]] = {
        1: (LwM2mObject,),
        2: (LwM2mObjectInstance,),
        3: (LwM2mSingleResource, LwM2mMultipleResource),
        4: (LwM2mResourceInstance,),
    }
    kinds = expected.get(path.depth)
    if kinds is None:
        raise CodecError("the root path names no single node", path)
    if not isinstance(node, kinds):
        names = " or ".join(kind.__name__ for kind in kinds)
        raise CodecError(f"expected a {names} for this path, got {type(node).__name__}", path)
    node_id = getattr(node, "id", None)
    if node_id != path.ids[-1]:
        raise CodecError(f"node id {node_id!r} does not match the path", path)


def _resource_leaves(resource: LwM2mResource, path: LwM2mPath) -> Iterator[Leaf]:
    if isinstance(resource, LwM2mSingleResource):
        yield path, resource.value
    else:
        for riid, value in sorted(resource.instances.items()):
            yield path.child(riid), value


def _instance_leaves(instance: LwM2mObjectInstance, path: LwM2mPath) -> Iterator[Leaf]:
    for rid, resource in sorted(instance.resources.items()):
        if resource.id != rid:
            raise CodecError(f"resource keyed {rid} has id {resource.id}", path)
        yield from _resource_leaves(resource, path.child(rid))


def flatten(node: LwM2mNode, path: LwM2mPath) -> list[Leaf]:
    """Every leaf value of ``node`` (which sits at ``path``) with its full path, in id order."""
    check_node_kind(node, path)
    if isinstance(node, LwM2mObject):
        leaves: list[Leaf] = []
        for iid, instance in sorted(node.instances.items()):
            if instance.id != iid:
                raise CodecError(f"instance keyed {iid} has id {instance.id}", path)
            leaves.extend(_instance_leaves(instance, path.child(iid)))
        return leaves
    if isinstance(node, LwM2mObjectInstance):
        return list(_instance_leaves(node, path))
    if isinstance(node, (LwM2mSingleResource, LwM2mMultipleResource)):
        return list(_resource_leaves(node, path))
    return [(path, node.value)]


def check_node(node: LwM2mNode, path: LwM2mPath, model: ObjectModelRepository) -> None:
    """Check a whole node against the model before encoding it."""
    check_node_kind(node, path)
    if path.object_id is not None:
        model.get_object(path.object_id)
    if isinstance(node, LwM2mObject):
        for iid, instance in node.instances.items():
            check_node(instance, path.child(iid), model)
        return
    if isinstance(node, LwM2mObjectInstance):
        for rid, resource in node.resources.items():
            check_node(resource, path.child(rid), model)
        return
    if isinstance(node, LwM2mResourceInstance):
        check_leaf(path, node.value, model)
        return
    resource_model = valued_resource(path, model)
    if isinstance(node, LwM2mSingleResource):
        if resource_model.multiple:
            raise ModelError(f"resource {resource_model.name} is multiple-instance", path)
        check_value(node.value, resource_model.type, path)
    else:
        if not resource_model.multiple:
            raise ModelError(f"resource {resource_model.name} is single-instance", path)
        for riid, value in node.instances.items():
            check_leaf(path.child(riid), value, model)
    if node.type is not resource_model.type:
        raise ModelError(
            f"node type {node.type.value} differs from the model's {resource_model.type.value}",
            path,
        )


class TreeBuilder:
    """Collects leaf values under one request path and builds the node for that path.

    Also records multiple resources and object instances seen without any leaf (TLV can
    say "resource 11 with no instances"), so they are not lost.
    """

    def __init__(self, path: LwM2mPath, model: ObjectModelRepository) -> None:
        if path.is_root:
            raise CodecError("the root path names no single node; decode records instead", path)
        self.path = path
        self.model = model
        model.get_object(path.object_id or 0)
        if path.depth >= 3:
            valued_resource(path, model)
        self._values: dict[LwM2mPath, Value] = {}
        self._empty_resources: set[LwM2mPath] = set()
        self._empty_instances: set[LwM2mPath] = set()

    def _check_under(self, path: LwM2mPath) -> None:
        if not path.starts_with(self.path):
            raise CodecError(f"value for {path} lies outside the requested path", self.path)

    def add(self, path: LwM2mPath, value: object) -> None:
        self._check_under(path)
        if path.depth < 3:
            raise CodecError("a value needs a resource or resource instance path", path)
        if path in self._values:
            raise CodecError("value given twice", path)
        if len(self._values) >= MAX_ENTRIES:
            raise CodecError(f"more than {MAX_ENTRIES} values", self.path)
        self._values[path] = check_leaf(path, value, self.model)

    def add_empty_multiple_resource(self, path: LwM2mPath) -> None:
        self._check_under(path)
        resource = valued_resource(path, self.model)
        if not resource.multiple:
            raise ModelError(f"resource {resource.name} is single-instance", path)
        self._empty_resources.add(path)

    def add_empty_instance(self, path: LwM2mPath) -> None:
        self._check_under(path)
        self._empty_instances.add(path)

    def leaves(self) -> Iterable[Leaf]:
        return self._values.items()

    def build(self) -> LwM2mNode:
        path = self.path
        if path.is_resource_instance:
            if path not in self._values:
                raise CodecError("no value for the resource instance", path)
            resource = valued_resource(path, self.model)
            return LwM2mResourceInstance(path.ids[-1], resource.type, self._values[path])
        # Group once (instance -> resource -> leaves), so building stays linear in size.
        grouped: dict[int, dict[int, dict[LwM2mPath, Value]]] = {}
        for leaf_path, value in self._values.items():
            iid, rid = leaf_path.object_instance_id, leaf_path.resource_id
            assert iid is not None and rid is not None
            grouped.setdefault(iid, {}).setdefault(rid, {})[leaf_path] = value
        for empty in self._empty_resources:
            iid, rid = empty.object_instance_id, empty.resource_id
            assert iid is not None and rid is not None
            grouped.setdefault(iid, {}).setdefault(rid, {})
        for empty in self._empty_instances:
            assert empty.object_instance_id is not None
            grouped.setdefault(empty.object_instance_id, {})
        if path.is_resource:
            assert path.object_instance_id is not None and path.resource_id is not None
            leaves = grouped.get(path.object_instance_id, {}).get(path.resource_id, {})
            return self._build_resource(path, leaves)
        if path.is_object_instance:
            assert path.object_instance_id is not None
            return self._build_instance(path, grouped.get(path.object_instance_id, {}))
        instances = {
            iid: self._build_instance(path.child(iid), resources)
            for iid, resources in sorted(grouped.items())
        }
        return LwM2mObject(path.ids[-1], instances)

    def _build_instance(
        self, path: LwM2mPath, resources: dict[int, dict[LwM2mPath, Value]]
    ) -> LwM2mObjectInstance:
        built = {
            rid: self._build_resource(path.child(rid), leaves)
            for rid, leaves in sorted(resources.items())
        }
        return LwM2mObjectInstance(path.ids[-1], built)

    def _build_resource(self, path: LwM2mPath, leaves: dict[LwM2mPath, Value]) -> LwM2mResource:
        resource = valued_resource(path, self.model)
        if not resource.multiple:
            if path not in leaves:
                raise CodecError(f"no value for resource {resource.name}", path)
            return LwM2mSingleResource(path.ids[-1], resource.type, leaves[path])
        instances = {p.ids[-1]: value for p, value in sorted(leaves.items())}
        return LwM2mMultipleResource(path.ids[-1], resource.type, instances)

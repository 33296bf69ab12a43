"""Hypothesis strategies that build value trees the object model allows."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import strategies as st

from lwm2m_core.codec import Record
from lwm2m_core.model import ObjectModelRepository, ResourceModel, ResourceType
from lwm2m_core.node import (
    INT64_MAX,
    INT64_MIN,
    UINT64_MAX,
    LwM2mMultipleResource,
    LwM2mNode,
    LwM2mObject,
    LwM2mObjectInstance,
    LwM2mResource,
    LwM2mResourceInstance,
    LwM2mSingleResource,
    ObjectLink,
    Value,
)
from lwm2m_core.path import LwM2mPath

#: datetime's range in Unix seconds (years 1..9999).
TIME_MIN, TIME_MAX = -62135596800, 253402300799
#: SenML times below 2**28 are relative to now (RFC 8428 §4.5.3); records use later ones.
ABSOLUTE_TIME_MIN = 2**28

ids = st.integers(min_value=0, max_value=65534)
small_ids = st.integers(min_value=0, max_value=300)


def values(rtype: ResourceType) -> st.SearchStrategy[Value]:
    if rtype in (ResourceType.STRING, ResourceType.CORELNK):
        return st.text(max_size=40)
    if rtype is ResourceType.INTEGER:
        return st.integers(INT64_MIN, INT64_MAX)
    if rtype is ResourceType.UNSIGNED_INTEGER:
        return st.integers(0, UINT64_MAX)
    if rtype is ResourceType.FLOAT:
        return st.floats(allow_nan=False, allow_infinity=False)
    if rtype is ResourceType.BOOLEAN:
        return st.booleans()
    if rtype is ResourceType.OPAQUE:
        return st.binary(max_size=40)
    if rtype is ResourceType.TIME:
        return st.integers(TIME_MIN, TIME_MAX).map(lambda s: datetime.fromtimestamp(s, UTC))
    if rtype is ResourceType.OBJLNK:
        return st.builds(ObjectLink, st.integers(0, 65535), st.integers(0, 65535))
    raise ValueError(rtype)


def valued_resources(model: ObjectModelRepository, object_id: int) -> list[ResourceModel]:
    return [
        r for r in model.get_object(object_id).resources.values() if r.type is not ResourceType.NONE
    ]


@st.composite
def resource_nodes(
    draw: st.DrawFn, resource: ResourceModel, min_instances: int = 0
) -> LwM2mResource:
    if resource.multiple:
        instances = draw(
            st.dictionaries(small_ids, values(resource.type), min_size=min_instances, max_size=4)
        )
        return LwM2mMultipleResource(resource.id, resource.type, instances)
    return LwM2mSingleResource(resource.id, resource.type, draw(values(resource.type)))


@st.composite
def instance_nodes(
    draw: st.DrawFn, model: ObjectModelRepository, object_id: int, instance_id: int
) -> LwM2mObjectInstance:
    chosen = draw(
        st.lists(st.sampled_from(valued_resources(model, object_id)), unique_by=lambda r: r.id,
                 max_size=8)
    )
    resources = {r.id: draw(resource_nodes(r)) for r in chosen}
    return LwM2mObjectInstance(instance_id, resources)


@st.composite
def nodes_with_paths(
    draw: st.DrawFn, model: ObjectModelRepository, object_id: int
) -> tuple[LwM2mNode, LwM2mPath]:
    """A node at any depth of ``object_id`` together with its path."""
    obj = model.get_object(object_id)
    iid = draw(small_ids) if obj.multiple else 0
    depth = draw(st.sampled_from([1, 2, 3, 4]))
    if depth == 1:
        iids = draw(st.lists(small_ids, unique=True, max_size=3)) if obj.multiple else [0]
        instances = {i: draw(instance_nodes(model, object_id, i)) for i in iids}
        return LwM2mObject(object_id, instances), LwM2mPath(object_id)
    if depth == 2:
        return draw(instance_nodes(model, object_id, iid)), LwM2mPath(object_id, iid)
    resource = draw(st.sampled_from(valued_resources(model, object_id)))
    if depth == 3 or not resource.multiple:
        return draw(resource_nodes(resource)), LwM2mPath(object_id, iid, resource.id)
    riid = draw(small_ids)
    value = draw(values(resource.type))
    node = LwM2mResourceInstance(riid, resource.type, value)
    return node, LwM2mPath(object_id, iid, resource.id, riid)


@st.composite
def single_value_nodes(
    draw: st.DrawFn, model: ObjectModelRepository, object_id: int, only: ResourceType | None = None
) -> tuple[LwM2mNode, LwM2mPath]:
    """A single resource or one resource instance (what text and opaque carry)."""
    candidates = [
        r for r in valued_resources(model, object_id) if only is None or r.type is only
    ]
    resource = draw(st.sampled_from(candidates))
    iid = draw(small_ids)
    value = draw(values(resource.type))
    if resource.multiple:
        riid = draw(small_ids)
        return (
            LwM2mResourceInstance(riid, resource.type, value),
            LwM2mPath(object_id, iid, resource.id, riid),
        )
    return LwM2mSingleResource(resource.id, resource.type, value), LwM2mPath(
        object_id, iid, resource.id
    )


@st.composite
def record_lists(draw: st.DrawFn, model: ObjectModelRepository, object_id: int) -> list[Record]:
    records = []
    for _ in range(draw(st.integers(0, 6))):
        resource = draw(st.sampled_from(valued_resources(model, object_id)))
        path = LwM2mPath(object_id, draw(small_ids), resource.id)
        if resource.multiple:
            path = path.child(draw(small_ids))
        time = draw(
            st.none()
            | st.integers(ABSOLUTE_TIME_MIN, TIME_MAX).map(lambda s: datetime.fromtimestamp(s, UTC))
        )
        records.append(Record(path, draw(values(resource.type)), time))
    return records


def flat_normalised(node: LwM2mNode) -> LwM2mNode:
    """What a flat format (SenML) can say about ``node``: one record per value, so empty
    multiple resources and empty instances inside a bigger node leave no trace."""
    if isinstance(node, LwM2mObject):
        instances = {
            iid: flat_normalised(inst)  # type: ignore[misc]
            for iid, inst in node.instances.items()
        }
        kept = {iid: inst for iid, inst in instances.items() if inst.resources}  # type: ignore[union-attr]
        return LwM2mObject(node.id, kept)  # type: ignore[arg-type]
    if isinstance(node, LwM2mObjectInstance):
        resources = {
            rid: r
            for rid, r in node.resources.items()
            if not (isinstance(r, LwM2mMultipleResource) and not r.instances)
        }
        return LwM2mObjectInstance(node.id, resources)
    return node


"""application/octet-stream (TS Core §7.4.2): the raw bytes of one Opaque resource."""

from __future__ import annotations

from lwm2m_core.codec._tree import check_node, check_payload_size, single_value_type
from lwm2m_core.codec.text import value_node
from lwm2m_core.errors import CodecError
from lwm2m_core.model import ObjectModelRepository, ResourceType
from lwm2m_core.node import LwM2mNode, LwM2mResourceInstance, LwM2mSingleResource
from lwm2m_core.path import LwM2mPath


def _opaque_path(path: LwM2mPath, model: ObjectModelRepository) -> None:
    rtype = single_value_type(path, model, "opaque")
    if rtype is not ResourceType.OPAQUE:
        raise CodecError(
            f"the opaque format is only for Opaque resources, this one is {rtype.value}", path
        )


def encode(node: LwM2mNode, path: LwM2mPath, model: ObjectModelRepository) -> bytes:
    _opaque_path(path, model)
    check_node(node, path, model)
    assert isinstance(node, (LwM2mSingleResource, LwM2mResourceInstance))
    assert isinstance(node.value, bytes)
    return node.value


def decode(payload: bytes, path: LwM2mPath, model: ObjectModelRepository) -> LwM2mNode:
    check_payload_size(payload, path, "opaque")
    _opaque_path(path, model)
    return value_node(path, ResourceType.OPAQUE, bytes(payload))

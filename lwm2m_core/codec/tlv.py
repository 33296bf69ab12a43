"""OMA-TLV (TS Core §7.4.3): LwM2M's compact binary format, content format 11542.

Each entry is a type byte (bits 7-6: object instance 00, resource instance 01, multiple
resource 10, resource with value 11; bit 5: 16-bit id; bits 4-3: length field of 0, 8,
16 or 24 bits; bits 2-0: the length itself when the field is 0 bits), the id, the length
and the value. Values: integers and time in 1, 2, 4 or 8 bytes two's complement, unsigned
in 1, 2, 4 or 8 bytes, floats in 4 or 8 bytes IEEE 754, booleans in one byte 0/1, object
links as two 16-bit ids, strings UTF-8, opaque raw. All big-endian.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from enum import IntEnum

from lwm2m_core.codec._tree import (
    MAX_ENTRIES,
    TreeBuilder,
    check_node,
    check_payload_size,
    valued_resource,
)
from lwm2m_core.errors import CodecError
from lwm2m_core.model import ObjectModelRepository, ResourceType
from lwm2m_core.node import (
    LwM2mMultipleResource,
    LwM2mNode,
    LwM2mObject,
    LwM2mObjectInstance,
    LwM2mResource,
    LwM2mSingleResource,
    ObjectLink,
    Value,
    check_value,
    time_from_seconds,
    time_to_seconds,
)
from lwm2m_core.path import MAX_ID, LwM2mPath


class TlvKind(IntEnum):
    """Bits 7-6 of the type byte."""

    OBJECT_INSTANCE = 0b00
    RESOURCE_INSTANCE = 0b01
    MULTIPLE_RESOURCE = 0b10
    RESOURCE_VALUE = 0b11


_KIND_NAMES = {
    TlvKind.OBJECT_INSTANCE: "object instance",
    TlvKind.RESOURCE_INSTANCE: "resource instance",
    TlvKind.MULTIPLE_RESOURCE: "multiple resource",
    TlvKind.RESOURCE_VALUE: "resource",
}
_ID16_FLAG = 0b0010_0000
_LENGTH_TYPE_SHIFT = 3
_LENGTH_TYPE_MASK = 0b11
_INLINE_LENGTH_MASK = 0b111
_MAX_INLINE_LENGTH = 7
_MAX_ID8 = 0xFF
_MAX_LENGTH = (1 << 24) - 1
#: Integer widths TS Core allows, in bytes.
_INT_WIDTHS = (1, 2, 4, 8)
_FLOAT32_BYTES, _FLOAT64_BYTES = 4, 8
_OBJLNK_BYTES = 4


@dataclass(frozen=True, slots=True)
class Tlv:
    """One decoded entry: ``value`` for leaves, ``children`` for containers."""

    kind: TlvKind
    id: int
    value: bytes = b""
    children: tuple[Tlv, ...] = ()

    @property
    def is_container(self) -> bool:
        return self.kind in (TlvKind.OBJECT_INSTANCE, TlvKind.MULTIPLE_RESOURCE)


# --- bytes <-> Tlv entries -------------------------------------------------------------


def parse_entries(payload: bytes, path: LwM2mPath | None = None) -> list[Tlv]:
    """Split a payload into TLV entries (containers parsed recursively, at most 2 levels)."""
    counter = [0]
    return _parse(memoryview(bytes(payload)), 0, path, counter)


def _parse(data: memoryview, depth: int, path: LwM2mPath | None, counter: list[int]) -> list[Tlv]:
    entries: list[Tlv] = []
    offset = 0
    while offset < len(data):
        start = offset
        type_byte = data[offset]
        offset += 1
        kind = TlvKind(type_byte >> 6)
        id_size = 2 if type_byte & _ID16_FLAG else 1
        length_size = (type_byte >> _LENGTH_TYPE_SHIFT) & _LENGTH_TYPE_MASK
        if offset + id_size + length_size > len(data):
            raise CodecError(f"TLV header at byte {start} is truncated", path)
        entry_id = int.from_bytes(data[offset : offset + id_size], "big")
        offset += id_size
        if length_size:
            length = int.from_bytes(data[offset : offset + length_size], "big")
            offset += length_size
        else:
            length = type_byte & _INLINE_LENGTH_MASK
        if entry_id >= MAX_ID:
            raise CodecError(f"TLV {_KIND_NAMES[kind]} at byte {start} has reserved id", path)
        if offset + length > len(data):
            raise CodecError(
                f"TLV {_KIND_NAMES[kind]} {entry_id} at byte {start} claims {length} bytes "
                f"but only {len(data) - offset} remain",
                path,
            )
        body = data[offset : offset + length]
        offset += length
        counter[0] += 1
        if counter[0] > MAX_ENTRIES:
            raise CodecError(f"more than {MAX_ENTRIES} TLV entries", path)
        if kind in (TlvKind.OBJECT_INSTANCE, TlvKind.MULTIPLE_RESOURCE):
            # Object instance > multiple resource > resource instance: never deeper than 2.
            if depth >= 2 or (depth == 1 and kind is TlvKind.OBJECT_INSTANCE):
                raise CodecError(
                    f"TLV {_KIND_NAMES[kind]} {entry_id} is nested too deeply", path
                )
            children = tuple(_parse(body, depth + 1, path, counter))
            entries.append(Tlv(kind, entry_id, children=children))
        else:
            entries.append(Tlv(kind, entry_id, value=bytes(body)))
    return entries


def serialize_entries(entries: list[Tlv]) -> bytes:
    out = bytearray()
    for entry in entries:
        body = serialize_entries(list(entry.children)) if entry.is_container else entry.value
        out += _header(entry.kind, entry.id, len(body)) + body
    return bytes(out)


def _header(kind: TlvKind, entry_id: int, length: int) -> bytes:
    type_byte = kind << 6
    if entry_id > _MAX_ID8:
        type_byte |= _ID16_FLAG
        id_bytes = entry_id.to_bytes(2, "big")
    else:
        id_bytes = entry_id.to_bytes(1, "big")
    if length <= _MAX_INLINE_LENGTH:
        return bytes([type_byte | length]) + id_bytes
    if length > _MAX_LENGTH:
        raise CodecError(f"TLV value of {length} bytes exceeds the 24-bit length field")
    length_size = 1 if length <= 0xFF else 2 if length <= 0xFFFF else 3
    type_byte |= length_size << _LENGTH_TYPE_SHIFT
    return bytes([type_byte]) + id_bytes + length.to_bytes(length_size, "big")


# --- values ----------------------------------------------------------------------------


def _int_bytes(value: int, signed: bool) -> bytes:
    for width in _INT_WIDTHS:
        try:
            return value.to_bytes(width, "big", signed=signed)
        except OverflowError:
            continue
    raise CodecError(f"integer {value} does not fit in 8 bytes")


def encode_value(value: Value, rtype: ResourceType, path: LwM2mPath) -> bytes:
    """The TLV value bytes of one checked value."""
    if rtype in (ResourceType.STRING, ResourceType.CORELNK):
        assert isinstance(value, str)
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError:
            raise CodecError("text is not encodable as UTF-8 (lone surrogate)", path) from None
    if rtype is ResourceType.INTEGER:
        assert isinstance(value, int)
        return _int_bytes(value, signed=True)
    if rtype is ResourceType.UNSIGNED_INTEGER:
        assert isinstance(value, int)
        return _int_bytes(value, signed=False)
    if rtype is ResourceType.TIME:
        return _int_bytes(time_to_seconds(value), signed=True)  # type: ignore[arg-type]
    if rtype is ResourceType.FLOAT:
        assert isinstance(value, (int, float))
        number = float(value)
        if math.isnan(number):
            raise CodecError("NaN is not a value", path)
        single = struct.pack(">f", number) if abs(number) < 3.5e38 or math.isinf(number) else b""
        if single and struct.unpack(">f", single)[0] == number:
            return single
        return struct.pack(">d", number)
    if rtype is ResourceType.BOOLEAN:
        return b"\x01" if value else b"\x00"
    if rtype is ResourceType.OPAQUE:
        assert isinstance(value, bytes)
        return value
    if rtype is ResourceType.OBJLNK:
        assert isinstance(value, ObjectLink)
        return value.object_id.to_bytes(2, "big") + value.instance_id.to_bytes(2, "big")
    raise CodecError(f"{rtype.value} resources carry no value", path)


def decode_value(raw: bytes, rtype: ResourceType, path: LwM2mPath) -> Value:
    """One value from its TLV bytes, checked against ``rtype``."""

    def bad(expected: str) -> CodecError:
        return CodecError(f"{len(raw)} bytes {raw[:16].hex()} are not {expected}", path)

    if rtype in (ResourceType.STRING, ResourceType.CORELNK):
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CodecError(f"invalid UTF-8 at byte {exc.start} of the value", path) from None
    if rtype in (ResourceType.INTEGER, ResourceType.UNSIGNED_INTEGER, ResourceType.TIME):
        if len(raw) not in _INT_WIDTHS:
            raise bad("an integer of 1, 2, 4 or 8 bytes")
        number = int.from_bytes(raw, "big", signed=rtype is not ResourceType.UNSIGNED_INTEGER)
        if rtype is ResourceType.TIME:
            return time_from_seconds(number)
        return check_value(number, rtype, path)
    if rtype is ResourceType.FLOAT:
        if len(raw) == _FLOAT32_BYTES:
            number_f = float(struct.unpack(">f", raw)[0])
        elif len(raw) == _FLOAT64_BYTES:
            number_f = float(struct.unpack(">d", raw)[0])
        else:
            raise bad("a float of 4 or 8 bytes")
        if math.isnan(number_f):
            raise CodecError("NaN is not a value", path)
        return number_f
    if rtype is ResourceType.BOOLEAN:
        if raw not in (b"\x00", b"\x01"):
            raise bad("a boolean (one byte 0 or 1)")
        return raw == b"\x01"
    if rtype is ResourceType.OPAQUE:
        return raw
    if rtype is ResourceType.OBJLNK:
        if len(raw) != _OBJLNK_BYTES:
            raise bad("an object link of 4 bytes")
        return ObjectLink(int.from_bytes(raw[:2], "big"), int.from_bytes(raw[2:], "big"))
    raise CodecError(f"{rtype.value} resources carry no value", path)


# --- nodes -----------------------------------------------------------------------------


def _resource_entry(
    resource: LwM2mResource, path: LwM2mPath, model: ObjectModelRepository
) -> Tlv:
    rtype = valued_resource(path, model).type
    if isinstance(resource, LwM2mSingleResource):
        return Tlv(TlvKind.RESOURCE_VALUE, resource.id, encode_value(resource.value, rtype, path))
    children = tuple(
        Tlv(TlvKind.RESOURCE_INSTANCE, riid, encode_value(value, rtype, path.child(riid)))
        for riid, value in sorted(resource.instances.items())
    )
    return Tlv(TlvKind.MULTIPLE_RESOURCE, resource.id, children=children)


def _instance_entries(
    instance: LwM2mObjectInstance, path: LwM2mPath, model: ObjectModelRepository
) -> tuple[Tlv, ...]:
    return tuple(
        _resource_entry(resource, path.child(rid), model)
        for rid, resource in sorted(instance.resources.items())
    )


def encode(node: LwM2mNode, path: LwM2mPath, model: ObjectModelRepository) -> bytes:
    """Encode ``node`` as the answer to a request on ``path``.

    An object is a list of object-instance entries; an object instance is its resource
    entries (without an enclosing instance entry, TS Core §7.4.3 example A); a multiple
    resource is one multiple-resource entry.
    """
    check_node(node, path, model)
    entries: list[Tlv]
    if isinstance(node, LwM2mObject):
        entries = [
            Tlv(
                TlvKind.OBJECT_INSTANCE,
                iid,
                children=_instance_entries(inst, path.child(iid), model),
            )
            for iid, inst in sorted(node.instances.items())
        ]
    elif isinstance(node, LwM2mObjectInstance):
        entries = list(_instance_entries(node, path, model))
    elif isinstance(node, (LwM2mSingleResource, LwM2mMultipleResource)):
        entries = [_resource_entry(node, path, model)]
    else:
        rtype = valued_resource(path, model).type
        entries = [Tlv(TlvKind.RESOURCE_INSTANCE, node.id, encode_value(node.value, rtype, path))]
    return serialize_entries(entries)


def decode(payload: bytes, path: LwM2mPath, model: ObjectModelRepository) -> LwM2mNode:
    """Decode a TLV payload answering a request on ``path`` into the node at ``path``."""
    check_payload_size(payload, path, "TLV")
    builder = TreeBuilder(path, model)
    entries = parse_entries(payload, path)
    try:
        if path.is_object:
            _decode_object(entries, path, model, builder)
        elif path.is_object_instance:
            if len(entries) == 1 and entries[0].kind is TlvKind.OBJECT_INSTANCE:
                entry = entries[0]
                if entry.id != path.object_instance_id:
                    raise CodecError(f"object instance entry has id {entry.id}", path)
                entries = list(entry.children)
                builder.add_empty_instance(path)
            _decode_resources(entries, path, builder)
        elif path.is_resource:
            _decode_resource_entries(entries, path, model, builder)
        else:
            if len(entries) != 1 or entries[0].kind is not TlvKind.RESOURCE_INSTANCE:
                raise CodecError("expected exactly one resource instance entry", path)
            _add_leaf(builder, path, entries[0])
    except RecursionError:  # pragma: no cover - nesting is bounded in _parse
        raise CodecError("TLV nesting too deep", path) from None
    return builder.build()


def _decode_object(
    entries: list[Tlv], path: LwM2mPath, model: ObjectModelRepository, builder: TreeBuilder
) -> None:
    obj = model.get_object(path.object_id or 0)
    if entries and all(e.kind is not TlvKind.OBJECT_INSTANCE for e in entries) and not obj.multiple:
        # Some single-instance clients answer a Read on /3 with the resources of /3/0.
        instance_path = path.child(0)
        builder.add_empty_instance(instance_path)
        _decode_resources(entries, instance_path, builder)
        return
    seen: set[int] = set()
    for entry in entries:
        if entry.kind is not TlvKind.OBJECT_INSTANCE:
            raise CodecError(
                f"expected object instance entries, found a {_KIND_NAMES[entry.kind]} "
                f"entry {entry.id}",
                path,
            )
        if entry.id in seen:
            raise CodecError(f"object instance {entry.id} given twice", path)
        seen.add(entry.id)
        instance_path = path.child(entry.id)
        builder.add_empty_instance(instance_path)
        _decode_resources(list(entry.children), instance_path, builder)


def _decode_resources(entries: list[Tlv], path: LwM2mPath, builder: TreeBuilder) -> None:
    seen: set[int] = set()
    for entry in entries:
        if entry.kind not in (TlvKind.RESOURCE_VALUE, TlvKind.MULTIPLE_RESOURCE):
            raise CodecError(
                f"expected resource entries, found a {_KIND_NAMES[entry.kind]} entry {entry.id}",
                path,
            )
        if entry.id in seen:
            raise CodecError(f"resource {entry.id} given twice", path)
        seen.add(entry.id)
        _decode_resource_entries([entry], path.child(entry.id), builder.model, builder)


def _decode_resource_entries(
    entries: list[Tlv], path: LwM2mPath, model: ObjectModelRepository, builder: TreeBuilder
) -> None:
    resource = valued_resource(path, model)
    if not resource.multiple:
        if len(entries) != 1 or entries[0].kind is not TlvKind.RESOURCE_VALUE:
            raise CodecError(f"expected one resource entry for {resource.name}", path)
        entry = entries[0]
        if entry.id != path.resource_id:
            raise CodecError(f"resource entry has id {entry.id}", path)
        _add_leaf(builder, path, entry)
        return
    if len(entries) == 1 and entries[0].kind is TlvKind.MULTIPLE_RESOURCE:
        if entries[0].id != path.resource_id:
            raise CodecError(f"multiple resource entry has id {entries[0].id}", path)
        instances = list(entries[0].children)
    elif all(e.kind is TlvKind.RESOURCE_INSTANCE for e in entries):
        instances = entries  # bare resource instances, as some clients send them
    else:
        raise CodecError(f"expected a multiple resource entry for {resource.name}", path)
    builder.add_empty_multiple_resource(path)
    for entry in instances:
        if entry.kind is not TlvKind.RESOURCE_INSTANCE:
            raise CodecError(
                f"expected resource instance entries, found a {_KIND_NAMES[entry.kind]}", path
            )
        _add_leaf(builder, path.child(entry.id), entry)


def _add_leaf(builder: TreeBuilder, path: LwM2mPath, entry: Tlv) -> None:
    if entry.id != path.ids[-1]:
        raise CodecError(f"entry has id {entry.id}", path)
    rtype = valued_resource(path, builder.model).type
    builder.add(path, decode_value(entry.value, rtype, path))

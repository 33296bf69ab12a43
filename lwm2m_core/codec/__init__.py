"""Content-format codecs (TS Core §7.4): bytes <-> the value tree, checked against the model.

One entry point per direction, dispatching on the CoAP content format::

    payload = encode(node, LwM2mPath.parse("/3/0"), ContentFormat.TLV, model)
    node = decode(payload, LwM2mPath.parse("/3/0"), ContentFormat.SENML_CBOR, model)

SenML formats also carry timestamped values at many paths (Send, Read-Composite,
notifications): :func:`encode_records` / :func:`decode_records`. Legacy content-format
numbers map to their standard codec. Bad input raises :class:`~lwm2m_core.errors.LwM2MError`
subclasses only: ``CodecError`` for the bytes, ``ModelError`` for what the model refuses,
``PathError`` for a malformed path. Whether a resource is readable or writable is not the
codec's business.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from types import ModuleType

from lwm2m_core.codec import jsonform, link, opaque, senml_cbor, senml_json, text, tlv
from lwm2m_core.codec.records import (
    Record,
    node_to_records,
    records_by_instance,
    records_to_node,
)
from lwm2m_core.errors import CodecError
from lwm2m_core.model import ObjectModelRepository
from lwm2m_core.node import LwM2mNode
from lwm2m_core.numbers import ContentFormat
from lwm2m_core.path import LwM2mPath

__all__ = [
    "NODE_FORMATS",
    "RECORD_FORMATS",
    "Record",
    "decode",
    "decode_paths",
    "decode_records",
    "encode",
    "encode_paths",
    "encode_records",
    "jsonform",
    "link",
    "node_to_records",
    "records_by_instance",
    "records_to_node",
    "resolve_format",
]

_NODE_CODECS: dict[ContentFormat, ModuleType] = {
    ContentFormat.TEXT: text,
    ContentFormat.OPAQUE: opaque,
    ContentFormat.TLV: tlv,
    ContentFormat.SENML_JSON: senml_json,
    ContentFormat.SENML_CBOR: senml_cbor,
}
_RECORD_CODECS: dict[ContentFormat, ModuleType] = {
    ContentFormat.SENML_JSON: senml_json,
    ContentFormat.SENML_CBOR: senml_cbor,
}
#: Formats that encode and decode nodes.
NODE_FORMATS = frozenset(_NODE_CODECS)
#: Formats that also carry timestamped records at many paths.
RECORD_FORMATS = frozenset(_RECORD_CODECS)


def resolve_format(content_format: int) -> ContentFormat:
    """The standard :class:`ContentFormat` for a number (legacy numbers mapped)."""
    if isinstance(content_format, bool) or not isinstance(content_format, int):
        raise CodecError(f"content format must be a number, not {content_format!r:.40}")
    try:
        return ContentFormat(content_format).canonical
    except ValueError:
        raise CodecError(f"unknown content format {content_format}") from None


def _codec(content_format: int, table: dict[ContentFormat, ModuleType], what: str) -> ModuleType:
    fmt = resolve_format(content_format)
    codec = table.get(fmt)
    if codec is None:
        raise CodecError(f"content format {fmt.name} ({int(fmt)}) is not supported {what}")
    return codec


def _check_path(path: object) -> LwM2mPath:
    if not isinstance(path, LwM2mPath):
        raise CodecError(f"path must be an LwM2mPath, not {type(path).__name__}")
    return path


def encode(
    node: LwM2mNode, path: LwM2mPath, content_format: int, model: ObjectModelRepository
) -> bytes:
    """Encode ``node``, the value at ``path``, in ``content_format``."""
    encoder: Callable[[LwM2mNode, LwM2mPath, ObjectModelRepository], bytes]
    encoder = _codec(content_format, _NODE_CODECS, "for values").encode
    return encoder(node, _check_path(path), model)


def decode(
    payload: bytes, path: LwM2mPath, content_format: int, model: ObjectModelRepository
) -> LwM2mNode:
    """Decode ``payload``, the value at ``path``, from ``content_format``."""
    decoder: Callable[[bytes, LwM2mPath, ObjectModelRepository], LwM2mNode]
    decoder = _codec(content_format, _NODE_CODECS, "for values").decode
    return decoder(payload, _check_path(path), model)


def encode_records(
    records: Iterable[Record], content_format: int, model: ObjectModelRepository
) -> bytes:
    """Encode timestamped values at many paths (SenML-JSON or SenML-CBOR)."""
    encoder: Callable[[Iterable[Record], ObjectModelRepository], bytes]
    encoder = _codec(content_format, _RECORD_CODECS, "for records").encode_records
    return encoder(records, model)


def decode_records(
    payload: bytes,
    content_format: int,
    model: ObjectModelRepository,
    now: datetime | None = None,
) -> list[Record]:
    """Decode timestamped values at many paths; ``now`` anchors relative SenML times."""
    decoder: Callable[[bytes, ObjectModelRepository, datetime | None], list[Record]]
    decoder = _codec(content_format, _RECORD_CODECS, "for records").decode_records
    return decoder(payload, model, now)


def encode_paths(paths: Iterable[LwM2mPath], content_format: int) -> bytes:
    """The body of a Read-Composite or Observe-Composite request: names only."""
    encoder: Callable[[Iterable[LwM2mPath]], bytes]
    encoder = _codec(content_format, _RECORD_CODECS, "for composite requests").encode_paths
    return encoder(paths)


def decode_paths(payload: bytes, content_format: int) -> list[LwM2mPath]:
    decoder: Callable[[bytes], list[LwM2mPath]]
    decoder = _codec(content_format, _RECORD_CODECS, "for composite requests").decode_paths
    return decoder(payload)

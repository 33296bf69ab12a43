"""SenML-CBOR (RFC 8428 §6, TS Core §7.4.5), content format 112.

Labels travel as the integers of RFC 8428 Table 4 (``bn`` -2, ``bt`` -3, ``n`` 0, ``v`` 2,
``vs`` 3, ``vb`` 4, ``t`` 6, ``vd`` 8, ``bver`` -1); ``vlo`` has no number and stays text.
Text labels are accepted on input too. Opaque values are CBOR byte strings.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import cbor2

from lwm2m_core.codec import _senml
from lwm2m_core.codec._tree import MAX_ENTRIES, check_payload_size
from lwm2m_core.codec.records import Record
from lwm2m_core.errors import CodecError
from lwm2m_core.model import ObjectModelRepository
from lwm2m_core.node import LwM2mNode
from lwm2m_core.path import LwM2mPath

FORMAT = "SenML-CBOR"

LABEL_NUMBERS: dict[str, int] = {
    _senml.BASE_VERSION: -1,
    _senml.BASE_NAME: -2,
    _senml.BASE_TIME: -3,
    _senml.NAME: 0,
    _senml.VALUE: 2,
    _senml.STRING_VALUE: 3,
    _senml.BOOLEAN_VALUE: 4,
    _senml.TIME: 6,
    _senml.DATA_VALUE: 8,
}
_LABEL_NAMES = {number: name for name, number in LABEL_NUMBERS.items()}


def _encode_data(value: bytes) -> bytes:
    return value


def _decode_data(raw: object, where: str) -> bytes:
    if not isinstance(raw, bytes):
        raise CodecError(f"{where}: 'vd' must be a byte string")
    return raw


def _load(payload: bytes, path: LwM2mPath | None) -> object:
    check_payload_size(payload, path, FORMAT)
    try:
        data = cbor2.loads(bytes(payload))
    except RecursionError:
        raise CodecError(f"{FORMAT}: nesting too deep", path) from None
    except Exception as exc:  # cbor2 raises several kinds on hostile input; wrap them all
        raise CodecError(f"{FORMAT}: not valid CBOR: {exc}", path) from None
    if not isinstance(data, list):
        raise CodecError(f"{FORMAT} payload must be an array of records", path)
    if len(data) > MAX_ENTRIES:
        raise CodecError(f"{FORMAT} payload has more than {MAX_ENTRIES} records", path)
    records: list[object] = []
    for index, raw in enumerate(data):
        if not isinstance(raw, dict):
            raise CodecError(f"{FORMAT} record {index} is not a map", path)
        named: dict[str, Any] = {}
        for label, value in raw.items():
            if isinstance(label, int) and not isinstance(label, bool):
                name = _LABEL_NAMES.get(label)
                if name is None:
                    if label < 0:  # RFC 8428 §12.2: negative labels are base fields
                        raise CodecError(f"{FORMAT} record {index}: unknown base label {label}")
                    continue
            elif isinstance(label, str):
                name = label
            else:
                raise CodecError(f"{FORMAT} record {index}: label {label!r:.40} is not valid")
            if name in named:
                raise CodecError(f"{FORMAT} record {index}: label {name!r} given twice")
            named[name] = value
        records.append(named)
    return records


def _dump(raw_records: list[_senml.RawRecord]) -> bytes:
    _senml.check_float_values(raw_records, FORMAT)
    numbered = [
        {LABEL_NUMBERS.get(label, label): value for label, value in raw.items()}
        for raw in raw_records
    ]
    try:
        return bytes(cbor2.dumps(numbered))
    except (cbor2.CBOREncodeError, ValueError, TypeError) as exc:
        raise CodecError(f"{FORMAT}: cannot encode: {exc}") from None


def encode(node: LwM2mNode, path: LwM2mPath, model: ObjectModelRepository) -> bytes:
    return _dump(_senml.encode_node(node, path, model, _encode_data))


def decode(payload: bytes, path: LwM2mPath, model: ObjectModelRepository) -> LwM2mNode:
    return _senml.decode_node(_load(payload, path), path, model, _decode_data, FORMAT)


def encode_records(records: Iterable[Record], model: ObjectModelRepository) -> bytes:
    return _dump(_senml.encode_records(records, model, _encode_data))


def decode_records(
    payload: bytes, model: ObjectModelRepository, now: datetime | None = None
) -> list[Record]:
    return _senml.decode_records(_load(payload, None), model, _decode_data, FORMAT, now)


def encode_paths(paths: Iterable[LwM2mPath]) -> bytes:
    return _dump(_senml.encode_paths(paths))


def decode_paths(payload: bytes) -> list[LwM2mPath]:
    return _senml.decode_paths(_load(payload, None), FORMAT)

"""SenML-JSON (RFC 8428 §5, TS Core §7.4.4), content format 110.

Opaque values (``vd``) are base64url without padding as RFC 8428 says; standard base64 and
padding are accepted on input because some clients send them.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable
from datetime import datetime

from lwm2m_core.codec import _senml
from lwm2m_core.codec._tree import check_payload_size
from lwm2m_core.codec.records import Record
from lwm2m_core.errors import CodecError
from lwm2m_core.model import ObjectModelRepository
from lwm2m_core.node import LwM2mNode
from lwm2m_core.path import LwM2mPath

FORMAT = "SenML-JSON"
_BASE64_ANY = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")


def _encode_data(value: bytes) -> str:
    return base64.urlsafe_b64encode(value).rstrip(b"=").decode("ascii")


def _decode_data(raw: object, where: str) -> bytes:
    if not isinstance(raw, str) or not _BASE64_ANY.fullmatch(raw):
        raise CodecError(f"{where}: 'vd' must be base64url text")
    text = raw.rstrip("=").replace("+", "-").replace("/", "_")
    if len(text) % 4 == 1:
        raise CodecError(f"{where}: 'vd' has a bad base64 length")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise CodecError(f"{where}: 'vd' is not valid base64url") from None


def _unique_labels(pairs: list[tuple[str, object]]) -> dict[str, object]:
    record = dict(pairs)
    if len(record) != len(pairs):
        raise CodecError(f"{FORMAT}: a record gives a label twice")
    return record


def _reject_constant(name: str) -> object:
    raise CodecError(f"{FORMAT}: {name} is not a JSON number")


def _load(payload: bytes, path: LwM2mPath | None) -> object:
    check_payload_size(payload, path, FORMAT)
    try:
        text = bytes(payload).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CodecError(f"{FORMAT}: invalid UTF-8 at byte {exc.start}", path) from None
    try:
        return json.loads(
            text, parse_constant=_reject_constant, object_pairs_hook=_unique_labels
        )
    except RecursionError:
        raise CodecError(f"{FORMAT}: nesting too deep", path) from None
    except ValueError as exc:  # JSONDecodeError, and int() past its digit limit
        raise CodecError(f"{FORMAT}: not valid JSON: {exc}", path) from None


def _dump(raw_records: list[_senml.RawRecord]) -> bytes:
    _senml.check_float_values(raw_records, FORMAT)
    try:
        text = json.dumps(raw_records, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        return text.encode("utf-8")
    except (ValueError, UnicodeEncodeError) as exc:
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

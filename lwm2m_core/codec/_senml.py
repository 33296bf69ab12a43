"""What SenML-JSON and SenML-CBOR share (RFC 8428 with TS Core §7.4.4-7.4.5).

Both formats are a list of records with the same labels; only the outer syntax and the
data value (base64url text in JSON, a byte string in CBOR) differ. Here raw records (dicts
keyed by text label) are resolved into :class:`Record` values against the model, and
records are turned back into raw ones. The LwM2M rules: the name is ``bn`` + ``n`` and
must be an LwM2M path; the time is ``bt`` + ``t``; the value is ``v`` (numbers and time),
``vs`` (string, corelnk), ``vb`` (boolean), ``vd`` (opaque) or ``vlo`` (objlnk ``O:I``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from lwm2m_core.codec._tree import MAX_ENTRIES, TreeBuilder, check_node, flatten, valued_resource
from lwm2m_core.codec.records import Record, check_records
from lwm2m_core.errors import CodecError, LwM2MError
from lwm2m_core.model import ObjectModelRepository, ResourceType
from lwm2m_core.node import LwM2mNode, ObjectLink, Value, check_value, time_from_seconds
from lwm2m_core.path import LwM2mPath

BASE_NAME, BASE_TIME, BASE_VERSION = "bn", "bt", "bver"
NAME, TIME = "n", "t"
VALUE, STRING_VALUE, BOOLEAN_VALUE, DATA_VALUE, OBJLNK_VALUE = "v", "vs", "vb", "vd", "vlo"
VALUE_LABELS = (VALUE, STRING_VALUE, BOOLEAN_VALUE, DATA_VALUE, OBJLNK_VALUE)

#: RFC 8428 §4.5.3: resolved times below 2**28 are relative to now.
RELATIVE_TIME_LIMIT = 2**28
#: Integers sent as a JSON/CBOR float must stay exact to be taken as integers.
_EXACT_FLOAT_LIMIT = 2**53

_LABEL_FOR_TYPE = {
    ResourceType.STRING: STRING_VALUE,
    ResourceType.CORELNK: STRING_VALUE,
    ResourceType.INTEGER: VALUE,
    ResourceType.UNSIGNED_INTEGER: VALUE,
    ResourceType.FLOAT: VALUE,
    ResourceType.TIME: VALUE,
    ResourceType.BOOLEAN: BOOLEAN_VALUE,
    ResourceType.OPAQUE: DATA_VALUE,
    ResourceType.OBJLNK: OBJLNK_VALUE,
}

RawRecord = dict[str, Any]


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _finite(value: object, label: str, where: str) -> float | int:
    if not _is_number(value):
        raise CodecError(f"{where}: '{label}' must be a number, not {type(value).__name__}")
    assert isinstance(value, (int, float))
    if isinstance(value, float) and not math.isfinite(value):
        raise CodecError(f"{where}: '{label}' must be a finite number")
    return value


def _seconds_value(value: object, label: str, where: str) -> float:
    """A time label's value in seconds, as float (SenML times may be fractional)."""
    try:
        return float(_finite(value, label, where))
    except OverflowError:
        raise CodecError(f"{where}: '{label}' is out of range") from None


def _time(seconds: float | int, where: str, now: datetime | None) -> datetime:
    if abs(seconds) < RELATIVE_TIME_LIMIT:
        base = now or datetime.now(UTC)
        try:
            return base + timedelta(seconds=seconds)
        except OverflowError:
            raise CodecError(f"{where}: time {seconds} is out of range") from None
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise CodecError(f"{where}: time {seconds} is out of range") from None


def _integral(number: float | int, where: str) -> int:
    if isinstance(number, float):
        if not number.is_integer() or abs(number) > _EXACT_FLOAT_LIMIT:
            raise CodecError(f"{where}: {number} is not an integer")
        return int(number)
    return number


def _typed_value(
    label: str, raw: object, rtype: ResourceType, path: LwM2mPath, where: str,
    decode_data: Callable[[object, str], bytes],
) -> Value:
    expected = _LABEL_FOR_TYPE.get(rtype)
    if expected is None:
        raise CodecError(f"{where}: {rtype.value} resources carry no value", path)
    if label != expected:
        raise CodecError(
            f"{where}: {rtype.value} resources take '{expected}', not '{label}'", path
        )
    if label == VALUE:
        number = _finite(raw, label, where)
        if rtype is ResourceType.FLOAT:
            return check_value(number, rtype, path)
        integer = _integral(number, where)
        if rtype is ResourceType.TIME:
            return time_from_seconds(integer)
        return check_value(integer, rtype, path)
    if label == DATA_VALUE:
        return decode_data(raw, where)
    if label == OBJLNK_VALUE:
        if not isinstance(raw, str):
            raise CodecError(f"{where}: 'vlo' must be text OBJECT:INSTANCE", path)
        return ObjectLink.parse(raw)
    return check_value(raw, rtype, path)


def resolve(
    raw_records: object,
    model: ObjectModelRepository | None,
    decode_data: Callable[[object, str], bytes],
    fmt: str,
    now: datetime | None = None,
    values_required: bool = True,
) -> list[tuple[LwM2mPath, str | None, Any, datetime | None]]:
    """Resolve base names and times; returns (path, value label, raw value, time) tuples."""
    if not isinstance(raw_records, list):
        raise CodecError(f"{fmt} payload must be an array of records")
    if len(raw_records) > MAX_ENTRIES:
        raise CodecError(f"{fmt} payload has more than {MAX_ENTRIES} records")
    base_name, base_time, has_base_time = "", 0.0, False
    resolved: list[tuple[LwM2mPath, str | None, Any, datetime | None]] = []
    for index, raw in enumerate(raw_records):
        where = f"{fmt} record {index}"
        if not isinstance(raw, dict):
            raise CodecError(f"{where} is not a map")
        for label in raw:
            if not isinstance(label, str):
                raise CodecError(f"{where}: unknown label {label!r:.40}")
            if label.endswith("_"):
                raise CodecError(f"{where}: label {label!r:.40} must be understood, and is not")
        if BASE_NAME in raw:
            if not isinstance(raw[BASE_NAME], str):
                raise CodecError(f"{where}: 'bn' must be text")
            base_name = raw[BASE_NAME]
        if BASE_TIME in raw:
            base_time = _seconds_value(raw[BASE_TIME], BASE_TIME, where)
            has_base_time = True
        name = raw.get(NAME, "")
        if not isinstance(name, str):
            raise CodecError(f"{where}: 'n' must be text")
        full_name = base_name + name
        try:
            path = LwM2mPath.parse(full_name) if full_name else None
        except LwM2MError as exc:
            raise CodecError(f"{where}: name {full_name!r:.80}: {exc.message}") from None
        if path is None:
            raise CodecError(f"{where} has no name")
        time = None
        if TIME in raw or has_base_time:
            offset = _seconds_value(raw.get(TIME, 0), TIME, where)
            time = _time(base_time + offset, where, now)
        labels = [label for label in VALUE_LABELS if label in raw]
        if len(labels) > 1:
            raise CodecError(f"{where} has more than one value ({', '.join(labels)})", path)
        if not labels:
            if values_required:
                raise CodecError(f"{where} has no value", path)
            resolved.append((path, None, None, time))
            continue
        resolved.append((path, labels[0], raw[labels[0]], time))
    return resolved


def decode_records(
    raw_records: object,
    model: ObjectModelRepository,
    decode_data: Callable[[object, str], bytes],
    fmt: str,
    now: datetime | None = None,
) -> list[Record]:
    records = []
    for index, (path, label, raw, time) in enumerate(
        resolve(raw_records, model, decode_data, fmt, now)
    ):
        where = f"{fmt} record {index}"
        if path.depth < 3:
            raise CodecError(f"{where}: a value needs a resource path", path)
        assert label is not None
        resource = valued_resource(path, model)
        if path.is_resource and resource.multiple:
            raise CodecError(
                f"{where}: resource {resource.name} is multiple-instance; "
                "name a resource instance",
                path,
            )
        value = _typed_value(label, raw, resource.type, path, where, decode_data)
        records.append(Record(path, value, time))
    return records


def decode_node(
    raw_records: object,
    path: LwM2mPath,
    model: ObjectModelRepository,
    decode_data: Callable[[object, str], bytes],
    fmt: str,
) -> LwM2mNode:
    builder = TreeBuilder(path, model)
    for record in decode_records(raw_records, model, decode_data, fmt):
        builder.add(record.path, record.value)
    return builder.build()


def decode_paths(raw_records: object, fmt: str) -> list[LwM2mPath]:
    """The names of a Read-Composite / Observe-Composite request body (no values)."""
    paths = []
    for path, label, _raw, _time in resolve(
        raw_records, None, _no_data, fmt, values_required=False
    ):
        if label is not None:
            raise CodecError(f"{fmt}: a composite request names paths, it carries no value", path)
        paths.append(path)
    return paths


def _no_data(raw: object, where: str) -> bytes:  # pragma: no cover - never called
    raise CodecError(f"{where}: unexpected data value")


def _raw_value(
    value: Value, rtype: ResourceType, encode_data: Callable[[bytes], object]
) -> tuple[str, object]:
    label = _LABEL_FOR_TYPE[rtype]
    if rtype is ResourceType.TIME:
        assert isinstance(value, datetime)
        return label, int(value.timestamp())
    if rtype is ResourceType.FLOAT:
        assert isinstance(value, (int, float))
        return label, float(value)
    if rtype is ResourceType.OPAQUE:
        assert isinstance(value, bytes)
        return label, encode_data(value)
    if rtype is ResourceType.OBJLNK:
        return label, str(value)
    return label, value


def _seconds(time: datetime) -> int | float:
    seconds = time.timestamp()
    return int(seconds) if seconds.is_integer() else seconds


def encode_node(
    node: LwM2mNode,
    path: LwM2mPath,
    model: ObjectModelRepository,
    encode_data: Callable[[bytes], object],
) -> list[RawRecord]:
    """Raw records for a Read answer: ``bn`` is the request path, ``n`` the rest."""
    check_node(node, path, model)
    leaves = flatten(node, path)
    base = str(path)
    raw_records = []
    for index, (leaf_path, value) in enumerate(leaves):
        raw: RawRecord = {}
        leaf = str(leaf_path)
        if leaf == base:
            if index == 0:
                raw[BASE_NAME] = base
        else:
            if index == 0:
                raw[BASE_NAME] = base + "/"
            raw[NAME] = leaf[len(base) + 1 :]
        rtype = valued_resource(leaf_path, model).type
        label, raw_value = _raw_value(value, rtype, encode_data)
        raw[label] = raw_value
        raw_records.append(raw)
    return raw_records


def encode_records(
    records: Iterable[Record], model: ObjectModelRepository, encode_data: Callable[[bytes], object]
) -> list[RawRecord]:
    """Raw records for Send / composite answers: full path in ``n``, absolute ``t``."""
    raw_records = []
    for record in check_records(records, model):
        raw: RawRecord = {NAME: str(record.path)}
        if record.time is not None:
            raw[TIME] = _seconds(record.time)
        rtype = valued_resource(record.path, model).type
        label, raw_value = _raw_value(record.value, rtype, encode_data)
        raw[label] = raw_value
        raw_records.append(raw)
    return raw_records


def encode_paths(paths: Iterable[LwM2mPath]) -> list[RawRecord]:
    return [{NAME: str(path)} for path in paths]


def check_float_values(raw_records: list[RawRecord], fmt: str) -> None:
    """Refuse NaN and infinities: JSON cannot carry them and SenML readers choke on them."""
    for raw in raw_records:
        value = raw.get(VALUE)
        if isinstance(value, float) and not math.isfinite(value):
            raise CodecError(f"{fmt} cannot carry the float {value}", raw.get(NAME))

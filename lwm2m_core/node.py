"""The LwM2M value tree (TS Core §7.4): objects, instances, resources, resource instances.

Python types per :class:`ResourceType`: STRING ``str``, INTEGER ``int`` (64-bit signed),
UNSIGNED_INTEGER ``int`` (64-bit, >= 0), FLOAT ``float``, BOOLEAN ``bool``, OPAQUE
``bytes``, TIME ``datetime`` (UTC, whole seconds), OBJLNK :class:`ObjectLink`, CORELNK
``str``. :func:`check_value` enforces this, so codecs and callers never guess.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from lwm2m_core.errors import ModelError
from lwm2m_core.model import ResourceModel, ResourceType
from lwm2m_core.path import MAX_ID, LwM2mPath

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_DECIMAL_ID = re.compile(r"[0-9]{1,5}")
UINT64_MAX = 2**64 - 1


@dataclass(frozen=True, order=True, slots=True)
class ObjectLink:
    """An Objlnk value: ``object_id:instance_id``; 65535:65535 is the null link."""

    object_id: int
    instance_id: int

    def __post_init__(self) -> None:
        for value in (self.object_id, self.instance_id):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ID:
                raise ModelError(f"object link id {value!r} is out of range 0..{MAX_ID}")

    @classmethod
    def parse(cls, text: str) -> ObjectLink:
        left, sep, right = text.partition(":")
        if not sep or not _DECIMAL_ID.fullmatch(left) or not _DECIMAL_ID.fullmatch(right):
            raise ModelError(f"object link {text!r} is not of the form OBJECT:INSTANCE")
        return cls(int(left), int(right))

    def __str__(self) -> str:
        return f"{self.object_id}:{self.instance_id}"


Value = str | int | float | bool | bytes | datetime | ObjectLink


def check_value(value: object, rtype: ResourceType, path: LwM2mPath | None = None) -> Value:
    """Return ``value`` if it is a valid Python value for ``rtype``, else raise ModelError."""
    def bad(why: str) -> ModelError:
        return ModelError(f"{why} for a {rtype.value} resource (got {value!r:.60})", path)

    if rtype is ResourceType.STRING or rtype is ResourceType.CORELNK:
        if not isinstance(value, str):
            raise bad("expected text")
        return value
    if rtype is ResourceType.INTEGER:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("expected an integer")
        if not INT64_MIN <= value <= INT64_MAX:
            raise bad("integer out of 64-bit range")
        return value
    if rtype is ResourceType.UNSIGNED_INTEGER:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("expected an unsigned integer")
        if not 0 <= value <= UINT64_MAX:
            raise bad("unsigned integer out of range 0..2^64-1")
        return value
    if rtype is ResourceType.FLOAT:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("expected a number")
        try:
            return float(value)
        except OverflowError:
            raise bad("number out of the float range") from None
    if rtype is ResourceType.BOOLEAN:
        if not isinstance(value, bool):
            raise bad("expected true or false")
        return value
    if rtype is ResourceType.OPAQUE:
        if not isinstance(value, (bytes, bytearray)):
            raise bad("expected bytes")
        return bytes(value)
    if rtype is ResourceType.TIME:
        if not isinstance(value, datetime):
            raise bad("expected a datetime")
        if value.tzinfo is None:
            raise bad("expected a timezone-aware datetime")
        return value.astimezone(UTC)
    if rtype is ResourceType.OBJLNK:
        if not isinstance(value, ObjectLink):
            raise bad("expected an object link")
        return value
    raise bad("this resource carries no value")


def check_in_range(value: Value, resource: ResourceModel, path: LwM2mPath | None = None) -> None:
    """Raise ModelError if a numeric value lies outside the model's RangeEnumeration."""
    bounds = resource.numeric_range()
    if bounds is None or not isinstance(value, (int, float)) or isinstance(value, bool):
        return
    low, high = bounds
    if isinstance(value, float) and math.isnan(value):
        raise ModelError(f"{resource.name}: NaN is outside {resource.range_enumeration}", path)
    if resource.type is ResourceType.STRING:
        return
    if not low <= value <= high:
        raise ModelError(f"{resource.name}: {value} is outside {resource.range_enumeration}", path)


def time_from_seconds(seconds: int | float) -> datetime:
    """A TIME value from Unix seconds, raising ModelError if out of datetime's range."""
    try:
        return datetime.fromtimestamp(int(seconds), UTC)
    except (OverflowError, OSError, ValueError):
        raise ModelError(f"time {seconds!r} is out of range") from None


def time_to_seconds(value: datetime) -> int:
    return int(value.timestamp())


@dataclass(frozen=True, slots=True)
class LwM2mResourceInstance:
    """One instance of a multiple resource, addressed ``/O/I/R/RI``."""

    id: int
    type: ResourceType
    value: Value


@dataclass(frozen=True, slots=True)
class LwM2mSingleResource:
    id: int
    type: ResourceType
    value: Value


@dataclass(frozen=True, slots=True)
class LwM2mMultipleResource:
    id: int
    type: ResourceType
    instances: dict[int, Value] = field(default_factory=dict)


LwM2mResource = LwM2mSingleResource | LwM2mMultipleResource


@dataclass(frozen=True, slots=True)
class LwM2mObjectInstance:
    id: int
    resources: dict[int, LwM2mResource] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LwM2mObject:
    id: int
    instances: dict[int, LwM2mObjectInstance] = field(default_factory=dict)


LwM2mNode = (
    LwM2mObject
    | LwM2mObjectInstance
    | LwM2mSingleResource
    | LwM2mMultipleResource
    | LwM2mResourceInstance
)

"""text/plain (TS Core §7.4.1): one resource or resource instance value as UTF-8 text.

Booleans are ``0``/``1``, time is integer Unix seconds, opaque is base64 (RFC 4648 with
padding), an object link is ``O:I``. Numbers are plain decimal: no spaces, no ``+``, no
``NaN`` or ``Infinity``.
"""

from __future__ import annotations

import base64
import binascii
import math
import re

from lwm2m_core.codec._tree import check_node, check_payload_size, single_value_type
from lwm2m_core.errors import CodecError
from lwm2m_core.model import ObjectModelRepository, ResourceType
from lwm2m_core.node import (
    LwM2mNode,
    LwM2mResourceInstance,
    LwM2mSingleResource,
    ObjectLink,
    Value,
    check_value,
    time_from_seconds,
    time_to_seconds,
)
from lwm2m_core.path import LwM2mPath

_INTEGER = re.compile(r"-?[0-9]{1,20}")
_UNSIGNED = re.compile(r"[0-9]{1,20}")
_FLOAT = re.compile(r"-?[0-9]{1,400}(\.[0-9]{1,400})?([eE][-+]?[0-9]{1,4})?")
_OBJLNK = re.compile(r"[0-9]{1,5}:[0-9]{1,5}")
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


def value_node(path: LwM2mPath, rtype: ResourceType, value: Value) -> LwM2mNode:
    if path.is_resource_instance:
        return LwM2mResourceInstance(path.ids[-1], rtype, value)
    return LwM2mSingleResource(path.ids[-1], rtype, value)


def format_value(value: Value, rtype: ResourceType, path: LwM2mPath) -> str:
    """The text/plain form of one checked value."""
    if rtype is ResourceType.BOOLEAN:
        return "1" if value else "0"
    if rtype is ResourceType.OPAQUE:
        assert isinstance(value, bytes)
        return base64.b64encode(value).decode("ascii")
    if rtype is ResourceType.TIME:
        return str(time_to_seconds(value))  # type: ignore[arg-type]
    if rtype is ResourceType.FLOAT:
        assert isinstance(value, (int, float))
        number = float(value)  # the model accepts an int for a Float resource
        if not math.isfinite(number):
            raise CodecError(f"{number} cannot be written as text", path)
        return repr(number)
    return str(value)


def parse_value(text: str, rtype: ResourceType, path: LwM2mPath) -> Value:
    """Parse the text/plain form of one value of type ``rtype``."""

    def bad(expected: str) -> CodecError:
        return CodecError(f"{text!r:.60} is not {expected}", path)

    if rtype in (ResourceType.STRING, ResourceType.CORELNK):
        return text
    if rtype is ResourceType.INTEGER:
        if not _INTEGER.fullmatch(text):
            raise bad("a decimal integer")
        return check_value(int(text), rtype, path)
    if rtype is ResourceType.UNSIGNED_INTEGER:
        if not _UNSIGNED.fullmatch(text):
            raise bad("an unsigned decimal integer")
        return check_value(int(text), rtype, path)
    if rtype is ResourceType.FLOAT:
        if not _FLOAT.fullmatch(text):
            raise bad("a decimal number")
        number = float(text)
        if not math.isfinite(number):
            raise bad("a finite number")
        return number
    if rtype is ResourceType.BOOLEAN:
        if text not in ("0", "1"):
            raise bad("a boolean (0 or 1)")
        return text == "1"
    if rtype is ResourceType.TIME:
        if not _INTEGER.fullmatch(text):
            raise bad("a time in integer seconds")
        return time_from_seconds(int(text))
    if rtype is ResourceType.OPAQUE:
        if len(text) % 4 or not _BASE64.fullmatch(text):
            raise bad("base64")
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise bad("base64") from None
    if rtype is ResourceType.OBJLNK:
        if not _OBJLNK.fullmatch(text):
            raise bad("an object link OBJECT:INSTANCE")
        return ObjectLink.parse(text)
    raise CodecError(f"{rtype.value} resources carry no value", path)


def encode(node: LwM2mNode, path: LwM2mPath, model: ObjectModelRepository) -> bytes:
    rtype = single_value_type(path, model, "text/plain")
    check_node(node, path, model)
    assert isinstance(node, (LwM2mSingleResource, LwM2mResourceInstance))
    try:
        return format_value(node.value, rtype, path).encode("utf-8")
    except UnicodeEncodeError:
        raise CodecError("text is not encodable as UTF-8 (lone surrogate)", path) from None


def decode(payload: bytes, path: LwM2mPath, model: ObjectModelRepository) -> LwM2mNode:
    check_payload_size(payload, path, "text/plain")
    rtype = single_value_type(path, model, "text/plain")
    try:
        text = bytes(payload).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CodecError(f"invalid UTF-8 at byte {exc.start}", path) from None
    return value_node(path, rtype, parse_value(text, rtype, path))

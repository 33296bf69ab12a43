"""Content negotiation over the core's codecs: which format to ask a terminal for.

The server never encodes or decodes by itself: everything goes through
:mod:`lwm2m_core.codec` and :mod:`lwm2m_core.link`; this module only chooses formats.
"""

from __future__ import annotations

from datetime import datetime

from lwm2m_core import codec, link
from lwm2m_core.codec.records import Record
from lwm2m_core.errors import CodecError
from lwm2m_core.model import ObjectModelRepository
from lwm2m_core.node import LwM2mNode
from lwm2m_core.numbers import ContentFormat
from lwm2m_core.path import LwM2mPath

#: Formats that carry several records with time (Send, composite, timestamped notify).
RECORD_FORMATS = (ContentFormat.SENML_CBOR, ContentFormat.SENML_JSON)


def to_content_format(number: int | None) -> ContentFormat | None:
    if number is None:
        return None
    try:
        return ContentFormat(number)
    except ValueError:
        raise CodecError(f"content format {number} is not one the server understands") from None


def preferred_format(lwm2m_version: str, announced: int | None, path: LwM2mPath) -> ContentFormat:
    """The format to request when the caller did not choose one (TS Core §7.2).

    A 1.1 client must support SenML-CBOR... in practice not all do, so the format the
    client announced with ``ct=`` on its root link wins; then SenML-CBOR for 1.1 and later,
    TLV for 1.0 (the one multi-value format every 1.0 client has).
    """
    if announced is not None:
        try:
            fmt = ContentFormat(announced).canonical
        except ValueError:
            fmt = None
        if fmt in (ContentFormat.SENML_CBOR, ContentFormat.SENML_JSON, ContentFormat.TLV):
            return fmt
    if lwm2m_version.startswith("1.0"):
        return ContentFormat.TLV
    return ContentFormat.SENML_CBOR


def encode(
    node: LwM2mNode, path: LwM2mPath, fmt: ContentFormat, model: ObjectModelRepository
) -> bytes:
    return codec.encode(node, path, fmt.canonical, model)


def decode(
    payload: bytes, path: LwM2mPath, fmt: ContentFormat, model: ObjectModelRepository
) -> LwM2mNode:
    return codec.decode(payload, path, fmt.canonical, model)


def decode_records(
    payload: bytes, fmt: ContentFormat, model: ObjectModelRepository, now: datetime | None = None
) -> list[Record]:
    if fmt.canonical not in RECORD_FORMATS:
        raise CodecError(f"{fmt.name} carries no records; use SenML-CBOR or SenML-JSON")
    return codec.decode_records(payload, fmt.canonical, model)


def parse_registration(payload: bytes) -> link.RegistrationObjects:
    return link.parse_registration(payload)


def parse_links(payload: bytes) -> list[link.Link]:
    return link.parse_links(payload)

"""Registries the LwM2M core needs, as enums, so no bare number appears elsewhere.

Content-format numbers are from the IANA CoAP Content-Formats registry as referenced by
LwM2M 1.1 TS Core §7.2 (and the pre-standard numbers LwM2M 1.0 peers still send).
CoAP codes are RFC 7252 §12.1; they are mirrored here so the core stays free of aiocoap.
"""

from __future__ import annotations

from enum import IntEnum


class ContentFormat(IntEnum):
    """CoAP Content-Format numbers used by LwM2M (TS Core §7.2)."""

    TEXT = 0
    LINK = 40
    OPAQUE = 42
    CBOR = 60
    SENML_JSON = 110
    SENML_CBOR = 112
    TLV = 11542
    LWM2M_JSON = 11543
    LWM2M_CBOR = 11544
    # Pre-standard numbers from LwM2M 1.0 drafts; still sent by e.g. lwm2m-node-lib.
    LEGACY_TEXT = 1541
    LEGACY_TLV = 1542
    LEGACY_JSON = 1543
    LEGACY_OPAQUE = 1544

    @property
    def canonical(self) -> ContentFormat:
        """The standard number for a legacy one (LEGACY_TLV -> TLV), else itself."""
        return _LEGACY_TO_STANDARD.get(self, self)


_LEGACY_TO_STANDARD = {
    ContentFormat.LEGACY_TEXT: ContentFormat.TEXT,
    ContentFormat.LEGACY_TLV: ContentFormat.TLV,
    ContentFormat.LEGACY_JSON: ContentFormat.LWM2M_JSON,
    ContentFormat.LEGACY_OPAQUE: ContentFormat.OPAQUE,
}

#: Names accepted on the command line and in the REST API.
FORMAT_NAMES: dict[str, ContentFormat] = {
    "text": ContentFormat.TEXT,
    "opaque": ContentFormat.OPAQUE,
    "link": ContentFormat.LINK,
    "tlv": ContentFormat.TLV,
    "senml-json": ContentFormat.SENML_JSON,
    "senml-cbor": ContentFormat.SENML_CBOR,
}


class CoapCode(IntEnum):
    """CoAP method and response codes (RFC 7252 §12.1), as class << 5 | detail."""

    EMPTY = 0
    GET = 1
    POST = 2
    PUT = 3
    DELETE = 4
    FETCH = 5
    PATCH = 6
    iPATCH = 7

    CREATED = 65  # 2.01
    DELETED = 66  # 2.02
    VALID = 67  # 2.03
    CHANGED = 68  # 2.04
    CONTENT = 69  # 2.05
    CONTINUE = 95  # 2.31
    BAD_REQUEST = 128  # 4.00
    UNAUTHORIZED = 129  # 4.01
    BAD_OPTION = 130  # 4.02
    FORBIDDEN = 131  # 4.03
    NOT_FOUND = 132  # 4.04
    METHOD_NOT_ALLOWED = 133  # 4.05
    NOT_ACCEPTABLE = 134  # 4.06
    REQUEST_ENTITY_INCOMPLETE = 136  # 4.08
    PRECONDITION_FAILED = 140  # 4.12
    REQUEST_ENTITY_TOO_LARGE = 141  # 4.13
    UNSUPPORTED_CONTENT_FORMAT = 143  # 4.15
    TOO_MANY_REQUESTS = 157  # 4.29
    INTERNAL_SERVER_ERROR = 160  # 5.00
    NOT_IMPLEMENTED = 161  # 5.01
    SERVICE_UNAVAILABLE = 163  # 5.03
    GATEWAY_TIMEOUT = 164  # 5.04

    @property
    def dotted(self) -> str:
        """The code as people write it: ``2.05``."""
        return f"{self >> 5}.{self & 0x1F:02d}"

    @property
    def is_success(self) -> bool:
        return 64 <= self < 96


class FirmwareUpdateState(IntEnum):
    """Resource 5/0/3 State (TS Core, object 5 Firmware Update)."""

    IDLE = 0
    DOWNLOADING = 1
    DOWNLOADED = 2
    UPDATING = 3


class FirmwareUpdateResult(IntEnum):
    """Resource 5/0/5 Update Result (TS Core, object 5 Firmware Update)."""

    INITIAL = 0
    SUCCESS = 1
    NOT_ENOUGH_STORAGE = 2
    OUT_OF_MEMORY = 3
    CONNECTION_LOST = 4
    INTEGRITY_CHECK_FAILURE = 5
    UNSUPPORTED_PACKAGE_TYPE = 6
    INVALID_URI = 7
    UPDATE_FAILED = 8
    UNSUPPORTED_PROTOCOL = 9
    CANCELLED = 10
    DEFERRED = 11


class FirmwareDeliveryMethod(IntEnum):
    """Resource 5/0/9 Firmware Update Delivery Method."""

    PULL = 0
    PUSH = 1
    BOTH = 2


class FirmwareProtocol(IntEnum):
    """Resource 5/0/8 Firmware Update Protocol Support (one per resource instance)."""

    COAP = 0
    COAPS = 1
    HTTP = 2
    HTTPS = 3
    COAP_TCP = 4
    COAP_TLS = 5

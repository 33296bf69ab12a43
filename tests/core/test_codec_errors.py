"""Malformed input: each case ends in the core's own error, naming the path and the problem."""

from __future__ import annotations

import struct

import cbor2
import pytest

from lwm2m_core.codec import Record, decode, decode_records, encode, encode_records
from lwm2m_core.codec._tree import MAX_PAYLOAD_BYTES
from lwm2m_core.errors import CodecError, LwM2MError, ModelError, PathError
from lwm2m_core.model import ResourceType
from lwm2m_core.node import LwM2mMultipleResource, LwM2mSingleResource
from lwm2m_core.numbers import ContentFormat
from lwm2m_core.path import LwM2mPath
from tests.core.conftest import TEST_OBJECT_ID, make_test_model

MODEL = make_test_model()
TLV, TEXT, OPAQUE = ContentFormat.TLV, ContentFormat.TEXT, ContentFormat.OPAQUE
JSON, CBOR = ContentFormat.SENML_JSON, ContentFormat.SENML_CBOR
INSTANCE = LwM2mPath(TEST_OBJECT_ID, 0)


def p(text: str) -> LwM2mPath:
    return LwM2mPath.parse(text)


@pytest.mark.parametrize(
    ("payload", "path", "fmt", "error", "words"),
    [
        # TLV
        ("c1", "/64000/0/1", TLV, CodecError, "truncated"),
        ("c80105", "/64000/0/1", TLV, CodecError, "claims 5 bytes"),
        ("c301000005", "/64000/0/1", TLV, CodecError, "integer of 1, 2, 4 or 8"),
        ("c10402", "/64000/0/4", TLV, CodecError, "boolean"),
        ("c30380ff00", "/64000/0/3", TLV, CodecError, "float of 4 or 8"),
        ("c400ff", "/64000/0/0", TLV, CodecError, "claims 4 bytes but only 1 remain"),
        ("c200c328", "/64000/0/0", TLV, CodecError, "invalid UTF-8"),
        ("c101 05 c101 06", "/64000/0", TLV, CodecError, "given twice"),
        ("c1 63 05", "/64000/0", TLV, ModelError, "no resource 99"),
        ("c10105", "/64001/0/1", TLV, CodecError, "expected a multiple resource"),
        ("880103 410005", "/64000/0/1", TLV, CodecError, "expected one resource entry"),
        ("880b05 0300c10105", "/64000/0", TLV, CodecError, "nested too deeply"),
        ("c1 14 00", "/64000/0", TLV, ModelError, "executable"),
        ("c1 01 05", "/65000/0", TLV, ModelError, "unknown object 65000"),
        ("c4 03 7f c0 00 00", "/64000/0/3", TLV, CodecError, "NaN"),
        ("c1 01 05", "/", TLV, CodecError, "root"),
        # text
        ("31322061", "/64000/0/1", TEXT, CodecError, "not a decimal integer"),
        ("ff", "/64000/0/0", TEXT, CodecError, "invalid UTF-8"),
        ("32", "/64000/0/4", TEXT, CodecError, "boolean"),
        ("4e614e", "/64000/0/3", TEXT, CodecError, "decimal number"),
        ("3939393939393939393939393939393939393939", "/64000/0/1", TEXT, ModelError, "range"),
        ("2d31", "/64000/0/2", TEXT, CodecError, "unsigned"),
        ("41", "/64000/0/5", TEXT, CodecError, "base64"),
        ("333a", "/64000/0/7", TEXT, CodecError, "object link"),
        ("31", "/64000/0/11", TEXT, CodecError, "multiple resource"),
        ("31", "/64000/0", TEXT, CodecError, "single value"),
        # opaque
        ("00", "/64000/0/0", OPAQUE, CodecError, "only for Opaque"),
        # SenML-JSON
        ("5b", "/64000/0", JSON, CodecError, "not valid JSON"),
        ('[{"bn":"/64000/0/","n":"3","v":NaN}]', "/64000/0", JSON, CodecError, "NaN"),
        ('[{"n":"/64000/0/0","v":1}]', "/64000/0", JSON, CodecError, "take 'vs'"),
        ('[{"n":"/64000/0/1","v":1.5}]', "/64000/0", JSON, CodecError, "not an integer"),
        ('[{"n":"/64000/0/1","v":1},{"n":"/64000/0/1","v":2}]', "/64000/0", JSON, CodecError,
         "given twice"),
        ('[{"n":"/64000/0/1"}]', "/64000/0", JSON, CodecError, "no value"),
        ('[{"n":"/64000/0/1","v":1,"vs":"x"}]', "/64000/0", JSON, CodecError, "more than one"),
        ('[{"n":"/64000/x/1","v":1}]', "/64000/0", JSON, CodecError, "not a decimal id"),
        ('[{"n":"/64000/1/1","v":1}]', "/64000/0", JSON, CodecError, "outside"),
        ('[{"n":"/64000/0/11","v":1}]', "/64000/0", JSON, CodecError, "multiple-instance"),
        ('[{"n":"/64000/0/5","vd":"***"}]', "/64000/0", JSON, CodecError, "base64url"),
        ('[{"n":"/64000/0/1","v":1,"x_":1}]', "/64000/0", JSON, CodecError, "must be understood"),
        ('{"n":"/64000/0/1"}', "/64000/0", JSON, CodecError, "array of records"),
        ('[{"n":"/64000/0/1","n":"/64000/0/2","v":1}]', "/64000/0", JSON, CodecError, "twice"),
        ('[{"n":"/64000/0/7","vlo":"\u00b2:1"}]', "/64000/0", JSON, ModelError, "OBJECT:INSTANCE"),
        ('[{"n":"/64000/0/3","v":1' + "0" * 400 + "}]", "/64000/0", JSON, ModelError,
         "float range"),
        ('[{"n":"/64000/0/1","bt":1' + "0" * 400 + ',"v":1}]', "/64000/0", JSON, CodecError,
         "out of range"),
        ('[{"n":"/64000/0/1","v":1' + "9" * 5000 + "}]", "/64000/0", JSON, CodecError,
         "not valid JSON"),
    ],
)
def test_malformed_payload(
    payload: str, path: str, fmt: ContentFormat, error: type[LwM2MError], words: str
) -> None:
    raw = payload.encode() if payload.startswith(("[", "{")) else bytes.fromhex(payload)
    with pytest.raises(error) as caught:
        decode(raw, p(path), fmt, MODEL)
    assert words in str(caught.value)


def test_error_names_the_path() -> None:
    with pytest.raises(CodecError) as caught:
        decode(bytes.fromhex("c301000005"), p("/64000/0/1"), TLV, MODEL)
    assert str(caught.value).startswith("/64000/0/1: ")
    assert caught.value.path == p("/64000/0/1")


def test_senml_cbor_errors() -> None:
    cases = [
        (b"\x9b\xff\xff\xff\xff\xff\xff\xff\xff", "not valid CBOR"),
        (b"\x81" * 100_000, "CBOR"),
        (cbor2.dumps([{0: "/64000/0/3", 2: float("nan")}]), "finite"),
        (cbor2.dumps([{0: "/64000/0/0", 3: b"\xff"}]), "expected text"),
        (cbor2.dumps([{0: "/64000/0/5", 8: "text"}]), "byte string"),
        (cbor2.dumps([{-9: 1, 0: "/64000/0/1", 2: 1}]), "unknown base label"),
        (cbor2.dumps([{0: "/64000/0/1", "n": "/64000/0/1", 2: 1}]), "given twice"),
        (cbor2.dumps([[1, 2]]), "not a map"),
        (b"\x81\xa1\x00\x62\xff\xfe", "not valid CBOR"),  # text with invalid UTF-8
    ]
    for payload, words in cases:
        with pytest.raises(LwM2MError) as caught:
            decode(payload, p("/64000/0"), CBOR, MODEL)
        assert words in str(caught.value), (payload[:20], str(caught.value))


def test_deep_json_nesting_is_refused_quickly() -> None:
    with pytest.raises(CodecError):
        decode(b"[" * 200_000 + b"]" * 200_000, p("/64000/0"), JSON, MODEL)


def test_oversized_payload_is_refused() -> None:
    big = b"0" * (MAX_PAYLOAD_BYTES + 1)
    for fmt in (TLV, TEXT, OPAQUE, JSON, CBOR):
        with pytest.raises(CodecError, match="exceeds the limit"):
            decode(big, p("/64000/0/5"), fmt, MODEL)


def test_unsupported_and_unknown_formats() -> None:
    with pytest.raises(CodecError, match="not supported"):
        decode(b"{}", p("/64000/0"), ContentFormat.LWM2M_JSON, MODEL)
    with pytest.raises(CodecError, match="unknown content format 4242"):
        decode(b"", p("/64000/0"), 4242, MODEL)
    with pytest.raises(CodecError, match="not supported for records"):
        decode_records(b"", TLV, MODEL)


def test_encode_refuses_what_the_model_refuses() -> None:
    wrong_type = LwM2mSingleResource(1, ResourceType.INTEGER, "12")
    with pytest.raises(ModelError, match="expected an integer"):
        encode(wrong_type, p("/64000/0/1"), TLV, MODEL)
    with pytest.raises(ModelError, match="single-instance"):
        encode(LwM2mMultipleResource(1, ResourceType.INTEGER, {0: 1}), p("/64000/0/1"), TLV, MODEL)
    with pytest.raises(CodecError, match="does not match the path"):
        encode(LwM2mSingleResource(2, ResourceType.INTEGER, 1), p("/64000/0/1"), TLV, MODEL)
    nan = LwM2mSingleResource(3, ResourceType.FLOAT, float("nan"))
    for fmt in (TLV, TEXT, JSON, CBOR):
        with pytest.raises(CodecError):
            encode(nan, p("/64000/0/3"), fmt, MODEL)
    with pytest.raises(CodecError, match="lone surrogate"):
        encode(LwM2mSingleResource(0, ResourceType.STRING, "\ud800"), p("/64000/0/0"), TLV, MODEL)
    with pytest.raises(ModelError):
        encode_records([Record(p("/64000/0/1"), 1.5)], JSON, MODEL)
    with pytest.raises(PathError):
        p("/64000/65535")


def test_float_widths() -> None:
    path = p("/64000/0/3")
    exact = encode(LwM2mSingleResource(3, ResourceType.FLOAT, 1.5), path, TLV, MODEL)
    assert exact == bytes([0xC4, 3]) + struct.pack(">f", 1.5)
    wide = encode(LwM2mSingleResource(3, ResourceType.FLOAT, 0.1), path, TLV, MODEL)
    assert wide == bytes([0xC8, 3, 8]) + struct.pack(">d", 0.1)

"""Fuzzing every decoder: random and mutated bytes give a node or the core's error, nothing
else, and quickly (hypothesis deadlines catch a hang or a blow-up)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lwm2m_core.codec import decode, decode_paths, decode_records, encode, jsonform
from lwm2m_core.codec.link import decode_discover, decode_registration
from lwm2m_core.errors import LwM2MError
from lwm2m_core.link import parse_links
from lwm2m_core.numbers import ContentFormat
from lwm2m_core.path import LwM2mPath
from tests.core.codec_strategies import nodes_with_paths
from tests.core.conftest import SINGLE_INSTANCE_OBJECT_ID, TEST_OBJECT_ID, make_test_model

MODEL = make_test_model()
NODE_FORMATS = [
    ContentFormat.TEXT,
    ContentFormat.OPAQUE,
    ContentFormat.TLV,
    ContentFormat.SENML_JSON,
    ContentFormat.SENML_CBOR,
]
RECORD_FORMATS = [ContentFormat.SENML_JSON, ContentFormat.SENML_CBOR]
PATHS = [
    LwM2mPath(),
    LwM2mPath(TEST_OBJECT_ID),
    LwM2mPath(TEST_OBJECT_ID, 0),
    LwM2mPath(TEST_OBJECT_ID, 0, 0),
    LwM2mPath(TEST_OBJECT_ID, 0, 5),
    LwM2mPath(TEST_OBJECT_ID, 0, 11),
    LwM2mPath(TEST_OBJECT_ID, 0, 13, 1),
    LwM2mPath(SINGLE_INSTANCE_OBJECT_ID),
    LwM2mPath(3, 0),
]
FUZZ = settings(max_examples=300, deadline=500, suppress_health_check=[HealthCheck.too_slow])


def _only_core_errors(function: Callable[..., object], *args: object) -> None:
    try:
        function(*args)
    except LwM2MError:
        pass


def _decode_all(payload: bytes, path: LwM2mPath) -> None:
    for fmt in NODE_FORMATS:
        _only_core_errors(decode, payload, path, fmt, MODEL)
    for fmt in RECORD_FORMATS:
        _only_core_errors(decode_records, payload, fmt, MODEL)
        _only_core_errors(decode_paths, payload, fmt)
    _only_core_errors(parse_links, payload)
    _only_core_errors(decode_registration, payload, MODEL)
    _only_core_errors(decode_discover, payload, path, MODEL)


@FUZZ
@given(st.binary(max_size=200), st.sampled_from(PATHS))
def test_random_bytes(payload: bytes, path: LwM2mPath) -> None:
    _decode_all(payload, path)


@st.composite
def mutated_payloads(draw: st.DrawFn) -> tuple[bytes, LwM2mPath]:
    node, path = draw(nodes_with_paths(MODEL, TEST_OBJECT_ID))
    fmt = draw(st.sampled_from([*RECORD_FORMATS, ContentFormat.TLV]))
    payload = bytearray(encode(node, path, fmt, MODEL))
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        position = draw(st.integers(0, max(len(payload) - 1, 0)))
        if action == "flip" and payload:
            payload[position] ^= 1 << draw(st.integers(0, 7))
        elif action == "insert":
            payload[position:position] = draw(st.binary(min_size=1, max_size=4))
        elif action == "delete" and payload:
            del payload[position]
        elif action == "truncate":
            del payload[position:]
    return bytes(payload), path


@FUZZ
@given(mutated_payloads())
def test_mutated_valid_payloads(case: tuple[bytes, LwM2mPath]) -> None:
    payload, path = case
    _decode_all(payload, path)


senml_values = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=20),
    st.sampled_from([10**400, -(10**400), 2**64, "\u00b2:1", "1:\u0661", "3:0", "AP8", "AP8="]),
    st.sampled_from(["/64000/0/", "/64000/0/1", "/64000/0/11/2", "1", "5", "/3/0/0", "/"]),
)
senml_labels = st.sampled_from(["bn", "bt", "n", "t", "v", "vs", "vb", "vd", "vlo", "bver", "x_"])


@FUZZ
@given(st.lists(st.dictionaries(senml_labels, senml_values, max_size=5), max_size=6),
       st.sampled_from(PATHS))
def test_structured_senml_json(records: list[dict[str, Any]], path: LwM2mPath) -> None:
    try:
        payload = json.dumps(records).encode()
    except ValueError:
        return
    _decode_all(payload, path)


json_documents = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["path", "value", "instances", "resources", "0", "1", "5",
                                       "11", "hex", "records", "time", "links", "target",
                                       "params"]) | st.text(max_size=3), children, max_size=4),
    max_leaves=20,
)


@FUZZ
@given(json_documents, st.sampled_from(PATHS))
def test_json_form_input(document: Any, path: LwM2mPath) -> None:
    _only_core_errors(jsonform.node_from_json, document, MODEL, None if path.is_root else path)
    _only_core_errors(jsonform.records_from_json, document, MODEL)
    _only_core_errors(jsonform.links_from_json, document)

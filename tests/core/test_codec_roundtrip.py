"""Round trips: every codec gives back what it was given, for any value the model allows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lwm2m_core.codec import (
    Record,
    decode,
    decode_paths,
    decode_records,
    encode,
    encode_paths,
    encode_records,
    jsonform,
    node_to_records,
    records_by_instance,
    records_to_node,
)
from lwm2m_core.model import ResourceType
from lwm2m_core.node import LwM2mObjectInstance, LwM2mSingleResource
from lwm2m_core.numbers import ContentFormat
from lwm2m_core.path import LwM2mPath
from tests.core.codec_strategies import (
    flat_normalised,
    nodes_with_paths,
    record_lists,
    single_value_nodes,
)
from tests.core.conftest import SINGLE_INSTANCE_OBJECT_ID, TEST_OBJECT_ID, make_test_model

MODEL = make_test_model()
OBJECTS = st.sampled_from([TEST_OBJECT_ID, SINGLE_INSTANCE_OBJECT_ID])
PROPERTY = settings(
    max_examples=150, deadline=1000, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY
@given(st.data())
def test_tlv_round_trip(data: st.DataObject) -> None:
    node, path = data.draw(nodes_with_paths(MODEL, data.draw(OBJECTS)))
    payload = encode(node, path, ContentFormat.TLV, MODEL)
    assert decode(payload, path, ContentFormat.TLV, MODEL) == node


@PROPERTY
@given(st.data(), st.sampled_from([ContentFormat.SENML_JSON, ContentFormat.SENML_CBOR]))
def test_senml_round_trip(data: st.DataObject, fmt: ContentFormat) -> None:
    node, path = data.draw(nodes_with_paths(MODEL, data.draw(OBJECTS)))
    payload = encode(node, path, fmt, MODEL)
    assert decode(payload, path, fmt, MODEL) == flat_normalised(node)


@PROPERTY
@given(st.data())
def test_text_round_trip(data: st.DataObject) -> None:
    node, path = data.draw(single_value_nodes(MODEL, TEST_OBJECT_ID))
    payload = encode(node, path, ContentFormat.TEXT, MODEL)
    payload.decode("utf-8")
    assert decode(payload, path, ContentFormat.TEXT, MODEL) == node


@PROPERTY
@given(st.data())
def test_opaque_round_trip(data: st.DataObject) -> None:
    node, path = data.draw(single_value_nodes(MODEL, TEST_OBJECT_ID, only=ResourceType.OPAQUE))
    payload = encode(node, path, ContentFormat.OPAQUE, MODEL)
    assert payload == node.value  # type: ignore[union-attr]
    assert decode(payload, path, ContentFormat.OPAQUE, MODEL) == node


@PROPERTY
@given(st.data(), st.sampled_from([ContentFormat.SENML_JSON, ContentFormat.SENML_CBOR]))
def test_records_round_trip(data: st.DataObject, fmt: ContentFormat) -> None:
    records = data.draw(record_lists(MODEL, TEST_OBJECT_ID))
    payload = encode_records(records, fmt, MODEL)
    assert decode_records(payload, fmt, MODEL) == records


@PROPERTY
@given(st.data())
def test_json_form_round_trip(data: st.DataObject) -> None:
    node, path = data.draw(nodes_with_paths(MODEL, data.draw(OBJECTS)))
    document = jsonform.node_to_json(node, path)
    assert jsonform.node_from_json(document, MODEL) == node


@PROPERTY
@given(st.data())
def test_records_json_form_round_trip(data: st.DataObject) -> None:
    records = data.draw(record_lists(MODEL, TEST_OBJECT_ID))
    assert jsonform.records_from_json(jsonform.records_to_json(records), MODEL) == records


@pytest.mark.parametrize("fmt", [ContentFormat.LEGACY_TLV, ContentFormat.LEGACY_TEXT])
def test_legacy_numbers_use_the_standard_codec(fmt: ContentFormat) -> None:
    path = LwM2mPath(TEST_OBJECT_ID, 0, 1)
    node = LwM2mSingleResource(1, ResourceType.INTEGER, -300)
    assert encode(node, path, fmt, MODEL) == encode(node, path, fmt.canonical, MODEL)
    assert decode(encode(node, path, fmt, MODEL), path, int(fmt), MODEL) == node


def test_tlv_uses_minimal_integer_widths_and_16_bit_ids() -> None:
    path = LwM2mPath(TEST_OBJECT_ID, 0)
    instance = LwM2mObjectInstance(
        0,
        {
            1: LwM2mSingleResource(1, ResourceType.INTEGER, -129),
            300: LwM2mSingleResource(300, ResourceType.STRING, "x"),
        },
    )
    payload = encode(instance, path, ContentFormat.TLV, MODEL)
    # 11 0 00 010: resource, 8-bit id, 2 bytes inline; then 11 1 00 001: 16-bit id 300.
    assert payload.hex() == "c201ff7f" + "e1012c78"


def test_senml_relative_time_is_anchored_at_now() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    payload = b'[{"bn":"/64000/0/","bt":-10,"n":"1","v":5},{"n":"1","t":5,"v":6}]'
    records = decode_records(payload, ContentFormat.SENML_JSON, MODEL, now=now)
    assert [r.time for r in records] == [now - timedelta(seconds=10), now - timedelta(seconds=5)]
    assert [r.value for r in records] == [5, 6]


def test_records_group_into_instances_latest_time_wins() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    path = LwM2mPath(TEST_OBJECT_ID, 2, 1)
    records = [
        Record(path, 1, t0 + timedelta(seconds=5)),
        Record(path, 2, t0),
        Record(LwM2mPath(SINGLE_INSTANCE_OBJECT_ID, 0, 0), "name", None),
    ]
    nodes = records_by_instance(records, MODEL)
    assert nodes[LwM2mPath(TEST_OBJECT_ID, 2)] == LwM2mObjectInstance(
        2, {1: LwM2mSingleResource(1, ResourceType.INTEGER, 1)}
    )
    assert set(nodes) == {LwM2mPath(TEST_OBJECT_ID, 2), LwM2mPath(SINGLE_INSTANCE_OBJECT_ID, 0)}


@PROPERTY
@given(st.data())
def test_node_to_records_and_back(data: st.DataObject) -> None:
    node, path = data.draw(nodes_with_paths(MODEL, TEST_OBJECT_ID))
    records = node_to_records(node, path, MODEL)
    assert records_to_node(records, path, MODEL) == flat_normalised(node)


@pytest.mark.parametrize("fmt", [ContentFormat.SENML_JSON, ContentFormat.SENML_CBOR])
def test_composite_request_paths_round_trip(fmt: ContentFormat) -> None:
    paths = [LwM2mPath.parse(p) for p in ("/", "/3", "/3/0/9", "/64000/1/11/2")]
    assert decode_paths(encode_paths(paths, fmt), fmt) == paths

"""Known byte vectors from the LwM2M specification (sources in tests/fixtures/lwm2m/README.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lwm2m_core.codec import decode, encode, jsonform
from lwm2m_core.link import parse_registration
from lwm2m_core.model import ObjectModelRepository
from lwm2m_core.numbers import FORMAT_NAMES, ContentFormat
from lwm2m_core.path import LwM2mPath

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "lwm2m"
VECTORS: list[dict[str, Any]] = json.loads((FIXTURES / "vectors.json").read_text())


def _payload(vector: dict[str, Any]) -> bytes:
    raw = (FIXTURES / vector["payload_file"]).read_text()
    if vector["payload_file"].endswith(".hex"):
        return bytes.fromhex("".join(raw.split()))
    return raw.encode("utf-8")


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_spec_vector_decodes_to_expected_tree(
    vector: dict[str, Any], device_model: ObjectModelRepository
) -> None:
    path = LwM2mPath.parse(vector["path"])
    fmt = FORMAT_NAMES[vector["format"]]
    node = decode(_payload(vector), path, fmt, device_model)
    expected = json.loads((FIXTURES / vector["expected_file"]).read_text())
    assert jsonform.node_to_json(node, path) == expected


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_spec_vector_reencodes(vector: dict[str, Any], device_model: ObjectModelRepository) -> None:
    path = LwM2mPath.parse(vector["path"])
    fmt = FORMAT_NAMES[vector["format"]]
    payload = _payload(vector)
    encoded = encode(decode(payload, path, fmt, device_model), path, fmt, device_model)
    if vector["reencodes_exactly"]:
        assert encoded == payload
    elif fmt is ContentFormat.SENML_JSON:
        assert json.loads(encoded) == json.loads(payload)
    else:
        assert decode(encoded, path, fmt, device_model) == decode(payload, path, fmt, device_model)


def test_read_on_object_is_the_instance_wrapped_tlv(device_model: ObjectModelRepository) -> None:
    """A Read on /3 answers with object-instance TLVs: the spec's wrapped example exactly."""
    wrapped = bytes.fromhex((FIXTURES / "device-3-0-with-instance.tlv.hex").read_text().strip())
    bare = bytes.fromhex((FIXTURES / "device-3-0.tlv.hex").read_text().strip())
    instance = decode(bare, LwM2mPath(3, 0), ContentFormat.TLV, device_model)
    obj = decode(wrapped, LwM2mPath(3), ContentFormat.TLV, device_model)
    assert obj.instances == {0: instance}  # type: ignore[union-attr]
    assert encode(obj, LwM2mPath(3), ContentFormat.TLV, device_model) == wrapped


def test_single_resource_and_resource_instance_of_the_example(
    device_model: ObjectModelRepository,
) -> None:
    # Manufacturer alone (first TLV of the example) and Power Source Voltage instance 1.
    manufacturer = decode(
        bytes.fromhex("C800144F70656E204D6F62696C6520416C6C69616E6365"),
        LwM2mPath(3, 0, 0), ContentFormat.TLV, device_model,
    )
    assert manufacturer.value == "Open Mobile Alliance"  # type: ignore[union-attr]
    voltage = decode(bytes.fromhex("42011388"), LwM2mPath(3, 0, 7, 1), ContentFormat.TLV,
                     device_model)
    assert voltage.value == 5000  # type: ignore[union-attr]
    text = decode(b"1367491215", LwM2mPath(3, 0, 13), ContentFormat.TEXT, device_model)
    assert jsonform.node_to_json(text, LwM2mPath(3, 0, 13))["value"] == "2013-05-02T10:40:15Z"


def test_registration_payload() -> None:
    registration = parse_registration((FIXTURES / "registration.link").read_bytes())
    assert registration.root == "/"
    assert registration.content_formats == (ContentFormat.SENML_JSON,)
    assert dict(registration.objects) == {1: (0,), 3: (0,), 5: (0,), 26241: (0,)}
    assert dict(registration.versions) == {1: "1.1", 26241: "1.0"}

"""``posfleet lwm2m decode|encode``: the real command, its JSON and its exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from posfleet.cli import main
from tests.core.conftest import TEST_OBJECTS_XML

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "lwm2m"
DEVICE_TLV = (FIXTURES / "device-3-0.tlv.hex").read_text().strip()


@pytest.fixture(scope="module")
def objects_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("objects")
    (folder / "64000.xml").write_text(TEST_OBJECTS_XML)
    return folder


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["lwm2m", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_decode_spec_tlv_prints_the_tree(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "decode", "--format", "tlv", "--path", "/3/0", "--hex", DEVICE_TLV)
    assert code == 0
    expected = json.loads((FIXTURES / "device-3-0.expected.json").read_text())
    assert json.loads(out) == expected


def test_encode_from_json_file_to_hex_and_out_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = FIXTURES / "device-3-0.expected.json"
    code, out, _ = run(capsys, "encode", "--format", "tlv", "--path", "/3/0", str(source))
    assert code == 0 and out.strip().upper() == DEVICE_TLV.upper()
    target = tmp_path / "payload.cbor"
    code, out, _ = run(
        capsys, "encode", "--format", "senml-cbor", str(source), "--out", str(target)
    )
    assert code == 0 and out == ""
    expected = bytes.fromhex((FIXTURES / "device-3-0.senml-cbor.hex").read_text().strip())
    assert target.read_bytes() == expected
    code, out, _ = run(capsys, "decode", "--format", "senml-cbor", "--path", "/3/0", str(target))
    assert code == 0 and json.loads(out) == json.loads(source.read_text())


def test_extra_objects_records_and_opaque(
    capsys: pytest.CaptureFixture[str], objects_dir: Path, tmp_path: Path
) -> None:
    document = {
        "records": [
            {"path": "/64000/1/5", "value": {"hex": "00ff"}, "time": "2026-01-02T03:04:05Z"},
            {"path": "/64000/1/7", "value": "3:0", "time": None},
        ]
    }
    source = tmp_path / "records.json"
    source.write_text(json.dumps(document))
    code, out, err = run(capsys, "encode", "--format", "senml-json", "--objects", str(objects_dir),
                         str(source))
    assert code == 0, err
    payload = bytes.fromhex(out.strip())
    assert b'"vd":"AP8"' in payload and b'"vlo":"3:0"' in payload
    code, out, _ = run(capsys, "decode", "--format", "senml-json", "--objects", str(objects_dir),
                       "--hex", payload.hex())
    assert code == 0 and json.loads(out) == document


def test_link_format(capsys: pytest.CaptureFixture[str]) -> None:
    text = '</>;rt="oma.lwm2m";ct=110,</3/0>;pmin=10;obs'
    code, out, _ = run(capsys, "decode", "--format", "link", "--hex", text.encode().hex())
    assert code == 0
    assert json.loads(out)["links"][1] == {"target": "/3/0", "params": {"pmin": 10, "obs": True}}


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["decode", "--format", "tlv", "--path", "/3/0", "--hex", "C8"], "truncated"),
        (["decode", "--format", "tlv", "--path", "/3/0", "--hex", "zz"], "not hexadecimal"),
        (["decode", "--format", "text", "--path", "/3/x", "--hex", "31"], "not a decimal id"),
        (["decode", "--format", "text", "--path", "/9999/0/0", "--hex", "31"], "unknown object"),
        (["decode", "--format", "tlv", "--path", "/3/0", "/no/such/file"], "cannot read"),
        (["decode", "--format", "link", "--hex", "3c2f33"], "without closing"),
    ],
)
def test_bad_input_exits_2_with_message(
    capsys: pytest.CaptureFixture[str], argv: list[str], words: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert words in err and "Traceback" not in err


def test_real_command_in_a_subprocess(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"path": "/3/0/9", "value": "full"}')
    result = subprocess.run(
        [sys.executable, "-m", "posfleet.cli", "lwm2m", "encode", "--format", "text", str(bad)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 2
    assert "/3/0/9" in result.stderr and "expected an integer" in result.stderr
    assert "Traceback" not in result.stderr
    good = subprocess.run(
        [sys.executable, "-m", "posfleet.cli", "lwm2m", "encode", "--format", "text", "-"],
        input='{"path": "/3/0/9", "value": 87}', capture_output=True, text=True, timeout=60,
        check=False,
    )
    assert good.returncode == 0 and good.stdout.strip() == b"87".hex()

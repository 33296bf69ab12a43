"""``posfleet lwm2m decode|encode``: look inside LwM2M payloads in the field.

``decode`` turns a payload (hex on the command line, or a file of raw bytes) into the JSON
form of :mod:`lwm2m_core.codec.jsonform`; ``encode`` does the reverse. Bad input ends with
exit code 2 and one line saying what is wrong. Heavy imports wait until a handler runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

#: Exit code for bad input, as argparse uses for bad arguments.
EXIT_BAD_INPUT = 2
FORMAT_CHOICES = ("text", "opaque", "link", "tlv", "senml-json", "senml-cbor")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "lwm2m", help="decode and encode LwM2M payloads", description=__doc__
    )
    commands = parser.add_subparsers(dest="lwm2m_command", metavar="ACTION", required=True)

    decode = commands.add_parser("decode", help="payload -> JSON")
    _common_arguments(decode)
    source = decode.add_mutually_exclusive_group(required=True)
    source.add_argument("--hex", help="the payload as hexadecimal (spaces allowed)")
    source.add_argument("file", nargs="?", help="a file holding the raw payload bytes")
    decode.set_defaults(handler=run_decode)

    encode = commands.add_parser("encode", help="JSON -> payload")
    _common_arguments(encode)
    encode.add_argument("json_file", metavar="JSON", help="the JSON form to encode, or - for stdin")
    encode.add_argument("--out", help="write the raw bytes to this file instead of hex to stdout")
    encode.set_defaults(handler=run_encode)


def _common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", required=True, choices=FORMAT_CHOICES, help="content format")
    parser.add_argument(
        "--path",
        default="/",
        help="the LwM2M path the payload answers (e.g. /3/0); / for SenML records",
    )
    parser.add_argument(
        "--objects",
        action="append",
        default=[],
        metavar="DIR",
        help="an extra folder of object definitions (repeatable)",
    )


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def run_decode(args: argparse.Namespace) -> int:
    import json

    from lwm2m_core.codec import decode as decode_node
    from lwm2m_core.codec import decode_records, jsonform
    from lwm2m_core.codec.link import decode_discover
    from lwm2m_core.errors import LwM2MError
    from lwm2m_core.link import parse_links
    from lwm2m_core.model import ObjectModelRepository
    from lwm2m_core.numbers import FORMAT_NAMES
    from lwm2m_core.path import LwM2mPath

    try:
        if args.hex is not None:
            payload = bytes.fromhex(args.hex)
        else:
            with open(args.file, "rb") as handle:
                payload = handle.read()
    except ValueError as exc:
        return _fail(f"--hex is not hexadecimal: {exc}")
    except OSError as exc:
        return _fail(f"cannot read {args.file}: {exc.strerror}")
    try:
        path = LwM2mPath.parse(args.path)
        if args.format == "link":
            if path.is_root:
                result = jsonform.links_to_json(parse_links(payload))
            else:
                model = ObjectModelRepository.default(*args.objects)
                result = jsonform.links_to_json(decode_discover(payload, path, model))
        else:
            model = ObjectModelRepository.default(*args.objects)
            fmt = FORMAT_NAMES[args.format]
            if path.is_root:
                result = jsonform.records_to_json(decode_records(payload, fmt, model))
            else:
                result = jsonform.node_to_json(decode_node(payload, path, fmt, model), path)
    except LwM2MError as exc:
        return _fail(str(exc))
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


def run_encode(args: argparse.Namespace) -> int:
    import json

    from lwm2m_core.codec import encode as encode_node
    from lwm2m_core.codec import encode_records, jsonform
    from lwm2m_core.errors import LwM2MError
    from lwm2m_core.link import format_links
    from lwm2m_core.model import ObjectModelRepository
    from lwm2m_core.numbers import FORMAT_NAMES
    from lwm2m_core.path import LwM2mPath

    try:
        if args.json_file == "-":
            text = sys.stdin.read()
        else:
            with open(args.json_file, encoding="utf-8") as handle:
                text = handle.read()
        document = json.loads(text)
    except OSError as exc:
        return _fail(f"cannot read {args.json_file}: {exc.strerror}")
    except (ValueError, RecursionError) as exc:
        return _fail(f"input is not valid JSON: {exc}")
    try:
        path = LwM2mPath.parse(args.path)
        if args.format == "link":
            payload = format_links(jsonform.links_from_json(document)).encode("utf-8")
        else:
            model = ObjectModelRepository.default(*args.objects)
            fmt = FORMAT_NAMES[args.format]
            if isinstance(document, dict) and "records" in document:
                payload = encode_records(jsonform.records_from_json(document, model), fmt, model)
            else:
                if path.is_root and isinstance(document, dict):
                    path = LwM2mPath.parse(str(document.get("path", "/")))
                node = jsonform.node_from_json(document, model, path)
                payload = encode_node(node, path, fmt, model)
    except LwM2MError as exc:
        return _fail(str(exc))
    if args.out:
        try:
            with open(args.out, "wb") as handle:
                handle.write(payload)
        except OSError as exc:
            return _fail(f"cannot write {args.out}: {exc.strerror}")
    else:
        print(payload.hex())
    return 0

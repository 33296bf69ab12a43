"""CoRE link format (RFC 6690) with LwM2M attributes: parsing, formatting, registration."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lwm2m_core.codec.link import decode_discover, encode_discover
from lwm2m_core.errors import CodecError, LwM2MError, ModelError
from lwm2m_core.link import (
    Link,
    RegistrationObjects,
    format_links,
    format_registration,
    parse_links,
    parse_registration,
)
from lwm2m_core.numbers import ContentFormat
from lwm2m_core.path import LwM2mPath
from tests.core.conftest import TEST_OBJECT_ID, make_test_model

MODEL = make_test_model()


def test_registration_payload_gives_instances_and_formats() -> None:
    registration = parse_registration(b'</>;rt="oma.lwm2m";ct=110,</1/0>,</3/0>')
    assert registration.root == "/"
    assert registration.supports(ContentFormat.SENML_JSON)
    assert not registration.supports(ContentFormat.TLV)
    assert dict(registration.objects) == {1: (0,), 3: (0,)}


def test_registration_with_alternate_root_and_format_list() -> None:
    text = '</lwm2m>;rt="oma.lwm2m";ct="60 110 112",</lwm2m/1>;ver=1.1,</lwm2m/1/0>,</lwm2m/2>'
    registration = parse_registration(text)
    assert registration.root == "/lwm2m"
    assert registration.content_formats == (60, 110, 112)
    assert dict(registration.objects) == {1: (0,), 2: ()}
    assert dict(registration.versions) == {1: "1.1"}
    assert parse_registration(format_registration(registration)) == registration


def test_registration_without_root_link() -> None:
    registration = parse_registration("</1/0>, </3/0>,</3/1>")
    assert registration.content_formats == ()
    assert dict(registration.objects) == {1: (0,), 3: (0, 1)}
    again = RegistrationObjects(objects={1: (0,), 3: (0, 1)})
    assert format_registration(again) == "</1/0>,</3/0>,</3/1>"


def test_discover_attributes_are_typed() -> None:
    links = parse_links('</3/0>;pmin=10;pmax=60,</3/0/7>;dim=2;gt=50.5;lt=-3;st=0.5,</3/0/13>;obs')
    assert links[0].params == {"pmin": 10, "pmax": 60}
    assert links[1].params == {"dim": 2, "gt": 50.5, "lt": -3.0, "st": 0.5}
    assert links[2].params == {"obs": True}
    assert isinstance(links[0].params["pmin"], int)
    assert isinstance(links[1].params["lt"], float)
    assert parse_links(format_links(links)) == links


def test_quoted_strings_keep_commas_semicolons_and_escapes() -> None:
    links = parse_links(r'</a>;title="x, y; \"z\"";rt="r1 r2",</b>')
    assert links[0].params["title"] == 'x, y; "z"'
    assert links[0].params["rt"] == "r1 r2"
    assert links[1].target == "/b"
    assert parse_links(format_links(links)) == links


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("</3/0", "without closing"),
        ("<3/0>;pmin=abc", "non-negative integer"),
        ("</3/0>;pmin=-1", "non-negative integer"),
        ("</3/0>;gt=1e5", "decimal number"),
        ("</3/0>;obs=1", "flag"),
        ('</3/0>;rt="open', "without closing quote"),
        ("</3/0>;pmin=1;pmin=2", "given twice"),
        ("</3/0>,", "expected '<'"),
        ("</3/0> </3/1>", "expected ','"),
        ("</3/0>;dim=300", "exceeds 255"),
        ("</3/0>;ver=one", "MAJOR.MINOR"),
        ('</3/0>;ct="60 x"', "content-format"),
    ],
)
def test_malformed_links(text: str, words: str) -> None:
    with pytest.raises(CodecError, match=words):
        parse_links(text)


def test_invalid_utf8_and_size() -> None:
    with pytest.raises(CodecError, match="UTF-8"):
        parse_links(b"</\xff>")
    with pytest.raises(CodecError, match="exceeds"):
        parse_links(b"</1>," * 20_000)


def test_registration_errors() -> None:
    with pytest.raises(CodecError, match="object or instance"):
        parse_registration("</3/0/1>")
    with pytest.raises(CodecError, match="twice"):
        parse_registration("</3/0>,</3/0>")
    with pytest.raises(CodecError, match="outside the root"):
        parse_registration('</lwm2m>;rt="oma.lwm2m",</3/0>')
    with pytest.raises(CodecError, match="not an LwM2M path"):
        parse_registration("</abc>")


def test_discover_checked_against_model() -> None:
    path = LwM2mPath(TEST_OBJECT_ID, 0)
    links = [Link("/64000/0", {"pmin": 5}), Link("/64000/0/11", {"dim": 3}), Link("/64000/0/1")]
    payload = encode_discover(links, path, MODEL)
    assert decode_discover(payload, path, MODEL) == links
    with pytest.raises(ModelError, match="no resource 99"):
        decode_discover(b"</64000/0/99>", path, MODEL)
    with pytest.raises(ModelError, match="dim is only for multiple"):
        decode_discover(b"</64000/0/1>;dim=1", path, MODEL)
    with pytest.raises(CodecError, match="outside the discovered path"):
        decode_discover(b"</64000/1/1>", path, MODEL)


param_values = st.one_of(
    st.tuples(st.just("pmin"), st.integers(0, 10**6)),
    st.tuples(st.just("gt"), st.floats(-1e6, 1e6, allow_nan=False).map(lambda f: round(f, 3))),
    st.tuples(st.just("ver"), st.sampled_from(["1.0", "1.1", "2.0"])),
    st.tuples(st.just("obs"), st.just(True)),
    st.tuples(st.just("title"), st.text(max_size=12).filter(lambda s: "\x00" not in s)),
    st.tuples(st.just("ct"), st.lists(st.integers(0, 65535), min_size=2, max_size=3).map(tuple)),
)


@settings(max_examples=100, deadline=500)
@given(st.lists(st.tuples(st.from_regex(r"/[0-9]{1,5}(/[0-9]{1,3})?", fullmatch=True),
                          st.lists(param_values, max_size=4)), max_size=5))
def test_format_then_parse_round_trip(raw: list[tuple[str, list[tuple[str, object]]]]) -> None:
    links = [Link(target, dict(params)) for target, params in raw]  # type: ignore[arg-type]
    assert parse_links(format_links(links)) == links


@settings(max_examples=200, deadline=500)
@given(st.text(alphabet='<>/;,="\\ abc0123.', max_size=60))
def test_link_parser_only_raises_core_errors(text: str) -> None:
    try:
        parse_links(text)
    except LwM2MError:
        pass


@settings(max_examples=100, deadline=500)
@given(
    st.dictionaries(st.integers(0, 65534), st.lists(st.integers(0, 65534), unique=True, max_size=3)
                    .map(lambda ids: tuple(sorted(ids))), max_size=5),
    st.lists(st.sampled_from(list(ContentFormat)), unique=True, max_size=3)
    .map(lambda fmts: tuple(int(f) for f in fmts)),
    st.sampled_from(["/", "/lwm2m", "/a/b"]),
)
def test_registration_round_trip(
    objects: dict[int, tuple[int, ...]], formats: tuple[int, ...], root: str
) -> None:
    registration = RegistrationObjects(root=root, content_formats=formats, objects=objects)
    parsed = parse_registration(format_registration(registration))
    assert dict(parsed.objects) == objects
    assert parsed.content_formats == formats
    assert parsed.root == (root if root != "/" or formats else "/")

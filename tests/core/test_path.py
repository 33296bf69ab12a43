"""LwM2M paths: parsing, formatting, navigation, ordering and every malformed input."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lwm2m_core.errors import LwM2MError, PathError
from lwm2m_core.path import MAX_ID, ROOT, LwM2mPath

ids = st.integers(min_value=0, max_value=MAX_ID - 1)
paths = st.lists(ids, max_size=4).map(LwM2mPath.from_ids)


@pytest.mark.parametrize(
    ("text", "expected", "depth"),
    [
        ("/", ROOT, 0),
        ("", ROOT, 0),
        ("/3", LwM2mPath(3), 1),
        ("/3/0", LwM2mPath(3, 0), 2),
        ("/3/0/1", LwM2mPath(3, 0, 1), 3),
        ("/3/0/7/1", LwM2mPath(3, 0, 7, 1), 4),
        ("3/0/1", LwM2mPath(3, 0, 1), 3),
        (" /5/0/3 ", LwM2mPath(5, 0, 3), 3),
        ("/65534/65534/65534/65534", LwM2mPath(65534, 65534, 65534, 65534), 4),
        ("/0/0/0/0", LwM2mPath(0, 0, 0, 0), 4),
    ],
)
def test_parse(text: str, expected: LwM2mPath, depth: int) -> None:
    path = LwM2mPath.parse(text)
    assert path == expected
    assert path.depth == depth


@pytest.mark.parametrize(
    ("path", "text"),
    [(ROOT, "/"), (LwM2mPath(3), "/3"), (LwM2mPath(3, 0, 7, 1), "/3/0/7/1")],
)
def test_format(path: LwM2mPath, text: str) -> None:
    assert str(path) == text


def test_depth_predicates() -> None:
    predicates = (
        "is_root",
        "is_object",
        "is_object_instance",
        "is_resource",
        "is_resource_instance",
    )
    samples = [ROOT, LwM2mPath(3), LwM2mPath(3, 0), LwM2mPath(3, 0, 7), LwM2mPath(3, 0, 7, 1)]
    for depth, path in enumerate(samples):
        assert [getattr(path, name) for name in predicates] == [i == depth for i in range(5)]


@settings(max_examples=300)
@given(paths)
def test_format_parse_round_trip(path: LwM2mPath) -> None:
    assert LwM2mPath.parse(str(path)) == path
    assert LwM2mPath.from_ids(path.ids) == path


@settings(max_examples=300)
@given(st.lists(ids, min_size=1, max_size=4))
def test_parent_of_child(id_list: list[int]) -> None:
    path = LwM2mPath.from_ids(id_list)
    assert path.parent().child(id_list[-1]) == path
    assert path.starts_with(path.parent())
    assert not path.parent().starts_with(path)
    assert path.starts_with(ROOT)


@settings(max_examples=300)
@given(paths, paths)
def test_order_follows_id_tuples(a: LwM2mPath, b: LwM2mPath) -> None:
    assert (a < b) == (a.ids < b.ids)
    assert (a <= b) == (a.ids <= b.ids)
    assert (a > b) == (a.ids > b.ids)
    assert (a >= b) == (a.ids >= b.ids)


def test_paths_of_different_depths_sort_parent_first() -> None:
    mixed = [LwM2mPath(4), LwM2mPath(3, 0, 1), ROOT, LwM2mPath(3), LwM2mPath(3, 0)]
    assert [str(p) for p in sorted(mixed)] == ["/", "/3", "/3/0", "/3/0/1", "/4"]


def test_paths_are_hashable_values() -> None:
    assert {LwM2mPath.parse("/3/0"): 1}[LwM2mPath(3, 0)] == 1
    with pytest.raises(AttributeError):
        LwM2mPath(3).object_id = 4  # type: ignore[misc]


def test_comparison_with_other_types_is_refused() -> None:
    with pytest.raises(TypeError):
        _ = LwM2mPath(3) < "/3"  # type: ignore[operator]
    assert LwM2mPath(3) != "/3"


@pytest.mark.parametrize(
    "text",
    [
        "//",
        "//3",
        "/3/",
        "/3//1",
        "/3/0/1/2/5",
        "/a",
        "/3/x/1",
        "/-1",
        "/+3",
        "/3.0",
        "/ 3",
        "/3 /0",
        "/03",
        "/3/00",
        "/65535",
        "/3/0/65535",
        "/99999999",
        "/" + "9" * 5000,
        "/\u0663",  # Arabic-Indic digit three: isdigit() but not ASCII
        "/\u00b2",  # superscript two
        "/\uff13",  # full-width three
        "/3\n/0",
        "\\3\\0",
        "/3?x=1",
    ],
)
def test_malformed_text_raises_path_error(text: str) -> None:
    with pytest.raises(PathError) as info:
        LwM2mPath.parse(text)
    assert repr(text)[:40] in str(info.value) or "out of range" in str(info.value)


@pytest.mark.parametrize("value", [None, 3, b"/3/0", ["3"]])
def test_non_string_raises_path_error(value: object) -> None:
    with pytest.raises(PathError, match="path must be a string"):
        LwM2mPath.parse(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "args",
    [
        (None, 0),
        (3, None, 1),
        (-1,),
        (MAX_ID,),
        (3, 0, 0, MAX_ID),
        (True,),
        (3.0,),
        ("3",),
    ],
)
def test_bad_ids_raise_path_error(args: tuple[object, ...]) -> None:
    with pytest.raises(PathError):
        LwM2mPath(*args)  # type: ignore[arg-type]


def test_navigation_limits() -> None:
    with pytest.raises(PathError, match="no children"):
        LwM2mPath(3, 0, 7, 1).child(0)
    with pytest.raises(PathError, match="no parent"):
        ROOT.parent()
    with pytest.raises(PathError, match="out of range"):
        LwM2mPath(3).child(MAX_ID)
    with pytest.raises(PathError, match="at most 4"):
        LwM2mPath.from_ids([1, 2, 3, 4, 5])


def test_path_error_names_the_path() -> None:
    with pytest.raises(PathError) as info:
        LwM2mPath(3, 0, 7, 1).child(2)
    assert info.value.path == LwM2mPath(3, 0, 7, 1)
    assert str(info.value).startswith("/3/0/7/1: ")
    assert isinstance(info.value, LwM2MError)


@settings(max_examples=300)
@given(st.text(max_size=30))
def test_any_text_parses_or_raises_path_error(text: str) -> None:
    try:
        path = LwM2mPath.parse(text)
    except PathError:
        return
    assert LwM2mPath.parse(str(path)) == path


def test_errors_survive_pickling() -> None:
    error = PathError("a resource instance path has no children", LwM2mPath(3, 0, 7, 1))
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is PathError
    assert (copy.message, copy.path, str(copy)) == (error.message, error.path, str(error))

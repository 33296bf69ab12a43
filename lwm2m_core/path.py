"""LwM2M paths: ``/``, ``/3``, ``/3/0``, ``/3/0/1``, ``/3/0/7/1`` (TS Core §6.1)."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from lwm2m_core.errors import PathError

#: Object ids are 16 bits (TS Core §7.1); instance and resource ids too, and 65535 is
#: reserved as "no id" (MAX_ID), so it never appears in a path.
MAX_ID = 65535
#: Levels below the root: object, object instance, resource, resource instance.
MAX_DEPTH = 4
#: A valid id has at most this many decimal digits; longer segments are refused before
#: ``int()`` sees them (Python refuses to convert very long digit strings).
_MAX_ID_DIGITS = len(str(MAX_ID))


@dataclass(frozen=True, slots=True)
class LwM2mPath:
    """A path into the object tree. Unused trailing levels are ``None``.

    Paths order like their id tuples, so a parent sorts before its children and
    ``/3`` < ``/3/0`` < ``/3/0/1`` < ``/4``.
    """

    object_id: int | None = None
    object_instance_id: int | None = None
    resource_id: int | None = None
    resource_instance_id: int | None = None
    # The set ids, computed once: paths are hashed, compared and walked on every codec call.
    _ids: tuple[int, ...] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        ids: tuple[int | None, ...] = (
            self.object_id,
            self.object_instance_id,
            self.resource_id,
            self.resource_instance_id,
        )
        while ids and ids[-1] is None:
            ids = ids[:-1]
        # Paths are built for every value of every message: check the usual case cheaply
        # and let the thorough check below name what is wrong.
        for value in ids:
            if type(value) is not int or not 0 <= value < MAX_ID:
                self._check(ids)
                break
        object.__setattr__(self, "_ids", ids)

    @staticmethod
    def _check(ids: tuple[int | None, ...]) -> None:
        seen_none = False
        for level, value in enumerate(ids):
            if value is None:
                seen_none = True
                continue
            if seen_none:
                raise PathError(f"level {level} is set but a level before it is not")
            if isinstance(value, bool) or not isinstance(value, int):
                raise PathError(f"id {value!r} is not an integer")
            if not 0 <= value < MAX_ID:
                raise PathError(f"id {value} is out of range 0..{MAX_ID - 1}")

    @classmethod
    def from_ids(cls, ids: tuple[int, ...] | list[int]) -> LwM2mPath:
        """The path with these ids, outermost first (0 to 4 of them)."""
        if len(ids) > MAX_DEPTH:
            raise PathError(f"{len(ids)} ids given, a path has at most {MAX_DEPTH}")
        padded: list[int | None] = [*ids, *([None] * (MAX_DEPTH - len(ids)))]
        return cls(padded[0], padded[1], padded[2], padded[3])

    @classmethod
    def parse(cls, text: str) -> LwM2mPath:
        """Parse ``/3/0/1``; a missing leading slash is accepted, empty segments are not."""
        if not isinstance(text, str):
            raise PathError(f"path must be a string, not {type(text).__name__}")
        if len(text) <= _CACHED_TEXT_LENGTH:
            return _parse_cached(text)
        return _parse(text)

    @property
    def depth(self) -> int:
        """0 for root, 1 object, 2 instance, 3 resource, 4 resource instance."""
        return len(self.ids)

    @property
    def is_root(self) -> bool:
        return self.object_id is None

    @property
    def is_object(self) -> bool:
        return self.object_id is not None and self.object_instance_id is None

    @property
    def is_object_instance(self) -> bool:
        return self.object_instance_id is not None and self.resource_id is None

    @property
    def is_resource(self) -> bool:
        return self.resource_id is not None and self.resource_instance_id is None

    @property
    def is_resource_instance(self) -> bool:
        return self.resource_instance_id is not None

    @property
    def ids(self) -> tuple[int, ...]:
        """The ids that are set, outermost first."""
        return self._ids

    def child(self, child_id: int) -> LwM2mPath:
        """The path one level deeper."""
        if self.depth == MAX_DEPTH:
            raise PathError("a resource instance path has no children", self)
        return LwM2mPath.from_ids((*self.ids, child_id))

    def parent(self) -> LwM2mPath:
        """The path one level up; the root has none."""
        if self.is_root:
            raise PathError("the root path has no parent", self)
        return LwM2mPath.from_ids(self.ids[:-1])

    def starts_with(self, prefix: LwM2mPath) -> bool:
        """True if ``prefix`` is this path or one of its ancestors."""
        return self.ids[: prefix.depth] == prefix.ids

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, LwM2mPath):
            return NotImplemented
        return self.ids < other.ids

    def __le__(self, other: object) -> bool:
        if not isinstance(other, LwM2mPath):
            return NotImplemented
        return self.ids <= other.ids

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, LwM2mPath):
            return NotImplemented
        return self.ids > other.ids

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, LwM2mPath):
            return NotImplemented
        return self.ids >= other.ids

    def __str__(self) -> str:
        return "/" + "/".join(str(value) for value in self.ids)


ROOT = LwM2mPath()


def _parse(text: str) -> LwM2mPath:
    stripped = text.strip()
    if stripped in ("", "/"):
        return ROOT
    body = stripped[1:] if stripped.startswith("/") else stripped
    parts = body.split("/")
    if len(parts) > MAX_DEPTH:
        raise PathError(f"path {text!r} has {len(parts)} levels, at most {MAX_DEPTH} are allowed")
    ids: list[int] = []
    for part in parts:
        if not part.isascii() or not part.isdigit():
            raise PathError(f"path {text!r}: segment {part!r} is not a decimal id")
        if len(part) > 1 and part.startswith("0"):
            raise PathError(f"path {text!r}: segment {part!r} has a leading zero")
        if len(part) > _MAX_ID_DIGITS or int(part) >= MAX_ID:
            raise PathError(f"path {text!r}: id {part} is out of range 0..{MAX_ID - 1}")
        ids.append(int(part))
    return LwM2mPath.from_ids(ids)


#: The same few paths are parsed over and over (every registration names /3/0, /1/0...);
#: paths are immutable, so the parsed ones are shared. Longer texts skip the cache.
_CACHED_TEXT_LENGTH = 32
_parse_cached = functools.lru_cache(maxsize=4096)(_parse)

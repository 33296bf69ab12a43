"""LwM2M paths: ``/``, ``/3``, ``/3/0``, ``/3/0/1``, ``/3/0/7/1`` (TS Core §6.1)."""

from __future__ import annotations

from dataclasses import dataclass

from lwm2m_core.errors import PathError

#: Object ids are 16 bits (TS Core §7.1); instance and resource ids too, and 65535 is
#: reserved as "no id" (MAX_ID), so it never appears in a path.
MAX_ID = 65535


@dataclass(frozen=True, order=True, slots=True)
class LwM2mPath:
    """A path into the object tree. Unused trailing levels are ``None``."""

    object_id: int | None = None
    object_instance_id: int | None = None
    resource_id: int | None = None
    resource_instance_id: int | None = None

    def __post_init__(self) -> None:
        ids = (self.object_id, self.object_instance_id, self.resource_id, self.resource_instance_id)
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
    def parse(cls, text: str) -> LwM2mPath:
        """Parse ``/3/0/1``; a missing leading slash is accepted, empty segments are not."""
        if not isinstance(text, str):
            raise PathError(f"path must be a string, not {type(text).__name__}")
        stripped = text.strip()
        if stripped in ("", "/"):
            return ROOT
        body = stripped[1:] if stripped.startswith("/") else stripped
        parts = body.split("/")
        if len(parts) > 4:
            raise PathError(f"path {text!r} has {len(parts)} levels, at most 4 are allowed")
        ids: list[int] = []
        for part in parts:
            if not part.isdigit() or not part.isascii():
                raise PathError(f"path {text!r}: segment {part!r} is not a decimal id")
            if len(part) > 1 and part.startswith("0"):
                raise PathError(f"path {text!r}: segment {part!r} has a leading zero")
            ids.append(int(part))
        return cls(*ids)

    @property
    def depth(self) -> int:
        """0 for root, 1 object, 2 instance, 3 resource, 4 resource instance."""
        ids = (self.object_id, self.object_instance_id, self.resource_id, self.resource_instance_id)
        return sum(1 for value in ids if value is not None)

    @property
    def is_root(self) -> bool:
        return self.depth == 0

    @property
    def is_object(self) -> bool:
        return self.depth == 1

    @property
    def is_object_instance(self) -> bool:
        return self.depth == 2

    @property
    def is_resource(self) -> bool:
        return self.depth == 3

    @property
    def is_resource_instance(self) -> bool:
        return self.depth == 4

    @property
    def ids(self) -> tuple[int, ...]:
        """The ids that are set, outermost first."""
        ids = (self.object_id, self.object_instance_id, self.resource_id, self.resource_instance_id)
        return tuple(value for value in ids if value is not None)

    def child(self, child_id: int) -> LwM2mPath:
        """The path one level deeper."""
        if self.depth == 4:
            raise PathError("a resource instance path has no children", self)
        return LwM2mPath(*self.ids, child_id)

    def parent(self) -> LwM2mPath:
        if self.is_root:
            raise PathError("the root path has no parent", self)
        return LwM2mPath(*self.ids[:-1])

    def starts_with(self, prefix: LwM2mPath) -> bool:
        """True if ``prefix`` is this path or one of its ancestors."""
        return self.ids[: prefix.depth] == prefix.ids

    def __str__(self) -> str:
        return "/" + "/".join(str(value) for value in self.ids)


ROOT = LwM2mPath()

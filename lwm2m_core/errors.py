"""The core's one exception family.

Every malformed input that reaches the core ends in a :class:`LwM2MError` subclass whose
message names the path (when known) and what is wrong, so the edges (CoAP, HTTP, CLI) can
map it to a status code and show it to a person.
"""

from __future__ import annotations


class LwM2MError(Exception):
    """Base of every error the LwM2M core raises."""

    def __init__(self, message: str, path: object | None = None) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path is not None else message)

    def __reduce__(self) -> tuple[type[LwM2MError], tuple[str, object | None]]:
        # Keep message and path apart when an error crosses a process boundary.
        return type(self), (self.message, self.path)


class PathError(LwM2MError):
    """A path string or id is malformed or out of range."""


class ModelError(LwM2MError):
    """An object definition is invalid, or a path/value does not fit the object model."""


class CodecError(LwM2MError):
    """A payload cannot be encoded or decoded in the requested content format."""

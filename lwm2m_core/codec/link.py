"""application/link-format (content format 40) as LwM2M uses it: Discover answers and
registration payloads, checked against the object model.

The syntax lives in :mod:`lwm2m_core.link`; this module adds what the model knows: every
target of a Discover answer must be a path under the discovered one that names an object,
instance or resource of the model, and ``dim`` may only sit on multiple resources.
"""

from __future__ import annotations

from collections.abc import Iterable

from lwm2m_core.codec._tree import check_payload_size
from lwm2m_core.errors import CodecError, ModelError
from lwm2m_core.link import (
    Link,
    RegistrationObjects,
    format_links,
    format_registration,
    parse_links,
    parse_registration,
)
from lwm2m_core.model import ObjectModelRepository
from lwm2m_core.path import LwM2mPath


def check_discover_links(
    links: Iterable[Link], path: LwM2mPath, model: ObjectModelRepository
) -> list[Link]:
    checked = []
    for link in links:
        target = link.path
        if not target.starts_with(path):
            raise CodecError(
                f"Discover link <{link.target}> lies outside the discovered path", path
            )
        if target.is_root:
            raise CodecError("Discover link names the root", path)
        assert target.object_id is not None
        obj = model.get_object(target.object_id)
        if target.depth >= 3:
            resource = model.get_resource(target)
            if "dim" in link.params and (not resource.multiple or target.depth == 4):
                raise ModelError(
                    f"dim is only for multiple resources, {resource.name} is not one", target
                )
        elif "dim" in link.params:
            raise ModelError(
                f"dim is only for multiple resources, not for object {obj.name}", target
            )
        checked.append(link)
    return checked


def encode_discover(links: Iterable[Link], path: LwM2mPath, model: ObjectModelRepository) -> bytes:
    """The payload of a Discover answer on ``path``."""
    return format_links(check_discover_links(links, path, model)).encode("utf-8")


def decode_discover(payload: bytes, path: LwM2mPath, model: ObjectModelRepository) -> list[Link]:
    """The links of a Discover answer on ``path``, each checked against the model."""
    check_payload_size(payload, path, "link format")
    return check_discover_links(parse_links(bytes(payload)), path, model)


def encode_registration(registration: RegistrationObjects) -> bytes:
    return format_registration(registration).encode("utf-8")


def decode_registration(
    payload: bytes, model: ObjectModelRepository | None = None
) -> RegistrationObjects:
    """A Register/Update payload; with a model, objects it does not know are refused."""
    check_payload_size(payload, None, "link format")
    registration = parse_registration(bytes(payload))
    if model is not None:
        for object_id in registration.objects:
            model.get_object(object_id)
    return registration

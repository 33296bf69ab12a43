"""Device-management operations as values, and how each goes over CoAP (TS Core §6.3).

:class:`DeviceManager` turns an :class:`OperationRequest` into one CoAP request to a
terminal, and the answer into an :class:`Outcome` (code, decoded value, the leaves to keep
as last known values). Formats: the caller's choice, else what the terminal announced,
else SenML-CBOR (1.1) or TLV (1.0); single resources the terminal answers in text or
opaque are decoded too.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field
from typing import Any

from dm_server.errors import InvalidInput
from dm_server.lwm2m.peers import Peer
from dm_server.lwm2m.requester import Requester, Response
from dm_server.services.values import leaves, node_from_body, node_json
from lwm2m_core import codec
from lwm2m_core.codec import jsonform
from lwm2m_core.errors import LwM2MError
from lwm2m_core.link import check_param, parse_links
from lwm2m_core.model import ObjectModelRepository, ResourceType
from lwm2m_core.node import LwM2mObject, LwM2mObjectInstance, Value
from lwm2m_core.numbers import FORMAT_NAMES, CoapCode, ContentFormat
from lwm2m_core.path import LwM2mPath

log = logging.getLogger(__name__)

#: Write-Attributes parameters (TS Core §5.1.2).
ATTRIBUTE_NAMES = ("pmin", "pmax", "gt", "lt", "st", "epmin", "epmax")
MAX_EXECUTE_ARGUMENTS = 1024


class OperationKind(enum.StrEnum):
    READ = "read"
    WRITE = "write"
    EXECUTE = "execute"
    DISCOVER = "discover"
    OBSERVE = "observe"
    CANCEL_OBSERVE = "cancel-observe"
    WRITE_ATTRIBUTES = "write-attributes"
    CREATE = "create"
    DELETE = "delete"


class WriteMode(enum.StrEnum):
    REPLACE = "replace"  # PUT
    UPDATE = "update"  # POST: partial update of an instance


@dataclass(frozen=True)
class OperationRequest:
    kind: OperationKind
    path: LwM2mPath
    value: Any = None
    format: ContentFormat | None = None
    mode: WriteMode = WriteMode.REPLACE
    arguments: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    instance_id: int | None = None

    @classmethod
    def from_json(cls, kind: str, body: dict[str, Any]) -> OperationRequest:
        """Check an API body; InvalidInput with a message naming the field."""
        try:
            op = OperationKind(kind)
        except ValueError:
            raise InvalidInput(f"unknown operation {kind!r:.40}") from None
        try:
            path = LwM2mPath.parse(body.get("path", ""))
        except LwM2MError as exc:
            raise InvalidInput(f"path: {exc.message}") from None
        fmt_name = body.get("format")
        fmt = None
        if fmt_name is not None:
            if fmt_name not in FORMAT_NAMES:
                raise InvalidInput(f"format must be one of {', '.join(FORMAT_NAMES)}")
            fmt = FORMAT_NAMES[fmt_name]
        try:
            mode = WriteMode(body.get("mode") or WriteMode.REPLACE)
        except ValueError:
            raise InvalidInput("mode must be replace or update") from None
        arguments = body.get("arguments") or ""
        if not isinstance(arguments, str) or len(arguments) > MAX_EXECUTE_ARGUMENTS:
            raise InvalidInput(f"arguments must be text of at most {MAX_EXECUTE_ARGUMENTS} chars")
        attributes = body.get("attributes") or {}
        if not isinstance(attributes, dict) or not set(attributes) <= set(ATTRIBUTE_NAMES):
            raise InvalidInput(f"attributes may name only {', '.join(ATTRIBUTE_NAMES)}")
        instance_id = body.get("instance_id")
        if instance_id is not None and (not isinstance(instance_id, int) or instance_id < 0):
            raise InvalidInput("instance_id must be a non-negative integer")
        request = cls(op, path, body.get("value"), fmt, mode, arguments, attributes, instance_id)
        request.check_shape()
        return request

    def check_shape(self) -> None:
        depth = self.path.depth
        need = {
            OperationKind.WRITE: (2, 3, 4),
            OperationKind.EXECUTE: (3,),
            OperationKind.CREATE: (1,),
            OperationKind.DELETE: (2,),
            OperationKind.WRITE_ATTRIBUTES: (1, 2, 3, 4),
            OperationKind.OBSERVE: (1, 2, 3, 4),
            OperationKind.CANCEL_OBSERVE: (1, 2, 3, 4),
            OperationKind.READ: (1, 2, 3, 4),
            OperationKind.DISCOVER: (1, 2, 3),
        }[self.kind]
        if depth not in need:
            raise InvalidInput(f"{self.kind} does not apply to a path like {self.path}")
        if self.kind in (OperationKind.WRITE, OperationKind.CREATE) and self.value is None:
            raise InvalidInput(f"{self.kind} needs a value")
        if self.kind is OperationKind.WRITE_ATTRIBUTES and not self.attributes:
            raise InvalidInput('write-attributes needs attributes, e.g. {"pmin": 10}')

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"path": str(self.path)}
        if self.value is not None:
            body["value"] = self.value
        if self.format is not None:
            body["format"] = next(k for k, v in FORMAT_NAMES.items() if v == self.format)
        if self.mode is not WriteMode.REPLACE:
            body["mode"] = self.mode.value
        if self.arguments:
            body["arguments"] = self.arguments
        if self.attributes:
            body["attributes"] = self.attributes
        if self.instance_id is not None:
            body["instance_id"] = self.instance_id
        return body


@dataclass
class Outcome:
    code: CoapCode
    value: Any = None
    content_format: int | None = None
    location: str = ""
    message: str = ""
    #: Values to keep as the terminal's last known ones.
    values: list[tuple[LwM2mPath, Value]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.code.is_success

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "status": "done" if self.ok else "failed",
            "code": self.code.dotted,
            "code_name": self.code.name,
        }
        if self.value is not None:
            out["value"] = self.value
        if self.content_format is not None:
            out["content_format"] = self.content_format
        if self.location:
            out["location"] = self.location
        if self.message:
            out["message"] = self.message
        return out


def preferred_format(
    peer: Peer, path: LwM2mPath | None = None, model: ObjectModelRepository | None = None
) -> ContentFormat:
    """What to ask for when the caller did not say (TS Core §7.2).

    The format the terminal announced with ``ct=`` wins; else SenML-CBOR for 1.1 and later.
    A 1.0 terminal gets plain text for a single value (the one format every 1.0 client
    has) and TLV for anything bigger.
    """
    if peer.content_format is not None:
        try:
            announced = codec.resolve_format(peer.content_format)
        except LwM2MError:
            announced = None
        if announced in (ContentFormat.SENML_CBOR, ContentFormat.SENML_JSON, ContentFormat.TLV):
            return announced
    if peer.lwm2m_version.startswith("1.0"):
        if path is not None and model is not None and _single_value(path, model):
            return ContentFormat.TEXT
        return ContentFormat.TLV
    return ContentFormat.SENML_CBOR


def _single_value(path: LwM2mPath, model: ObjectModelRepository) -> bool:
    if path.depth == 4:
        return True
    if path.depth != 3:
        return False
    try:
        resource = model.get_resource(path)
    except LwM2MError:
        return False
    return not resource.multiple and resource.type is not ResourceType.OPAQUE


def decode_value(
    response: Response, path: LwM2mPath, asked: ContentFormat, model: ObjectModelRepository
) -> tuple[Any, list[tuple[LwM2mPath, Value]]]:
    fmt = response.content_format if response.content_format is not None else int(asked)
    node = codec.decode(response.payload, path, fmt, model)
    return node_json(node, path), list(leaves(node, path))


def _attribute_query(attributes: dict[str, Any]) -> list[str]:
    query = []
    for name, value in attributes.items():
        if value is None:
            query.append(name)  # "pmin" alone removes the attribute
            continue
        try:
            checked = check_param(name, value)
        except LwM2MError as exc:
            raise InvalidInput(f"attribute {name}: {exc.message}") from None
        query.append(f"{name}={checked}")
    return query


class DeviceManager:
    def __init__(self, requester: Requester, model: ObjectModelRepository) -> None:
        self.requester = requester
        self.model = model

    async def run(self, peer: Peer, request: OperationRequest) -> Outcome:
        """Send ``request`` to ``peer`` and decode the answer (observe is elsewhere)."""
        kind, path = request.kind, request.path
        send = self.requester.send
        if kind is OperationKind.READ:
            fmt = self._format(request, peer)
            response = await send(peer, CoapCode.GET, path, accept=int(fmt))
            return self.read_outcome(response, path, fmt)
        if kind is OperationKind.DISCOVER:
            response = await send(peer, CoapCode.GET, path, accept=int(ContentFormat.LINK))
            outcome = Outcome(response.code, content_format=response.content_format)
            if response.ok:
                try:
                    outcome.value = jsonform.links_to_json(parse_links(response.payload))["links"]
                except LwM2MError as exc:
                    outcome.message = f"the terminal's link format was not valid: {exc}"
            return outcome
        if kind is OperationKind.WRITE:
            fmt = self._format(request, peer)
            node = node_from_body(request.value, path, self.model)
            payload = self._encode(node, path, fmt)
            code = CoapCode.PUT if request.mode is WriteMode.REPLACE else CoapCode.POST
            response = await send(peer, code, path, payload, content_format=int(fmt))
            outcome = Outcome(response.code)
            if response.ok:
                outcome.values = list(leaves(node, path))
            return outcome
        if kind is OperationKind.EXECUTE:
            payload = request.arguments.encode()
            response = await send(
                peer,
                CoapCode.POST,
                path,
                payload,
                content_format=int(ContentFormat.TEXT) if payload else None,
            )
            return Outcome(response.code)
        if kind is OperationKind.WRITE_ATTRIBUTES:
            query = _attribute_query(request.attributes)
            response = await send(peer, CoapCode.PUT, path, query=query)
            return Outcome(response.code)
        if kind is OperationKind.CREATE:
            fmt = self._format(request, peer)
            assert path.object_id is not None
            if request.instance_id is None:
                raise InvalidInput("create needs instance_id: the id of the new instance")
            instance_path = path.child(request.instance_id)
            instance = node_from_body(request.value, instance_path, self.model)
            assert isinstance(instance, LwM2mObjectInstance)
            payload = self._encode(LwM2mObject(path.object_id, {instance.id: instance}), path, fmt)
            response = await send(peer, CoapCode.POST, path, payload, content_format=int(fmt))
            return Outcome(response.code, location=response.location)
        if kind is OperationKind.DELETE:
            response = await send(peer, CoapCode.DELETE, path)
            return Outcome(response.code)
        raise InvalidInput(f"{kind} is not sent through DeviceManager.run")

    def _format(self, request: OperationRequest, peer: Peer) -> ContentFormat:
        # ContentFormat.TEXT is 0, so "no format given" must be tested with None.
        if request.format is not None:
            return request.format
        return preferred_format(peer, request.path, self.model)

    def read_outcome(self, response: Response, path: LwM2mPath, asked: ContentFormat) -> Outcome:
        outcome = Outcome(response.code, content_format=response.content_format)
        if response.ok:
            try:
                outcome.value, outcome.values = decode_value(response, path, asked, self.model)
            except LwM2MError as exc:
                outcome.message = f"the terminal answered, but its payload is not valid: {exc}"
                log.warning("%s: undecodable answer: %s", path, exc)
        elif response.payload:
            outcome.message = response.payload[:200].decode(errors="replace")
        return outcome

    def _encode(self, node: Any, path: LwM2mPath, fmt: ContentFormat) -> bytes:
        try:
            return codec.encode(node, path, fmt, self.model)
        except LwM2MError as exc:
            raise InvalidInput(str(exc)) from None

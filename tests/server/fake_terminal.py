"""A small LwM2M client on aiocoap that tests use as a terminal.

It listens on its own loopback socket and registers from that same socket, so the DM
server's requests come back to it exactly as they would cross a NAT. Values live in a
flat ``{path: value}`` map, encoded and decoded with the core's codecs.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import aiocoap
from aiocoap import Message
from aiocoap.numbers.codes import Code
from aiocoap.resource import ObservableResource, PathCapable, Site

from dm_server.services.values import leaves
from lwm2m_core import codec
from lwm2m_core.codec.records import Record, records_to_node
from lwm2m_core.errors import LwM2MError
from lwm2m_core.link import Link, format_links
from lwm2m_core.model import ObjectModelRepository
from lwm2m_core.numbers import CoapCode, ContentFormat
from lwm2m_core.path import LwM2mPath

#: Objects served even without instances (events get created in them).
EMPTY_OBJECTS = (26243,)


def _code(code: CoapCode) -> Code:
    return Code(int(code))


class ObjectResource(ObservableResource, PathCapable):
    def __init__(self, terminal: FakeTerminal, object_id: int) -> None:
        super().__init__()
        self.terminal = terminal
        self.object_id = object_id

    def _path(self, request: Message) -> LwM2mPath:
        return LwM2mPath(self.object_id, *(int(p) for p in request.opt.uri_path if p))

    async def render(self, request: Message) -> Message:
        t = self.terminal
        t.requests.append((str(request.code), str(self._path(request)), request))
        if t.silent:
            await asyncio.sleep(3600)
        try:
            return await super().render(request)
        except LwM2MError as exc:
            return Message(code=_code(CoapCode.BAD_REQUEST), payload=str(exc).encode())

    async def render_get(self, request: Message) -> Message:
        path = self._path(request)
        t = self.terminal
        if request.opt.accept == ContentFormat.LINK:
            links = [Link(str(path))] + [
                Link(p)
                for p in sorted(
                    {
                        str(LwM2mPath(*q.ids[:3]))
                        for q in t.values
                        if q.starts_with(path) and q != path
                    }
                )
            ]
            return Message(payload=format_links(links).encode(), content_format=ContentFormat.LINK)
        records = [Record(p, v) for p, v in t.values.items() if p.starts_with(path)]
        if not records:
            return Message(code=_code(CoapCode.NOT_FOUND))
        fmt = request.opt.accept if request.opt.accept is not None else ContentFormat.TLV
        node = records_to_node(records, path, t.model)
        return Message(payload=codec.encode(node, path, int(fmt), t.model), content_format=int(fmt))

    async def render_put(self, request: Message) -> Message:
        path = self._path(request)
        if not request.payload:  # Write-Attributes
            self.terminal.attributes[str(path)] = list(request.opt.uri_query)
            return Message(code=_code(CoapCode.CHANGED))
        return self._write(path, request, replace=True)

    async def render_post(self, request: Message) -> Message:
        path = self._path(request)
        t = self.terminal
        if path.depth == 3:
            t.executed.append((str(path), request.payload.decode()))
            return Message(code=_code(CoapCode.CHANGED))
        if path.depth == 1:  # Create
            node = codec.decode(request.payload, path, int(request.opt.content_format), t.model)
            created = list(leaves(node, path))
            for p, v in created:
                t.values[p] = v
            iid = created[0][0].object_instance_id if created else 0
            return Message(
                code=_code(CoapCode.CREATED), location_path=(str(path.object_id), str(iid))
            )
        return self._write(path, request, replace=False)

    async def render_delete(self, request: Message) -> Message:
        path = self._path(request)
        t = self.terminal
        gone = [p for p in t.values if p.starts_with(path)]
        if not gone:
            return Message(code=_code(CoapCode.NOT_FOUND))
        for p in gone:
            del t.values[p]
        return Message(code=_code(CoapCode.DELETED))

    def _write(self, path: LwM2mPath, request: Message, replace: bool) -> Message:
        t = self.terminal
        node = codec.decode(request.payload, path, int(request.opt.content_format), t.model)
        if replace and path.depth >= 3:
            for p in [p for p in t.values if p.starts_with(path)]:
                del t.values[p]
        for p, v in leaves(node, path):
            t.values[p] = v
        self.updated_state()
        return Message(code=_code(CoapCode.CHANGED))


class FakeTerminal:
    def __init__(
        self, endpoint: str, model: ObjectModelRepository, values: dict[str, Any] | None = None
    ) -> None:
        self.endpoint = endpoint
        self.model = model
        self.values: dict[LwM2mPath, Any] = {
            LwM2mPath.parse(p): v for p, v in (values or default_values()).items()
        }
        self.requests: list[tuple[str, str, Message]] = []
        self.executed: list[tuple[str, str]] = []
        self.attributes: dict[str, list[str]] = {}
        self.silent = False
        self.context: Any = None
        self.location = ""
        self.server = ""
        self._objects: dict[int, ObjectResource] = {}

    async def start(self, credentials: dict[str, Any] | None = None) -> FakeTerminal:
        site = Site()
        objects = {p.object_id for p in self.values if p.object_id is not None}
        for oid in sorted(objects | set(EMPTY_OBJECTS)):
            resource = ObjectResource(self, oid)
            self._objects[oid] = resource
            site.add_resource((str(oid),), resource)
            site._resources[(str(oid),)] = resource  # the object path itself
        transports = ["udp6"] + (["tinydtls"] if credentials else [])
        self.context = await aiocoap.Context.create_server_context(
            site, bind=("127.0.0.1", 0), transports=transports
        )
        if credentials:
            self.context.client_credentials.load_from_dict(credentials)
        return self

    def links(self) -> str:
        instances = sorted({(p.object_id, p.object_instance_id) for p in self.values})
        return '</>;rt="oma.lwm2m";ct=112,' + ",".join(f"</{o}/{i}>" for o, i in instances)

    async def request(self, code: Code, uri: str, payload: bytes = b"", **options: Any) -> Message:
        message = Message(code=code, uri=uri, payload=payload, **options)
        return await asyncio.wait_for(self.context.request(message).response, 10)

    async def register(
        self,
        server: str,
        lifetime: int = 60,
        binding: str = "U",
        version: str = "1.1",
        extra: str = "",
    ) -> Message:
        self.server = server
        answer = await self.request(
            aiocoap.POST,
            f"{server}/rd?ep={self.endpoint}&lt={lifetime}&lwm2m={version}&b={binding}{extra}",
            self.links().encode(),
            content_format=ContentFormat.LINK,
        )
        if answer.code == Code.CREATED:
            self.location = "/".join(answer.opt.location_path)
        return answer

    async def update(self, query: str = "") -> Message:
        return await self.request(aiocoap.POST, f"{self.server}/{self.location}{query}")

    async def deregister(self) -> Message:
        return await self.request(aiocoap.DELETE, f"{self.server}/{self.location}")

    async def send(
        self, records: list[Record], fmt: ContentFormat = ContentFormat.SENML_CBOR
    ) -> Message:
        payload = codec.encode_records(records, int(fmt), self.model)
        return await self.request(
            aiocoap.POST, f"{self.server}/dp", payload, content_format=int(fmt)
        )

    def set_value(self, path: str, value: Any) -> None:
        parsed = LwM2mPath.parse(path)
        self.values[parsed] = value
        assert parsed.object_id is not None
        self._objects[parsed.object_id].updated_state()

    async def stop(self) -> None:
        if self.context is not None:
            await self.context.shutdown()


def default_values() -> dict[str, Any]:
    return {
        "/3/0/0": "PosFleet",
        "/3/0/1": "PT-100",
        "/3/0/2": "SN-0001",
        "/3/0/3": "1.0.0",
        "/3/0/13": datetime(2026, 1, 1, tzinfo=UTC),
        "/26241/0/0": 0,
        "/26241/0/1": False,
        "/26241/0/14": "Gangnam store",
    }

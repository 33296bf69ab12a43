"""The agent's CoAP site: every DM operation on ``/O``, ``/O/I``, ``/O/I/R``, ``/O/I/R/RI``.

One aiocoap resource takes the whole path space and maps CoAP requests to LwM2M operations
(TS Core §6.3, Table 6.3.1): GET is Read (Discover with ``Accept: link-format``, Observe with
the Observe option), PUT is Write-replace (Write-Attributes when it carries only a query),
POST on an object is Create, on an instance a partial Write, on a resource Execute, and
DELETE is Delete. Agent, core and codec errors become their CoAP codes here and nowhere else;
nothing in the tree changes when a request fails.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from datetime import datetime

import aiocoap
from aiocoap import resource as coap_resource
from aiocoap.numbers.codes import Code

from device_client.errors import (
    AgentError,
    BadRequest,
    MethodNotAllowed,
    NotAcceptable,
    NotFound,
    Unauthorized,
    UnsupportedContentFormat,
)
from device_client.objects.base import ObjectTree
from device_client.observe import (
    AttributeStore,
    Observation,
    ObservationManager,
    parse_attribute_query,
)
from lwm2m_core import codec
from lwm2m_core.errors import CodecError, LwM2MError, ModelError
from lwm2m_core.link import Link, format_links
from lwm2m_core.model import ResourceType
from lwm2m_core.node import LwM2mSingleResource
from lwm2m_core.numbers import CoapCode, ContentFormat
from lwm2m_core.path import LwM2mPath

#: Objects a DM server may never touch (TS Core §E.1: Security is for bootstrap only).
SERVER_FORBIDDEN_OBJECTS = frozenset({0})
#: Largest Block2 size we send: 2**(6+4) = 1024 bytes.
MAX_BLOCK_SZX = 6
ETAG_BYTES = 8
#: Renderings kept for the later blocks of a Block2 transfer, and for how long.
BLOCK2_CACHE_ENTRIES = 64
BLOCK2_CACHE_SECONDS = 60.0
#: Biggest payload taken by the raw-opaque path (firmware push to /5/0/0).
MAX_RAW_OPAQUE = 16 * 1024 * 1024


def _response(code: CoapCode, payload: bytes = b"", content_format: int | None = None
              ) -> aiocoap.Message:
    message = aiocoap.Message(code=Code(int(code)), payload=payload)
    if content_format is not None:
        message.opt.content_format = int(content_format)
    return message


def _error(exc: AgentError) -> aiocoap.Message:
    return _response(exc.code, exc.message.encode("utf-8")[:256], ContentFormat.TEXT)


class LwM2mSite(coap_resource.PathCapable, aiocoap.interfaces.ObservableResource):
    """Root resource of the agent's CoAP context; also the observation entry point."""

    def __init__(
        self,
        tree: ObjectTree,
        logger: logging.Logger,
        allowed_peer: Callable[[aiocoap.Message], bool] = lambda request: True,
        raw_opaque_paths: frozenset[LwM2mPath] = frozenset(),
    ) -> None:
        super().__init__()
        self.tree = tree
        self.log = logger
        self.allowed_peer = allowed_peer
        self.raw_opaque_paths = raw_opaque_paths
        self.attributes = AttributeStore()
        self.observations = ObservationManager(self.attributes, self._default_periods)
        tree.listeners.append(self.observations.changed)
        self._block2_cache: dict[tuple[object, ...], tuple[float, aiocoap.Message]] = {}

    def _default_periods(self) -> tuple[int, int]:
        try:
            server = self.tree.objects[1].instances[0]
            return int(server.values.get(2, 0)), int(server.values.get(3, 0))  # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError):
            return 0, 0

    async def needs_blockwise_assembly(self, request: aiocoap.Message) -> bool:
        return True

    async def render_to_pipe(self, pipe) -> None:  # type: ignore[no-untyped-def]
        """aiocoap's observation-aware rendering (add_observation, then render) for
        observations we accept, plain rendering for everything else.

        aiocoap 0.4.17 fails (AttributeError) when a resource declines an observation, so
        declined ones never reach its observation path; a broken Block1 sequence from a
        peer (ValueError inside aiocoap) is answered 4.08 instead of an internal error."""
        request = pipe.request
        try:
            if request.opt.observe == 0 and self._observable(request) is not None:
                await aiocoap.interfaces.ObservableResource._render_to_pipe(self, pipe)
            else:
                await self._render_blockwise(pipe)
        except ValueError:
            self.log.info("malformed block-wise request from %s", request.remote.hostinfo)
            pipe.add_response(_response(CoapCode.REQUEST_ENTITY_INCOMPLETE), is_last=True)

    async def _render_blockwise(self, pipe) -> None:  # type: ignore[no-untyped-def]
        """Block1 assembled by aiocoap; Block2 cut here.

        aiocoap's own Block2 cache keys a transfer on all other options, so a peer that
        adds an option on later blocks (Wakaama adds an empty Content-Format) got 4.08.
        Here block 0 renders afresh and later blocks come from that rendering, kept per
        peer, method, path and Accept; without one (expired, or a first request for a
        later block) the resource is rendered again. The ETag tells a client if the
        content changed in between."""
        request = pipe.request
        try:
            request = self._block1.feed_and_take(request)
        except aiocoap.error.ConstructionRenderableError as exc:
            pipe.add_response(exc.to_message(), is_last=True)
            return
        wanted = request.opt.block2
        key = (request.remote.hostinfo, int(request.code), tuple(request.opt.uri_path),
               request.opt.accept)
        cached = self._block2_cache.get(key)
        now = time.monotonic()
        if wanted is not None and wanted.block_number > 0 and cached and cached[0] > now:
            response = cached[1]
        else:
            response = await self.render(request)
            if request.code == Code.GET and len(response.payload) > 1 << (MAX_BLOCK_SZX + 4):
                for stale in [k for k, v in self._block2_cache.items() if v[0] <= now]:
                    del self._block2_cache[stale]
                if len(self._block2_cache) < BLOCK2_CACHE_ENTRIES:
                    self._block2_cache[key] = (now + BLOCK2_CACHE_SECONDS, response)
        szx = min(wanted.size_exponent if wanted else MAX_BLOCK_SZX,
                  request.remote.maximum_block_size_exp, MAX_BLOCK_SZX)
        block_size = 1 << (szx + 4)
        if response.code.is_successful() and (wanted is not None
                                              or len(response.payload) > block_size):
            number = wanted.block_number if wanted else 0
            if number * block_size >= max(len(response.payload), 1):
                pipe.add_response(_error(BadRequest("block beyond the end")), is_last=True)
                return
            etag = hashlib.sha256(response.payload).digest()[:ETAG_BYTES]
            response = response._extract_block(number, szx,
                                                request.remote.maximum_payload_size)
            response.opt.etag = etag
        response.opt.block1 = request.opt.block1
        pipe.add_response(response, is_last=True)

    def _observable(self, request: aiocoap.Message) -> LwM2mPath | None:
        """The path an Observe request may observe, or None (render answers the error)."""
        try:
            if request.code != Code.GET or not self.allowed_peer(request):
                return None
            path = self._path(request)
            if path.is_root or request.opt.accept == ContentFormat.LINK:
                return None
            self.tree.read(path)
            return path
        except (AgentError, LwM2MError):
            return None

    # -- dispatch -----------------------------------------------------------------------
    def _path(self, request: aiocoap.Message) -> LwM2mPath:
        segments = request.opt.uri_path
        if segments and segments[-1] == "":
            segments = segments[:-1]
        try:
            path = LwM2mPath.parse("/" + "/".join(segments))
        except LwM2MError:
            raise NotFound(f"/{'/'.join(segments)} is not an LwM2M path") from None
        if path.object_id in SERVER_FORBIDDEN_OBJECTS:
            raise Unauthorized(f"object {path.object_id} is not accessible to a DM server")
        return path

    async def render(self, request: aiocoap.Message) -> aiocoap.Message:
        try:
            if not self.allowed_peer(request):
                raise Unauthorized("requests are accepted from the registered server only")
            path = self._path(request)
            return await self._operation(request, path)
        except AgentError as exc:
            self.log.info("%s %s -> %s %s", request.code, request.get_request_uri(),
                          CoapCode(int(exc.code)).dotted, exc.message)
            return _error(exc)
        except LwM2MError as exc:
            self.log.info("%s %s -> 4.00 %s", request.code, request.get_request_uri(), exc)
            return _error(BadRequest(str(exc)))

    async def _operation(self, request: aiocoap.Message, path: LwM2mPath) -> aiocoap.Message:
        code = request.code
        if code == Code.GET:
            if request.opt.accept == ContentFormat.LINK:
                return self._discover(path)
            return self._read(request, path)
        if code == Code.PUT:
            if request.opt.uri_query and not request.payload:
                return self._write_attributes(request, path)
            return self._write(request, path, replace=True)
        if code == Code.POST:
            if path.is_object:
                return self._create(request, path)
            if path.is_object_instance:
                return self._write(request, path, replace=False)
            if path.is_resource:
                model = self.tree.resource_model(path)
                if model.operations.executable:
                    return await self._execute(request, path)
                if model.multiple and model.operations.writable and request.payload:
                    return self._write(request, path, replace=False)
                raise MethodNotAllowed(f"{path} ({model.name}) is not executable")
            raise MethodNotAllowed("POST is not defined on this path")
        if code == Code.DELETE:
            self.tree.delete(path)
            self.log.info("deleted %s", path)
            return _response(CoapCode.DELETED)
        raise MethodNotAllowed(f"method {code} is not supported")

    # -- Read / Discover ----------------------------------------------------------------
    def _read_format(self, request: aiocoap.Message, path: LwM2mPath) -> ContentFormat:
        accept = request.opt.accept
        if accept is not None:
            try:
                fmt = codec.resolve_format(int(accept))
            except CodecError:
                raise NotAcceptable(f"cannot answer in content format {int(accept)}") from None
            if fmt not in codec.NODE_FORMATS:
                raise NotAcceptable(f"cannot answer in content format {int(accept)}")
            return fmt
        if path.depth >= 3:
            model = self.tree.resource_model(path)
            if not model.multiple or path.is_resource_instance:
                opaque = model.type is ResourceType.OPAQUE
                return ContentFormat.OPAQUE if opaque else ContentFormat.TEXT
        return ContentFormat.TLV

    def _read(self, request: aiocoap.Message, path: LwM2mPath) -> aiocoap.Message:
        fmt = self._read_format(request, path)
        node = self.tree.read(path)
        try:
            payload = codec.encode(node, path, fmt, self.tree.models)
        except CodecError as exc:
            raise NotAcceptable(f"cannot encode {path} as {fmt.name}: {exc.message}") from None
        return _response(CoapCode.CONTENT, payload, request.opt.accept or fmt)

    def _discover(self, path: LwM2mPath) -> aiocoap.Message:
        if path.is_root:
            raise MethodNotAllowed("Discover needs an object, instance or resource path")
        links = []
        for target in self.tree.discover_paths(path):
            params: dict[str, object] = dict(self.attributes.get(target))
            if target.is_resource:
                model = self.tree.resource_model(target)
                if model.multiple and model.operations.readable:
                    try:
                        value = self.tree.instance(target).read(model.id)
                        params["dim"] = len(value) if isinstance(value, dict) else 0
                    except AgentError:
                        pass
            if target.is_object:
                version = self.tree.models.get_object(target.object_id).version  # type: ignore[arg-type]
                if version and version != "1.0":
                    params["ver"] = version
            links.append(Link(str(target), params))  # type: ignore[arg-type]
        return _response(CoapCode.CONTENT, format_links(links).encode(), ContentFormat.LINK)

    # -- Write / Write-Attributes ---------------------------------------------------------
    def _write(self, request: aiocoap.Message, path: LwM2mPath, replace: bool) -> aiocoap.Message:
        content_format = request.opt.content_format
        if path in self.raw_opaque_paths and content_format in (
            None, ContentFormat.OPAQUE, ContentFormat.LEGACY_OPAQUE
        ):
            if len(request.payload) > MAX_RAW_OPAQUE:
                raise BadRequest(f"package larger than {MAX_RAW_OPAQUE} bytes")
            node = LwM2mSingleResource(
                path.resource_id, ResourceType.OPAQUE, bytes(request.payload))  # type: ignore[arg-type]
        else:
            if content_format is None:
                if path.depth < 3:
                    raise BadRequest("a Write needs a Content-Format option")
                content_format = ContentFormat.TEXT
            try:
                fmt = codec.resolve_format(int(content_format))
            except CodecError:
                raise UnsupportedContentFormat(
                    f"content format {int(content_format)} is not supported") from None
            if fmt not in codec.NODE_FORMATS:
                raise UnsupportedContentFormat(f"content format {fmt.name} cannot carry values")
            try:
                node = codec.decode(bytes(request.payload), path, fmt, self.tree.models)
            except (CodecError, ModelError) as exc:
                raise BadRequest(f"payload for {path}: {exc.message}") from None
        self.tree.write(path, node, replace=replace)
        self.log.info("write %s (%s)", path, "replace" if replace else "update")
        return _response(CoapCode.CHANGED)

    def _write_attributes(self, request: aiocoap.Message, path: LwM2mPath) -> aiocoap.Message:
        changes = parse_attribute_query(tuple(request.opt.uri_query))
        resource = None
        if path.depth >= 3:
            resource = self.tree.resource_model(path)
            self.tree.instance(path)
        elif path.depth == 2:
            self.tree.instance(path)
        elif path.depth == 1:
            self.tree.object(path)
        self.attributes.write(path, changes, resource)
        return _response(CoapCode.CHANGED)

    # -- Execute / Create -----------------------------------------------------------------
    async def _execute(self, request: aiocoap.Message, path: LwM2mPath) -> aiocoap.Message:
        try:
            arguments = bytes(request.payload).decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest("execute arguments must be UTF-8 text") from None
        await self.tree.execute(path, arguments)
        self.log.info("execute %s %s", path, arguments[:60])
        return _response(CoapCode.CHANGED)

    def _create(self, request: aiocoap.Message, path: LwM2mPath) -> aiocoap.Message:
        self.tree.check_create(path)
        content_format = request.opt.content_format
        if content_format is None:
            raise BadRequest("a Create needs a Content-Format option")
        try:
            fmt = codec.resolve_format(int(content_format))
            node = codec.decode(bytes(request.payload), path, fmt, self.tree.models)
        except (CodecError, ModelError) as exc:
            if isinstance(exc, CodecError) and "not supported" in exc.message:
                raise UnsupportedContentFormat(exc.message) from None
            raise BadRequest(f"payload for {path}: {exc.message}") from None
        instance_id = self.tree.create(path, node)
        self.log.info("created %s/%d", path, instance_id)
        response = _response(CoapCode.CREATED)
        response.opt.location_path = (str(path.object_id), str(instance_id))
        return response

    # -- Observe --------------------------------------------------------------------------
    async def add_observation(self, request: aiocoap.Message, serverobservation) -> None:  # type: ignore[no-untyped-def]
        checked = self._observable(request)
        if checked is None:  # changed since render_to_pipe looked: observe nothing
            serverobservation.accept(lambda: None)
            return
        path = checked

        def read_number() -> float | None:
            if path.depth < 3:
                return None
            try:
                node = self.tree.read(path)
            except (AgentError, LwM2MError):
                return None
            value = getattr(node, "value", None)
            if isinstance(value, datetime):
                return value.timestamp()
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return None
            return float(value)

        obs = Observation(
            path=path,
            trigger=serverobservation.trigger,
            read_number=read_number,
            attributes=lambda: self.attributes.effective(path),
        )
        self.observations.add(obs)
        serverobservation.accept(lambda: self.observations.remove(obs))
        self.log.info("observe %s", path)

    def close(self) -> None:
        self.observations.close()

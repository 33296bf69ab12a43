"""A small LwM2M server for the agent's tests: registration, Send, and DM requests.

Real aiocoap over loopback. The stub answers /rd and /dp like a DM server and records what
it got; ``request()`` sends DM requests to the registered agent from the same socket.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field

import aiocoap
from aiocoap import resource
from aiocoap.numbers.codes import Code

from device_client.coap_request import exclusive_port
from lwm2m_core import codec
from lwm2m_core.link import parse_registration
from lwm2m_core.model import ObjectModelRepository
from lwm2m_core.numbers import ContentFormat

EVENT_ID = 0


@dataclass
class Registration:
    endpoint: str
    lifetime: int
    location: str
    address: str
    objects: dict
    updates: int = 0


@dataclass
class StubState:
    registrations: dict[str, Registration] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)
    event_records: list = field(default_factory=list)
    deregistered: list[str] = field(default_factory=list)
    register_count: int = 0
    register_times: list[float] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    refuse_send: bool = False


class _Rd(resource.Resource, resource.PathCapable):
    def __init__(self, state: StubState):
        super().__init__()
        self.state = state
        self.ids = itertools.count(1)

    async def render(self, request):
        path = request.opt.uri_path[1:]
        query = dict(q.split("=", 1) for q in request.opt.uri_query if "=" in q)
        st = self.state
        if not path and request.code == Code.POST:
            ep = query.get("ep")
            if not ep:
                return aiocoap.Message(code=Code.BAD_REQUEST)
            reg = parse_registration(request.payload)
            loc = f"r{next(self.ids)}"
            st.registrations[ep] = Registration(
                ep, int(query.get("lt", 86400)), loc, request.remote.hostinfo,
                dict(reg.objects))
            st.register_count += 1
            st.register_times.append(asyncio.get_running_loop().time())
            st.changed.set()
            m = aiocoap.Message(code=Code.CREATED)
            m.opt.location_path = ("rd", loc)
            return m
        if len(path) == 1:
            reg = next((r for r in st.registrations.values() if r.location == path[0]), None)
            if reg is None:
                return aiocoap.Message(code=Code.NOT_FOUND)
            if request.code == Code.POST:
                reg.updates += 1
                if "lt" in query:
                    reg.lifetime = int(query["lt"])
                if request.payload:
                    reg.objects = dict(parse_registration(request.payload).objects)
                st.changed.set()
                return aiocoap.Message(code=Code.CHANGED)
            if request.code == Code.DELETE:
                del st.registrations[reg.endpoint]
                st.deregistered.append(reg.endpoint)
                st.changed.set()
                return aiocoap.Message(code=Code.DELETED)
        return aiocoap.Message(code=Code.METHOD_NOT_ALLOWED)


class _Root(resource.Resource, resource.PathCapable):
    """Routes /rd, /rd/<id> and /dp (aiocoap's Site does not route /rd and /rd/x to one)."""

    def __init__(self, rd, dp):
        super().__init__()
        self.rd, self.dp = rd, dp

    async def render(self, request):
        path = request.opt.uri_path
        if path[:1] == ("rd",):
            return await self.rd.render(request)
        if path == ("dp",) and request.code == Code.POST:
            return await self.dp.render_post(request)
        return aiocoap.Message(code=Code.NOT_FOUND)


class _Dp(resource.Resource):
    def __init__(self, state: StubState, models: ObjectModelRepository):
        super().__init__()
        self.state = state
        self.models = models

    async def render_post(self, request):
        if self.state.refuse_send:
            return aiocoap.Message(code=Code.SERVICE_UNAVAILABLE)
        addresses = {r.address for r in self.state.registrations.values()}
        if request.remote.hostinfo not in addresses:
            return aiocoap.Message(code=Code.FORBIDDEN, payload=b"not registered")
        records = codec.decode_records(request.payload, request.opt.content_format, self.models)
        for record in records:
            if record.path.object_id == 26243 and record.path.resource_id == EVENT_ID:
                self.state.events.append(record.value)
        self.state.event_records.extend(records)
        self.state.changed.set()
        return aiocoap.Message(code=Code.CHANGED)


def bound_port(context) -> int:
    """The UDP port an aiocoap context bound to (when asked for port 0)."""
    for interface in context.request_interfaces:
        message_interface = getattr(getattr(interface, "token_interface", None),
                                    "message_interface", None)
        if message_interface is not None and hasattr(message_interface, "_local_port"):
            return message_interface.transport.get_extra_info("socket").getsockname()[1]
    raise RuntimeError("context has no UDP transport")


class StubServer:
    """Start with ``await StubServer.start()``; ``uri`` is what the agent registers with."""

    def __init__(self, context, port, state, models):
        self.context, self.port, self.state, self.models = context, port, state, models

    @classmethod
    async def start(cls, port: int = 0) -> StubServer:
        models = ObjectModelRepository.default()
        state = StubState()
        site = _Root(_Rd(state), _Dp(state, models))
        with exclusive_port():  # never share the port with another process's socket
            context = await aiocoap.Context.create_server_context(
                site, bind=("127.0.0.1", port), transports=["udp6"])
        if port == 0:
            port = bound_port(context)
        return cls(context, port, state, models)

    @property
    def uri(self) -> str:
        return f"coap://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        if self.context is not None:
            await self.context.shutdown()
            self.context = None

    async def wait_for(self, predicate, timeout: float = 5.0) -> None:
        async def loop():
            while not predicate():
                self.state.changed.clear()
                await self.state.changed.wait()
        await asyncio.wait_for(loop(), timeout)

    async def request(self, endpoint: str, code, path: str, payload: bytes = b"",
                      content_format=None, accept=None, query=(), observe=None, timeout=5.0):
        reg = self.state.registrations[endpoint]
        message = aiocoap.Message(code=code, uri=f"coap://{reg.address}{path}", payload=payload)
        if query:
            message.opt.uri_query = tuple(query)
        if content_format is not None:
            message.opt.content_format = int(content_format)
        if accept is not None:
            message.opt.accept = int(accept)
        if observe is not None:
            message.opt.observe = observe
            return self.context.request(message)
        return await asyncio.wait_for(self.context.request(message).response, timeout)

    def decode(self, response, path: str):
        from lwm2m_core.path import LwM2mPath
        return codec.decode(response.payload, LwM2mPath.parse(path),
                            response.opt.content_format, self.models)


__all__ = ["ContentFormat", "StubServer"]


def main() -> None:
    """``python -m tests.device.stub_server --port 15690``: an in-memory sink for measuring
    the simulator without the DM server's database in the way."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, default=15690)
    port = parser.parse_args().port

    async def run() -> None:
        server = await StubServer.start(port)
        print(f"stub LwM2M server on coap://127.0.0.1:{server.port}", flush=True)
        last = 0
        while True:
            await asyncio.sleep(10)
            state = server.state
            print(f"registered={len(state.registrations)} registers={state.register_count} "
                  f"events={len(state.events)} (+{len(state.events) - last})", flush=True)
            last = len(state.events)

    asyncio.run(run())


if __name__ == "__main__":
    main()

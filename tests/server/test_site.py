"""The CoAP site: routing, the per-host rate limiter and the remembered address texts."""

from __future__ import annotations

import aiocoap
import aiocoap.resource as resource
import pytest
from aiocoap.transports.udp6 import UDP6EndpointAddress

from dm_server.lwm2m import site
from dm_server.lwm2m.site import GuardedSite, RateLimiter, remote_hostinfo, source_host


class Interface:
    """Stands for the socket's owner, which a remote only keeps a weak reference to."""


INTERFACE = Interface()


def udp_remote(sockaddr: tuple[str, int, int, int]) -> UDP6EndpointAddress:
    return UDP6EndpointAddress(sockaddr, interface=INTERFACE)


@pytest.mark.parametrize(
    ("sockaddr", "expected"),
    [
        (("::ffff:127.0.0.1", 5683, 0, 0), "127.0.0.1"),  # the default port is left out
        (("::1", 40000, 0, 0), "[::1]:40000"),
        (("2001:db8:0:0:0:0:0:7", 1, 0, 0), "[2001:db8::7]:1"),
    ],
)
def test_remembered_hostinfo_is_aiocoaps_own(sockaddr, expected):
    remote = udp_remote(sockaddr)
    assert remote_hostinfo(remote) == remote.hostinfo == expected
    # Asked again (a new remote object for the same address, as for every datagram).
    assert remote_hostinfo(udp_remote(sockaddr)) == expected


def test_remembered_addresses_are_bounded(monkeypatch):
    monkeypatch.setattr(site, "MAX_REMEMBERED_ADDRESSES", 10)
    monkeypatch.setattr(site, "_hostinfo_by_sockaddr", {})
    for port in range(1, 26):
        remote = udp_remote(("::ffff:10.0.0.1", port, 0, 0))
        assert remote_hostinfo(remote) == f"10.0.0.1:{port}"
    assert len(site._hostinfo_by_sockaddr) <= 10


def test_source_host_joins_the_ports_of_one_host():
    a = udp_remote(("::ffff:10.0.0.2", 1000, 0, 0))
    b = udp_remote(("::1", 2000, 0, 0))
    assert source_host(a) == "10.0.0.2"
    assert source_host(b) == "::1"


def test_rate_limiter_refuses_past_the_burst_and_refills():
    limiter = RateLimiter(rate=10, burst=3)
    assert [limiter.allow("h", now=0.0) for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("other", now=0.0)
    assert limiter.allow("h", now=0.1)  # one token back after 1/rate seconds
    assert not limiter.allow("h", now=0.1)


class ShowsPath(resource.Resource, resource.PathCapable):
    """Answers with the path it was handed (after the site removed its own part)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    async def render(self, request: aiocoap.Message) -> aiocoap.Message:
        shown = "/".join(request.opt.uri_path)
        return aiocoap.Message(code=aiocoap.CONTENT, payload=f"{self.name}:{shown}".encode())


class Leaf(resource.Resource):
    async def render_get(self, request: aiocoap.Message) -> aiocoap.Message:
        return aiocoap.Message(
            code=aiocoap.CONTENT, payload=b"leaf:" + "/".join(request.opt.uri_path).encode()
        )


async def test_routing_hands_each_resource_its_own_part_of_the_path():
    site = GuardedSite(RateLimiter(rate=1000, burst=1000), max_payload_bytes=1024)
    site.add_resource(("rd",), Leaf())
    site.add_resource(("rd",), ShowsPath("registration"))
    site.add_resource(("fw", "pkg"), ShowsPath("firmware"))
    server = await aiocoap.Context.create_server_context(
        site, bind=("127.0.0.1", 0), transports=["udp6"]
    )
    client = await aiocoap.Context.create_client_context()
    port = next(
        i.token_interface.message_interface.transport.get_extra_info("socket").getsockname()[1]
        for i in server.request_interfaces
    )
    try:

        async def get(path: str) -> tuple[str, bytes]:
            request = aiocoap.Message(code=aiocoap.GET, uri=f"coap://127.0.0.1:{port}/{path}")
            answer = await client.request(request).response
            return answer.code.dotted, answer.payload

        assert await get("rd") == ("2.05", b"leaf:")
        assert await get("rd/abc123") == ("2.05", b"registration:abc123")
        assert await get("fw/pkg/1.2.0/a.bin") == ("2.05", b"firmware:1.2.0/a.bin")
        assert (await get("nothing/here"))[0] == "4.04"
        assert (await get("fw"))[0] == "4.04"
    finally:
        await client.shutdown()
        await server.shutdown()

"""The CoAP site's guards: the per-host rate limiter and the remembered address texts."""

from __future__ import annotations

import pytest
from aiocoap.transports.udp6 import UDP6EndpointAddress

from dm_server.lwm2m import site
from dm_server.lwm2m.site import RateLimiter, remote_hostinfo, source_host


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

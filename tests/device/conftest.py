"""Fixtures for the agent's tests: a stub LwM2M server and agents on loopback."""

from __future__ import annotations

import asyncio

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from device_client.agent import Agent
from device_client.settings import TerminalSettings
from posfleet.licence_token import public_key_text
from tests.device.stub_server import StubServer


async def wait_registered(agent, timeout: float = 5.0) -> None:
    """Until the agent itself has processed its 2.01 (not only the server its Register)."""
    async with asyncio.timeout(timeout):
        await agent.registration.registered.wait()


@pytest.fixture
def manufacturer_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
async def stub():
    server = await StubServer.start()
    yield server
    await server.stop()


@pytest.fixture
def make_settings(tmp_path, manufacturer_key):
    def make(server_uri: str, endpoint: str = "t-test", **changes) -> TerminalSettings:
        values = dict(
            server_uri=server_uri, endpoint=endpoint, data_dir=tmp_path / endpoint,
            lifetime=60, backoff_initial=0.05, backoff_max=0.5, request_timeout=2.0,
            send_interval=0.05, manufacturer_key=public_key_text(manufacturer_key.public_key()),
        )
        values.update(changes)
        return TerminalSettings(**values)
    return make


@pytest.fixture
async def agent(stub, make_settings):
    """A registered agent talking to the stub."""
    a = Agent(make_settings(stub.uri))
    await a.start()
    await wait_registered(a)
    yield a
    await a.stop()

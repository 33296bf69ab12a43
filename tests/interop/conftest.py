"""Fixtures for the interoperability tests: third-party peers, installed and driven here."""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.interop import peers, servers


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this folder talks to a third-party peer: mark it ``interop``."""
    for item in items:
        if peers.INTEROP_DIR in item.path.parents:
            item.add_marker(pytest.mark.interop)


@pytest.fixture(scope="session")
def node_lib() -> None:
    """lwm2m-node-lib installed from package-lock.json with ``npm ci`` (once per machine)."""
    reason = peers.install_node_lib()
    if reason:
        pytest.skip(reason)


@pytest.fixture
async def node_client(node_lib: None) -> AsyncIterator[peers.InteractivePeer]:
    """lwm2m-node-lib's interactive client, stopped after the test."""
    peer = await peers.start_node_client()
    try:
        yield peer
    finally:
        await peer.close()


@pytest.fixture
async def node_server(node_lib: None) -> AsyncIterator[peers.NodeServer]:
    """lwm2m-node-lib's interactive server listening on a free loopback port."""
    server = await peers.start_node_server()
    try:
        yield server
    finally:
        await server.peer.close()


@pytest.fixture(scope="session")
def libcoap_client() -> str:
    """libcoap's command-line client (Debian libcoap3-bin)."""
    if shutil.which(peers.LIBCOAP_CLIENT) is None:
        pytest.skip(f"{peers.LIBCOAP_CLIENT} missing: apt-get install libcoap3-bin")
    return peers.LIBCOAP_CLIENT


@pytest.fixture(scope="session")
def dm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.ServerProcess]:
    """Our DM server as its own process (NoSec CoAP, dev auto-accept), shared by the folder."""
    if importlib.util.find_spec("dm_server.cli") is None:
        pytest.skip("dm_server.cli (posfleet server) is not there yet")
    server = servers.start_server(tmp_path_factory.mktemp("dm-server"))
    try:
        yield server
    finally:
        server.stop()

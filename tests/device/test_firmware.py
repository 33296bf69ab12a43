"""Firmware update (object 5): signed packages, pull over CoAP block-wise with resume, push
with Block1, install into versioned folders, restart, confirmation and rollback."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path

import aiocoap
import pytest
from aiocoap import resource
from aiocoap.numbers.codes import Code
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from device_client.agent import run_terminal
from device_client.coap_request import exclusive_port
from dm_server.firmware.coap import PackageResource
from dm_server.firmware.store import PackageRefused, PackageStore
from lwm2m_core.numbers import ContentFormat, FirmwareUpdateResult, FirmwareUpdateState
from posfleet.firmware_package import (
    IntegrityError,
    UnsupportedPackage,
    build_package,
    tar_folder,
    verify_package,
)
from tests.device.stub_server import bound_port

EP = "t-fw"


def make_package(key: Ed25519PrivateKey, tmp: Path, version: str, config: str | None = None,
                 filler: int = 6000) -> bytes:
    folder = tmp / f"src-{version}"
    folder.mkdir(parents=True)
    (folder / "app.txt").write_text(f"cashier app {version}\n")
    (folder / "app.bin").write_bytes(random.Random(version).randbytes(filler))  # incompressible
    (folder / "bin").mkdir()
    (folder / "bin" / "run").write_text("#!/bin/sh\n")
    if config is None:
        config = json.dumps({"version": version, "app_version": f"posfleet-pos {version}"})
    (folder / "terminal.json").write_text(config)
    return build_package(key, "posfleet-terminal", version, tar_folder(folder))


def test_package_verification(manufacturer_key, tmp_path):
    data = make_package(manufacturer_key, tmp_path, "1.1.0")
    package = verify_package(data, [manufacturer_key.public_key()])
    assert package.manifest.version == "1.1.0"
    tampered = bytearray(data)
    tampered[-10] ^= 0x01
    with pytest.raises(IntegrityError, match="SHA-256"):
        verify_package(bytes(tampered), [manufacturer_key.public_key()])
    with pytest.raises(IntegrityError, match="not trusted"):
        verify_package(data, [Ed25519PrivateKey.generate().public_key()])
    with pytest.raises(IntegrityError):
        verify_package(data[:-1], [manufacturer_key.public_key()])
    with pytest.raises(UnsupportedPackage):
        verify_package(b"PK\x03\x04 a zip file", [manufacturer_key.public_key()])
    forged = bytearray(data)
    forged[data.index(b'"1.1.0"') + 1] = ord("9")  # manifest edited after signing
    with pytest.raises(IntegrityError, match="signature"):
        verify_package(bytes(forged), [manufacturer_key.public_key()])


def test_store_refuses_bad_and_conflicting_packages(manufacturer_key, tmp_path):
    store = PackageStore(tmp_path / "store", lambda: [manufacturer_key.public_key()])
    good = make_package(manufacturer_key, tmp_path, "2.0.0")
    stored = store.add(good)
    assert store.add(good) == stored  # same bytes: idempotent
    assert [p.file_name for p in store.list()] == ["posfleet-terminal-2.0.0.pfpkg"]
    other = make_package(manufacturer_key, tmp_path / "b", "2.0.0", filler=10)
    with pytest.raises(PackageRefused, match="already exists"):
        store.add(other)
    with pytest.raises(PackageRefused):
        store.add(make_package(Ed25519PrivateKey.generate(), tmp_path / "c", "2.0.1"))
    assert len(store.list()) == 1


class FlakyPackages(PackageResource):
    """Answers 5.03 once for one block, to interrupt a download; records block numbers."""

    def __init__(self, store: PackageStore, fail_block: int | None) -> None:
        super().__init__(store)
        self.fail_block = fail_block
        self.blocks: list[int] = []

    async def render(self, request):
        number = request.opt.block2.block_number if request.opt.block2 else 0
        self.blocks.append(number)
        if number == self.fail_block:
            self.fail_block = None
            return aiocoap.Message(code=Code.SERVICE_UNAVAILABLE)
        return await super().render(request)


@pytest.fixture
async def package_server(manufacturer_key, tmp_path):
    store = PackageStore(tmp_path / "store", lambda: [manufacturer_key.public_key()])
    packages = FlakyPackages(store, fail_block=3)
    site = resource.Site()
    site.add_resource(["fw"], packages)
    with exclusive_port():
        context = await aiocoap.Context.create_server_context(
            site, bind=("127.0.0.1", 0), transports=["udp6"])
    packages.uri = f"coap://127.0.0.1:{bound_port(context)}/fw"
    yield packages
    await context.shutdown()


@pytest.fixture
async def terminal(stub, make_settings):
    """The agent under its restart loop (as `posfleet terminal` runs it)."""
    settings = make_settings(stub.uri, endpoint=EP, firmware_confirm_timeout=5.0)
    stop = asyncio.Event()
    task = asyncio.create_task(run_terminal(settings, stop))
    await stub.wait_for(lambda: EP in stub.state.registrations)
    yield settings
    stop.set()
    await asyncio.wait_for(task, 10)


async def read(stub, path: str) -> bytes:
    response = await stub.request(EP, Code.GET, path)
    assert response.code == Code.CONTENT, (path, response)
    return response.payload


async def wait_value(stub, path: str, wanted: bytes, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while True:
            try:
                if await read(stub, path) == wanted:
                    return
            except (KeyError, AssertionError, aiocoap.error.Error):
                pass  # restarting / re-registering
            await asyncio.sleep(0.05)


async def test_pull_over_coap_with_resume_then_install(
        terminal, stub, package_server, manufacturer_key, tmp_path):
    data = make_package(manufacturer_key, tmp_path, "1.2.0")
    package_server.store.add(data)
    uri = f"{package_server.uri}/posfleet-terminal-1.2.0.pfpkg"
    response = await stub.request(EP, Code.PUT, "/5/0/1", uri.encode(),
                                  content_format=ContentFormat.TEXT)
    assert response.code == Code.CHANGED
    await wait_value(stub, "/5/0/3", b"%d" % FirmwareUpdateState.DOWNLOADED)
    blocks = package_server.blocks
    # Block 3 failed once and was asked again; blocks before it were not fetched twice.
    assert blocks[:5] == [0, 1, 2, 3, 3]
    assert sorted(set(blocks)) == list(range(len(data) // 1024 + 1))
    assert await read(stub, "/5/0/7") == b"1.2.0"
    registrations = stub.state.register_count
    assert (await stub.request(EP, Code.POST, "/5/0/2")).code == Code.CHANGED
    await stub.wait_for(lambda: stub.state.register_count > registrations, timeout=10)
    await wait_value(stub, "/5/0/5", b"%d" % FirmwareUpdateResult.SUCCESS)
    assert await read(stub, "/3/0/3") == b"1.2.0"
    assert await read(stub, "/3/0/19") == b"posfleet-pos 1.2.0"
    software = terminal.data_dir / "software"
    assert (software / "current").resolve().name == "1.2.0"
    assert (software / "1.2.0" / "bin" / "run").is_file()


async def test_push_with_block1_and_bad_packages(terminal, stub, manufacturer_key, tmp_path):
    foreign = make_package(Ed25519PrivateKey.generate(), tmp_path / "f", "6.6.6")
    response = await stub.request(EP, Code.PUT, "/5/0/0", foreign,
                                  content_format=ContentFormat.OPAQUE)
    assert response.code == Code.CHANGED  # the Write succeeded; the package did not
    assert await read(stub, "/5/0/3") == b"%d" % FirmwareUpdateState.IDLE
    assert await read(stub, "/5/0/5") == b"%d" % FirmwareUpdateResult.INTEGRITY_CHECK_FAILURE
    await stub.request(EP, Code.PUT, "/5/0/0", b"garbage" * 100,
                       content_format=ContentFormat.OPAQUE)
    assert await read(stub, "/5/0/5") == b"%d" % FirmwareUpdateResult.UNSUPPORTED_PACKAGE_TYPE
    assert (await stub.request(EP, Code.POST, "/5/0/2")).code == Code.METHOD_NOT_ALLOWED
    assert await read(stub, "/3/0/3") == b"1.0.0"
    assert not (terminal.data_dir / "software" / "6.6.6").exists()

    good = make_package(manufacturer_key, tmp_path / "g", "1.3.0")
    assert len(good) > 4096  # several Block1 blocks
    response = await stub.request(EP, Code.PUT, "/5/0/0", good,
                                  content_format=ContentFormat.OPAQUE)
    assert response.code == Code.CHANGED
    assert await read(stub, "/5/0/3") == b"%d" % FirmwareUpdateState.DOWNLOADED
    assert (await stub.request(EP, Code.POST, "/5/0/2")).code == Code.CHANGED
    await wait_value(stub, "/3/0/3", b"1.3.0")
    await wait_value(stub, "/5/0/5", b"%d" % FirmwareUpdateResult.SUCCESS)


async def test_version_that_cannot_start_is_rolled_back(terminal, stub, manufacturer_key,
                                                        tmp_path):
    broken = make_package(manufacturer_key, tmp_path, "1.4.0", config="{not json")
    await stub.request(EP, Code.PUT, "/5/0/0", broken, content_format=ContentFormat.OPAQUE)
    assert await read(stub, "/5/0/3") == b"%d" % FirmwareUpdateState.DOWNLOADED
    registrations = stub.state.register_count
    assert (await stub.request(EP, Code.POST, "/5/0/2")).code == Code.CHANGED
    await stub.wait_for(lambda: stub.state.register_count > registrations, timeout=10)
    await wait_value(stub, "/5/0/5", b"%d" % FirmwareUpdateResult.UPDATE_FAILED)
    assert await read(stub, "/3/0/3") == b"1.0.0"
    assert await read(stub, "/5/0/3") == b"%d" % FirmwareUpdateState.IDLE
    software = terminal.data_dir / "software"
    assert not (software / "current").exists()
    assert not (software / "1.4.0").exists()


async def test_reboot_restarts_and_reregisters(terminal, stub):
    registrations = stub.state.register_count
    assert (await stub.request(EP, Code.POST, "/3/0/4")).code == Code.CHANGED
    await stub.wait_for(lambda: stub.state.register_count > registrations, timeout=10)
    assert EP in stub.state.deregistered  # clean: de-registered before the restart
    assert await read(stub, "/3/0/2") == b"SN-t-fw"


async def test_factory_reset_rules(terminal, stub):
    serial = b"SN-t-fw"
    response = await stub.request(EP, Code.POST, "/3/0/5")
    assert response.code == Code.BAD_REQUEST  # no confirmation
    response = await stub.request(EP, Code.POST, "/3/0/5", b"0='SN-wrong'")
    assert response.code == Code.BAD_REQUEST
    await stub.request(EP, Code.PUT, "/26241/0/14", b"Shop A", content_format=ContentFormat.TEXT)
    response = await stub.request(EP, Code.POST, "/3/0/5", b"0='" + serial + b"'")
    assert response.code == Code.CHANGED  # no shift, no pending events: allowed
    registrations = stub.state.register_count
    await stub.wait_for(lambda: stub.state.register_count > registrations, timeout=10)
    assert await read(stub, "/26241/0/14") == b""  # store name wiped with the local state

"""Firmware / software update of the terminal (object 5) and its versioned software folders.

States and results follow object 5 (``FirmwareUpdateState``, ``FirmwareUpdateResult``):
the server writes a Package URI (pull: coap/coaps block-wise, http/https with Range, both
resumed after an interruption) or the package itself (push, Block1 to /5/0/0). A package is
accepted only after its Ed25519 signature, size and SHA-256 check out
(:mod:`posfleet.firmware_package`); a bad one ends in Idle with the matching Update Result and
changes nothing. Execute Update unpacks into ``software/<version>/``, switches the
``software/current`` link, and restarts the agent. The new software must then come up (its
``terminal.json`` readable) and register within ``firmware_confirm_timeout`` seconds, or the
agent switches back to the previous folder, reports Update Failed and restarts again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiocoap
from aiocoap.numbers.codes import Code
from aiocoap.optiontypes import BlockOption
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from device_client import coap_request
from device_client.errors import BadRequest, MethodNotAllowed
from device_client.objects.base import InstanceEnabler, ResourceValue
from lwm2m_core.numbers import (
    FirmwareDeliveryMethod,
    FirmwareProtocol,
    FirmwareUpdateResult,
    FirmwareUpdateState,
)
from posfleet.firmware_package import (
    MAX_PACKAGE_BYTES,
    IntegrityError,
    Manifest,
    PackageError,
    UnsupportedPackage,
    unpack_payload,
    verify_package,
)

State, Result = FirmwareUpdateState, FirmwareUpdateResult
#: Block size of pull downloads over CoAP: 2**(4+6) = 1024 bytes.
BLOCK_SIZE_EXPONENT = 6
BLOCK_SIZE = 1 << (BLOCK_SIZE_EXPONENT + 4)
#: Tries per download before giving up with Connection Lost (resumable later).
DOWNLOAD_ATTEMPTS = 5
DOWNLOAD_RETRY_MAX_WAIT = 30.0
#: Starts of a new software version without confirmation before it is rolled back.
MAX_UNCONFIRMED_STARTS = 2
APP_CONFIG = "terminal.json"
MANIFEST_FILE = ".manifest.json"
CURRENT_LINK = "current"


class R5:
    PACKAGE = 0
    PACKAGE_URI = 1
    UPDATE = 2
    STATE = 3
    RESULT = 5
    PKG_NAME = 6
    PKG_VERSION = 7
    PROTOCOLS = 8
    DELIVERY = 9
    CANCEL = 10
    LAST_CHANGE = 12


class DownloadFailed(Exception):
    def __init__(self, result: FirmwareUpdateResult, message: str) -> None:
        super().__init__(message)
        self.result = result


@dataclass
class FirmwareRecord:
    """What survives a restart: object 5's state and a pending (unconfirmed) install."""

    state: int = int(State.IDLE)
    result: int = int(Result.INITIAL)
    uri: str = ""
    pkg_name: str = ""
    pkg_version: str = ""
    last_change: int = 0
    #: {"version", "previous", "starts", "since"} while a new version awaits confirmation.
    pending: dict[str, Any] | None = None
    history: list[str] = field(default_factory=list)


class SoftwareFolders:
    """``software/<version>/`` folders and the ``current`` link that selects one."""

    def __init__(self, root: Path, factory_version: str) -> None:
        self.root = root
        self.factory_version = factory_version
        root.mkdir(parents=True, exist_ok=True)

    @property
    def current_link(self) -> Path:
        return self.root / CURRENT_LINK

    def current_version(self) -> str:
        """Version of the software in use; the factory image when no update was installed."""
        try:
            data = json.loads((self.current_link / MANIFEST_FILE).read_text())
            return str(data["version"])
        except (OSError, ValueError, KeyError):
            return self.factory_version

    def current_name(self) -> str:
        return os.readlink(self.current_link) if self.current_link.is_symlink() else ""

    def install(self, manifest: Manifest, payload: bytes) -> Path:
        folder = self.root / manifest.version
        staging = self.root / f".{manifest.version}.staging"
        shutil.rmtree(staging, ignore_errors=True)
        unpack_payload(payload, staging)
        (staging / MANIFEST_FILE).write_text(json.dumps({
            "name": manifest.name, "version": manifest.version, "sha256": manifest.sha256,
        }))
        shutil.rmtree(folder, ignore_errors=True)
        staging.rename(folder)
        return folder

    def switch(self, name: str) -> None:
        """Point ``current`` at folder ``name`` ("" = factory image) atomically."""
        if not name:
            self.current_link.unlink(missing_ok=True)
            return
        temporary = self.root / ".current.new"
        temporary.unlink(missing_ok=True)
        temporary.symlink_to(name)
        os.replace(temporary, self.current_link)

    def check_comes_up(self) -> str | None:
        """Why the current software cannot start, or None if it can."""
        if not self.current_link.is_symlink():
            return None
        folder = self.current_link
        if not (folder / MANIFEST_FILE).is_file():
            return "software folder has no manifest"
        config = folder / APP_CONFIG
        if config.exists():
            try:
                data = json.loads(config.read_text())
            except (OSError, ValueError) as exc:
                return f"{APP_CONFIG} unreadable: {exc}"
            if not isinstance(data, dict):
                return f"{APP_CONFIG} is not an object"
            if "version" in data and str(data["version"]) != self.current_version():
                return f"{APP_CONFIG} says version {data['version']}"
        return None

    def app_config(self) -> dict[str, Any]:
        try:
            data = json.loads((self.current_link / APP_CONFIG).read_text())
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def prune(self, keep: set[str]) -> None:
        for entry in self.root.iterdir():
            if entry.name in keep or entry.name == CURRENT_LINK or entry.is_symlink():
                continue
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)


class FirmwareUpdater(InstanceEnabler):
    """Object 5 instance 0, with the download, verification, install and rollback logic."""

    executable = frozenset({R5.UPDATE, R5.CANCEL})

    def __init__(
        self,
        data_dir: Path,
        factory_version: str,
        trusted_keys: Callable[[], list[Ed25519PublicKey]],
        coap_context: Callable[[], aiocoap.Context | None],
        request_restart: Callable[[str], None],
        logger: logging.Logger,
        confirm_timeout: float,
        request_timeout: float = 10.0,
    ) -> None:
        super().__init__(0, {
            R5.PROTOCOLS: {i: int(p) for i, p in enumerate(
                (FirmwareProtocol.COAP, FirmwareProtocol.COAPS, FirmwareProtocol.HTTP,
                 FirmwareProtocol.HTTPS))},
            R5.DELIVERY: int(FirmwareDeliveryMethod.BOTH),
        })
        self.dir = data_dir / "firmware"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.software = SoftwareFolders(data_dir / "software", factory_version)
        self.trusted_keys = trusted_keys
        self.coap_context = coap_context
        self.request_restart = request_restart
        self.log = logger
        self.confirm_timeout = confirm_timeout
        self.request_timeout = request_timeout
        self.record = self._load()
        self.task: asyncio.Task[None] | None = None
        self.retry_wait = 1.0

    # -- persistence ---------------------------------------------------------------------
    @property
    def _record_path(self) -> Path:
        return self.dir / "state.json"

    @property
    def package_path(self) -> Path:
        return self.dir / "package.bin"

    @property
    def part_path(self) -> Path:
        return self.dir / "download.part"

    def _load(self) -> FirmwareRecord:
        try:
            return FirmwareRecord(**json.loads(self._record_path.read_text()))
        except (OSError, ValueError, TypeError):
            return FirmwareRecord()

    def _save(self) -> None:
        temporary = self._record_path.with_suffix(".tmp")
        with temporary.open("w") as handle:
            json.dump(asdict(self.record), handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self._record_path)

    def _set(self, state: FirmwareUpdateState | None = None,
             result: FirmwareUpdateResult | None = None, **fields: Any) -> None:
        if state is not None:
            self.record.state = int(state)
        if result is not None:
            self.record.result = int(result)
        for name, value in fields.items():
            setattr(self.record, name, value)
        self.record.last_change = int(time.time())
        self._save()
        self.changed(R5.STATE, R5.RESULT, R5.PKG_NAME, R5.PKG_VERSION)

    @property
    def state(self) -> FirmwareUpdateState:
        return State(self.record.state)

    @property
    def result(self) -> FirmwareUpdateResult:
        return Result(self.record.result)

    # -- object 5 resources --------------------------------------------------------------
    def dynamic_ids(self) -> list[int]:
        return [R5.PACKAGE, R5.PACKAGE_URI, R5.STATE, R5.RESULT, R5.PKG_NAME, R5.PKG_VERSION,
                R5.LAST_CHANGE]

    def read(self, resource_id: int) -> ResourceValue:
        values: dict[int, ResourceValue] = {
            R5.PACKAGE_URI: self.record.uri,
            R5.STATE: self.record.state,
            R5.RESULT: self.record.result,
            R5.PKG_NAME: self.record.pkg_name,
            R5.PKG_VERSION: self.record.pkg_version,
            R5.LAST_CHANGE: datetime.fromtimestamp(self.record.last_change, UTC),
        }
        if resource_id in values:
            return values[resource_id]
        return super().read(resource_id)

    def check_write(self, resource_id: int, value: ResourceValue) -> None:
        if self.state is State.UPDATING:
            raise BadRequest("an update is being installed")
        if resource_id == R5.PACKAGE_URI and self.state is State.DOWNLOADING and value != "":
            raise BadRequest("a download is in progress; write an empty URI to cancel it")

    def write(self, resource_id: int, value: ResourceValue) -> None:
        if resource_id == R5.PACKAGE_URI:
            self._write_uri(str(value))
        elif resource_id == R5.PACKAGE:
            self._write_package(bytes(value))  # type: ignore[arg-type]
        else:
            super().write(resource_id, value)

    def _reset(self, result: FirmwareUpdateResult = Result.INITIAL) -> None:
        if self.task is not None:
            self.task.cancel()
            self.task = None
        self.package_path.unlink(missing_ok=True)
        self._set(State.IDLE, result, uri="", pkg_name="", pkg_version="")

    def _write_uri(self, uri: str) -> None:
        if not uri:
            self._reset()
            return
        parts = urlsplit(uri)
        if parts.scheme not in ("coap", "coaps", "http", "https"):
            self._set(State.IDLE, Result.UNSUPPORTED_PROTOCOL, uri=uri)
            return
        if not parts.hostname:
            self._set(State.IDLE, Result.INVALID_URI, uri=uri)
            return
        self.package_path.unlink(missing_ok=True)
        self._set(State.DOWNLOADING, Result.INITIAL, uri=uri, pkg_name="", pkg_version="")
        self._start_download()

    def _write_package(self, data: bytes) -> None:
        if not data:
            self._reset()
            return
        self._accept_package(data, source="push")

    def _accept_package(self, data: bytes, source: str) -> bool:
        """Verify and keep a complete package; Downloaded on success, Idle + result if not."""
        try:
            package = verify_package(data, self.trusted_keys())
        except IntegrityError as exc:
            self.log.warning("firmware package refused (%s): %s", source, exc)
            self.package_path.unlink(missing_ok=True)
            self._set(State.IDLE, Result.INTEGRITY_CHECK_FAILURE)
            return False
        except UnsupportedPackage as exc:
            self.log.warning("firmware package refused (%s): %s", source, exc)
            self.package_path.unlink(missing_ok=True)
            self._set(State.IDLE, Result.UNSUPPORTED_PACKAGE_TYPE)
            return False
        temporary = self.package_path.with_suffix(".tmp")
        temporary.write_bytes(data)
        os.replace(temporary, self.package_path)
        self.log.info("firmware package %s %s verified (%s)", package.manifest.name,
                      package.manifest.version, source)
        self._set(State.DOWNLOADED, Result.INITIAL, pkg_name=package.manifest.name,
                  pkg_version=package.manifest.version)
        return True

    async def execute(self, resource_id: int, arguments: str) -> None:
        if resource_id == R5.CANCEL:
            if self.state in (State.DOWNLOADING, State.DOWNLOADED):
                self.part_path.unlink(missing_ok=True)
                self._reset(Result.CANCELLED)
                return
            raise MethodNotAllowed("nothing to cancel")
        if self.state is not State.DOWNLOADED:
            raise MethodNotAllowed(
                f"Update needs a downloaded package (state is {self.state.name})")
        self._set(State.UPDATING)
        self.task = asyncio.get_running_loop().create_task(self._install())

    # -- download ------------------------------------------------------------------------
    def _start_download(self) -> None:
        if self.task is not None:
            self.task.cancel()
        self.task = asyncio.get_running_loop().create_task(self._download(self.record.uri))

    async def _download(self, uri: str) -> None:
        meta = self.dir / "download.json"
        try:
            previous = json.loads(meta.read_text()).get("uri")
        except (OSError, ValueError):
            previous = None
        if previous != uri:
            self.part_path.unlink(missing_ok=True)
            meta.write_text(json.dumps({"uri": uri}))
        wait = self.retry_wait
        for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
            try:
                if urlsplit(uri).scheme.startswith("coap"):
                    await self._download_coap(uri)
                else:
                    await self._download_http(uri)
                break
            except DownloadFailed as exc:
                if exc.result is not Result.CONNECTION_LOST or attempt == DOWNLOAD_ATTEMPTS:
                    self.log.warning("download of %s failed: %s", uri, exc)
                    self._set(State.IDLE, exc.result)
                    return
                self.log.info("download interrupted (%s); resuming in %.0f s", exc, wait)
                await asyncio.sleep(wait)
                wait = min(wait * 2, DOWNLOAD_RETRY_MAX_WAIT)
        data = self.part_path.read_bytes()
        self.part_path.unlink(missing_ok=True)
        meta.unlink(missing_ok=True)
        self._accept_package(data, source=uri)

    def _resume_offset(self) -> int:
        size = self.part_path.stat().st_size if self.part_path.exists() else 0
        return size - size % BLOCK_SIZE

    async def _download_coap(self, uri: str) -> None:
        context = self.coap_context()
        if context is None:
            raise DownloadFailed(Result.CONNECTION_LOST, "agent is not running")
        offset = self._resume_offset()
        with self.part_path.open("r+b" if self.part_path.exists() else "wb") as part:
            part.truncate(offset)
            part.seek(offset)
            number = offset // BLOCK_SIZE
            while True:
                request = aiocoap.Message(code=Code.GET, uri=uri)
                request.opt.block2 = BlockOption.BlockwiseTuple(number, False, BLOCK_SIZE_EXPONENT)
                try:
                    response = await coap_request.request(
                        context, request, self.request_timeout, handle_blockwise=False)
                except (TimeoutError, aiocoap.error.Error, OSError) as exc:
                    raise DownloadFailed(
                        Result.CONNECTION_LOST, f"block {number}: {exc!r}") from None
                if response.code == Code.NOT_FOUND or response.code == Code.BAD_REQUEST:
                    raise DownloadFailed(Result.INVALID_URI, f"server answered {response.code}")
                if not response.code.is_successful():
                    raise DownloadFailed(Result.CONNECTION_LOST, f"server answered {response.code}")
                block = response.opt.block2
                if block is None:
                    part.seek(0)
                    part.truncate(0)
                    part.write(response.payload)
                    part.flush()
                    return
                if block.block_number != number:
                    raise DownloadFailed(Result.CONNECTION_LOST, "server sent the wrong block")
                part.write(response.payload)
                part.flush()
                if part.tell() > MAX_PACKAGE_BYTES:
                    raise DownloadFailed(Result.NOT_ENOUGH_STORAGE, "package too large")
                if not block.more:
                    return
                number += 1
                if block.size_exponent != BLOCK_SIZE_EXPONENT:
                    raise DownloadFailed(Result.CONNECTION_LOST, "server changed the block size")

    async def _download_http(self, uri: str) -> None:
        import httpx

        offset = self.part_path.stat().st_size if self.part_path.exists() else 0
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        try:
            async with httpx.AsyncClient(timeout=self.request_timeout) as client:
                async with client.stream("GET", uri, headers=headers) as response:
                    if response.status_code == httpx.codes.NOT_FOUND:
                        raise DownloadFailed(Result.INVALID_URI, "server answered 404")
                    if response.status_code == httpx.codes.REQUESTED_RANGE_NOT_SATISFIABLE:
                        offset = 0
                        self.part_path.unlink(missing_ok=True)
                        raise DownloadFailed(Result.CONNECTION_LOST, "range refused; restarting")
                    if response.status_code not in (httpx.codes.OK, httpx.codes.PARTIAL_CONTENT):
                        raise DownloadFailed(Result.CONNECTION_LOST,
                                             f"server answered {response.status_code}")
                    mode = "ab" if response.status_code == httpx.codes.PARTIAL_CONTENT else "wb"
                    with self.part_path.open(mode) as part:
                        async for chunk in response.aiter_bytes():
                            part.write(chunk)
                            if part.tell() > MAX_PACKAGE_BYTES:
                                raise DownloadFailed(Result.NOT_ENOUGH_STORAGE, "package too large")
        except httpx.HTTPError as exc:
            raise DownloadFailed(Result.CONNECTION_LOST, f"{type(exc).__name__}: {exc}") from None

    def resume_after_restart(self) -> None:
        """A download interrupted by a restart or power cut continues where it stopped."""
        if self.state is State.DOWNLOADING and self.record.uri:
            self.log.info("resuming download of %s", self.record.uri)
            self._start_download()

    # -- install, confirm, roll back -------------------------------------------------------
    async def _install(self) -> None:
        try:
            package = verify_package(self.package_path.read_bytes(), self.trusted_keys())
            previous = self.software.current_name()
            self.software.install(package.manifest, package.payload)
        except (OSError, PackageError) as exc:
            self.log.error("install failed before the switch: %s", exc)
            self._set(State.IDLE, Result.UPDATE_FAILED)
            return
        version = package.manifest.version
        self._set(pending={"version": version, "previous": previous, "starts": 0,
                           "since": int(time.time())})
        self.software.switch(version)
        self.log.warning("software %s installed; restarting", version)
        self.request_restart("firmware update")

    def on_start(self) -> None:
        """Called as the agent starts: judge a pending install, maybe roll it back."""
        pending = self.record.pending
        if pending is None:
            if self.state is State.UPDATING:  # power cut before the switch
                self._set(State.IDLE, Result.UPDATE_FAILED)
            return
        pending["starts"] = int(pending.get("starts", 0)) + 1
        self._set(pending=pending)
        problem = self.software.check_comes_up()
        if problem is None and pending["starts"] > MAX_UNCONFIRMED_STARTS:
            problem = f"not confirmed after {MAX_UNCONFIRMED_STARTS} starts"
        if problem is not None:
            self.rollback(problem, restart=False)

    def on_registered(self) -> None:
        """The new software reached the server: the update is a success."""
        pending = self.record.pending
        if pending is None or self.software.current_version() != pending["version"]:
            return
        self.package_path.unlink(missing_ok=True)
        history = [*self.record.history, pending["version"]][-10:]
        self._set(State.IDLE, Result.SUCCESS, pending=None, history=history)
        self.software.prune({pending["version"], pending.get("previous") or ""})
        self.log.info("software %s confirmed", pending["version"])

    async def watch_confirmation(self) -> None:
        """Roll back if the pending version does not register within the confirm timeout."""
        if self.record.pending is None:
            return
        await asyncio.sleep(self.confirm_timeout)
        if self.record.pending is not None:
            self.rollback(f"did not register within {self.confirm_timeout:.0f} s", restart=True)

    def rollback(self, why: str, restart: bool) -> None:
        pending = self.record.pending or {}
        failed = pending.get("version", "")
        self.software.switch(pending.get("previous", ""))
        if failed:
            shutil.rmtree(self.software.root / failed, ignore_errors=True)
        self.package_path.unlink(missing_ok=True)
        self._set(State.IDLE, Result.UPDATE_FAILED, pending=None)
        self.log.error("software %s failed to come up (%s); rolled back to %s", failed, why,
                       self.software.current_version())
        if restart:
            self.request_restart("rollback")

    def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.task = None

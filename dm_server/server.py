"""The DM server process: LwM2M over CoAP and the HTTP API in one asyncio loop.

``await start_server(settings)`` brings everything up (migrations first, then the admin
account on an empty database, CoAP/CoAPs sockets, uvicorn) and returns a
:class:`DmServer` with the bound ports and ``stop()``; ports 0 mean "pick free ones",
which is what tests use. ``run(settings)`` is ``posfleet server``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import socket
from collections.abc import Iterable
from typing import Any

import uvicorn
from fastapi import FastAPI
from sqlalchemy import func, select

from dm_server import extensions as extension_registry
from dm_server.api.app import create_app
from dm_server.db import migrate
from dm_server.db.models import Account
from dm_server.db.session import Database
from dm_server.lwm2m.dtls import PskStore
from dm_server.lwm2m.endpoint import Lwm2mEndpoint
from dm_server.security import TokenSigner, generate_password, load_or_create_secret
from dm_server.services import accounts
from dm_server.settings import Settings
from lwm2m_core.model import ObjectModelRepository

log = logging.getLogger(__name__)

#: Object definitions uploaded by the admin, in the data folder, loaded at start.
UPLOADED_OBJECTS_DIR = "objects"
#: How long stop() waits for uvicorn to finish open requests.
HTTP_SHUTDOWN_S = 5.0


class DmServer:
    """Everything one running server holds; the API reaches it as ``app.state.core``."""

    def __init__(self, settings: Settings, extensions: Iterable[Any] = ()) -> None:
        self.settings = settings
        self.db = Database(settings.resolved_database_url)
        uploaded = settings.data_dir / UPLOADED_OBJECTS_DIR  # the dashboard's Server page
        extra = [*settings.object_dirs, *([uploaded] if uploaded.is_dir() else [])]
        self.model = ObjectModelRepository.default(*extra)
        self.psk_store = PskStore()
        self.lwm2m = Lwm2mEndpoint(settings, self.db, self.model, self.psk_store)
        secret = settings.token_secret or load_or_create_secret(settings.data_dir)
        self.tokens = TokenSigner(secret, settings.token_lifetime_s)
        self.extensions = list(extensions)
        self.app: FastAPI = FastAPI()
        self.http_port = 0
        self._uvicorn: uvicorn.Server | None = None
        self._http_task: asyncio.Task[None] | None = None
        #: Set when the admin password was generated at this start (printed once).
        self.generated_admin_password: str | None = None

    @property
    def coap_port(self) -> int:
        return self.lwm2m.coap_port

    @property
    def coaps_port(self) -> int:
        return self.lwm2m.coaps_port

    async def start(self) -> None:
        await self.ensure_admin()
        for path, resource in extension_registry.coap_resources(self.extensions, self):
            self.lwm2m.add_resource(path, resource)
        self.app = create_app(self, extension_registry.api_routers(self.extensions, self))
        extension_registry.configure_apps(self.extensions, self, self.app)
        await self.lwm2m.start()
        await self._start_http()

    async def ensure_admin(self) -> None:
        """First start on an empty database: the admin account, password from settings or
        generated and printed once."""
        async with self.db.session() as session:
            if await session.scalar(select(func.count(Account.id))):
                return
            password = self.settings.admin_password
            if not password:
                password = self.generated_admin_password = generate_password()
            await accounts.create_root_admin(session, self.settings.admin_user, password)
        if self.generated_admin_password:
            # Printed, not logged: it must not end up in log files.
            print(
                f"Created admin account {self.settings.admin_user!r} with password "
                f"{self.generated_admin_password} (shown once; change it after logging in)",
                flush=True,
            )
        else:
            log.info("created admin account %r", self.settings.admin_user)

    async def _start_http(self) -> None:
        family = socket.AF_INET6 if ":" in self.settings.bind else socket.AF_INET
        # IPPROTO_TCP explicitly: with protocol 0 asyncio does not recognise accepted
        # connections as TCP and leaves Nagle on (+40 ms per response, bench finding).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.settings.bind, self.settings.http_port))
        sock.listen(128)
        sock.setblocking(False)
        self.http_port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            self.app,
            log_level=self.settings.log_level.lower(),
            access_log=False,
            lifespan="off",
        )
        self._uvicorn = uvicorn.Server(config)
        # uvicorn would install its own signal handlers; the process owns them.
        self._uvicorn.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self._http_task = asyncio.create_task(self._uvicorn.serve(sockets=[sock]), name="http")
        while not self._uvicorn.started:
            if self._http_task.done():
                await self._http_task  # raises the start-up error
            await asyncio.sleep(0.01)
        log.info("HTTP API on %s:%d (OpenAPI at /docs)", self.settings.bind, self.http_port)

    async def stop(self) -> None:
        if self._uvicorn is not None and self._http_task is not None:
            self._uvicorn.should_exit = True
            try:
                await asyncio.wait_for(self._http_task, HTTP_SHUTDOWN_S)
            except TimeoutError:
                self._uvicorn.force_exit = True
                self._http_task.cancel()
        await self.lwm2m.stop()
        await self.db.dispose()


async def start_server(
    settings: Settings, extensions: Iterable[Any] | None = None, migrate_db: bool = True
) -> DmServer:
    """Migrate the database, start CoAP, CoAPs and HTTP; the caller must ``await stop()``."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if migrate_db:
        await asyncio.to_thread(migrate.upgrade, settings.resolved_database_url)
    found = extension_registry.load() if extensions is None else list(extensions)
    server = DmServer(settings, found)
    try:
        await server.start()
    except BaseException:
        await server.stop()
        raise
    return server


#: Allocations between two young-generation collections, and how many of those (then of
#: the middle ones) trigger the next older one (CPython's defaults: 700, 10, 10).
GC_THRESHOLDS = (50_000, 20, 100)


def tune_garbage_collector() -> None:
    """Fewer, larger garbage collections for a long-running server process.

    Every CoAP message allocates a few hundred objects, so with CPython's defaults the
    collector ran thousands of times a second and its older generations walked the whole
    heap of a server holding a fleet (ORM metadata, aiocoap state, peers, observations).
    Measured with ``python -m bench --terminals 4000 --send-terminals 200``, thresholds
    alone against CPython's defaults: server CPU per Register 1,175 -> 828-905 us, per
    Send 620 -> 508-510 us (two runs); resident memory unchanged.
    What exists once started is moved out of the collector's way for good (``freeze``).
    Process-wide, so only the ``posfleet server`` and ``posfleet demo`` processes call it.
    """
    gc.set_threshold(*GC_THRESHOLDS)


def freeze_startup_heap() -> None:
    """Call once the server is up: start-up objects are never garbage, stop scanning them."""
    gc.collect()
    gc.freeze()


def run(settings: Settings) -> int:
    """``posfleet server``: run until SIGINT/SIGTERM."""
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    tune_garbage_collector()

    async def main() -> None:
        server = await start_server(settings)
        freeze_startup_heap()
        print(
            f"PosFleet DM server: coap udp/{server.coap_port}, "
            + (f"coaps udp/{server.coaps_port}, " if server.coaps_port > 0 else "")
            + f"http://{settings.bind}:{server.http_port}/docs",
            flush=True,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("stopping")
        await server.stop()

    asyncio.run(main())
    return 0

"""The LwM2M server endpoint: sockets, resources, and what follows each registration.

Two aiocoap server contexts share one site: plain CoAP (``udp6``) and DTLS-PSK
(``tinydtls_server``, which needs a concrete IP and listens on the given port + 1, so it is
bound one below the wanted port). Requests to terminals go out through the context that
owns the socket they registered on. A periodic sweep ends lapsed registrations and
expires queued operations.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Iterable
from typing import Any

import aiocoap
from aiocoap import Message
from sqlalchemy import select

from dm_server.db.batch import GroupCommit
from dm_server.db.models import Registration, Terminal
from dm_server.db.models.terminal import SecurityMode
from dm_server.db.session import Database
from dm_server.errors import InvalidInput
from dm_server.lwm2m import tuning
from dm_server.lwm2m.dp import DP_PATH, SendResource
from dm_server.lwm2m.dtls import PskStore, create_dtls_server_context, forget_session
from dm_server.lwm2m.followups import FollowUps
from dm_server.lwm2m.observations import ObservationTracker
from dm_server.lwm2m.operations import DeviceManager
from dm_server.lwm2m.peers import Peer, PeerTable
from dm_server.lwm2m.rd import (
    RD_PATH,
    UPDATE_PARAMS,
    RegisterResource,
    RegistrationResource,
    origin_of,
    parse_lifetime,
    parse_links,
    parse_query,
    parse_register,
    response,
)
from dm_server.lwm2m.requester import Requester
from dm_server.lwm2m.site import GuardedSite, RateLimiter
from dm_server.services import events, registrations, values
from dm_server.services.operations import OperationService
from dm_server.services.registrations import Origin, RegisterParams, UpdateParams
from dm_server.settings import Settings
from dm_server.tasks import cancel_and_wait
from lwm2m_core import codec
from lwm2m_core.errors import LwM2MError
from lwm2m_core.model import ObjectModelRepository
from lwm2m_core.numbers import CoapCode

log = logging.getLogger(__name__)

#: aiocoap's switch for SO_REUSEPORT (see Lwm2mEndpoint.start).
REUSE_PORT_VARIABLE = "AIOCOAP_REUSE_PORT"


def free_udp_port(host: str) -> int:
    """A currently free UDP port on ``host`` (for DTLS, which cannot bind port 0 itself)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _bound_port(context: Any) -> int:
    for interface in context.request_interfaces:
        transport = getattr(
            getattr(getattr(interface, "token_interface", None), "message_interface", None),
            "transport",
            None,
        )
        sock = transport.get_extra_info("socket") if transport is not None else None
        if sock is not None:
            return int(sock.getsockname()[1])
    raise RuntimeError("the CoAP context has no UDP socket")


class Lwm2mEndpoint:
    def __init__(
        self, settings: Settings, db: Database, model: ObjectModelRepository, psk_store: PskStore
    ) -> None:
        self.settings = settings
        self.db = db
        self.model = model
        self.psk_store = psk_store
        self.peers = PeerTable()
        self.requester = Requester({}, settings.request_timeout_s)
        self.manager = DeviceManager(self.requester, model)
        self.tracker = ObservationTracker(self.requester, self._on_notification)
        self.operations = OperationService(
            db, settings, model, self.peers, self.manager, self.tracker
        )
        self.site = GuardedSite(
            RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst),
            settings.max_payload_bytes,
        )
        self.site.add_resource(RD_PATH, RegisterResource(self._register))
        self.site.add_resource(RD_PATH, RegistrationResource(self._update, self._deregister))
        self.site.add_resource(DP_PATH, SendResource(self._send))
        #: Register, Update, De-register and Send share transactions under load.
        self.commits = GroupCommit(db)
        self.followups = FollowUps(self.operations.after_register, settings.follow_up_concurrency)
        self.coap_port = 0
        self.coaps_port = -1
        self._contexts: list[Any] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sweeper: asyncio.Task[None] | None = None

    def add_resource(self, path: Iterable[str], resource: Any) -> None:
        """Mount an extra CoAP resource (e.g. the firmware package store) on the site."""
        self.site.add_resource(tuple(path), resource)

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        # aiocoap binds with SO_REUSEPORT when it can. Then any other process of the same
        # user binding port 0 may be handed our port and receive half our datagrams
        # (seen here: a test server answered by another engineer's process). Without it,
        # nobody can share the socket. Operators can still opt in with the variable.
        os.environ.setdefault(REUSE_PORT_VARIABLE, "0")
        tuning.apply(self.settings.exchange_lifetime_s)
        await self._load_credentials()
        await self.operations.load_pending()
        plain = await aiocoap.Context.create_server_context(
            self.site,
            bind=(self.settings.bind, self.settings.coap_port),
            transports=["udp6"],
            loggername="posfleet.coap",
        )
        self._contexts.append(plain)
        self.requester.contexts["coap"] = plain
        self.coap_port = _bound_port(plain)
        if self.settings.dtls_enabled:
            address = self.settings.resolved_dtls_address
            port = self.settings.coaps_port or free_udp_port(address)
            secure = await create_dtls_server_context(
                self.site, (address, port - 1), self.psk_store, "posfleet.coaps"
            )
            self._contexts.append(secure)
            self.requester.contexts["coaps"] = secure
            self.coaps_port = port
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="registration sweep")
        log.info(
            "LwM2M server on coap port %d%s",
            self.coap_port,
            f", coaps {self.settings.resolved_dtls_address}:{self.coaps_port}"
            if self.coaps_port > 0
            else " (DTLS off)",
        )

    async def stop(self) -> None:
        # The sweep must be over before the database goes away: a sweep cancelled in the
        # middle of a session, left to finish after the engine is disposed, waits forever on
        # aiosqlite and hangs the event loop's shutdown.
        await cancel_and_wait([self._sweeper])
        self._sweeper = None
        await self.followups.close()
        await self.tracker.close()
        await self.operations.writer.close()
        await self.commits.close()
        await cancel_and_wait(list(self._tasks))
        for context in self._contexts:
            await context.shutdown()
        self._contexts.clear()
        tuning.restore()

    async def _load_credentials(self) -> None:
        async with self.db.session() as session:
            rows = await session.execute(
                select(Terminal.psk_identity, Terminal.psk_key).where(
                    Terminal.security_mode == SecurityMode.PSK
                )
            )
            for identity, key in rows:
                if identity and key:
                    self.psk_store.set(identity, key)
        log.info("%d PSK credential(s) loaded", self.psk_store.count)

    def credentials_changed(self, terminals: Iterable[Terminal]) -> None:
        """Call after provisioning commits: new keys work at the next handshake."""
        for terminal in terminals:
            if (
                terminal.security_mode is SecurityMode.PSK
                and terminal.psk_identity
                and terminal.psk_key
            ):
                self.psk_store.set(terminal.psk_identity, terminal.psk_key)

    def _spawn(self, coroutine: Any, name: str) -> None:
        task = asyncio.create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s failed", task.get_name(), exc_info=task.exception())

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.expiry_sweep_s)
            try:
                await self.sweep()
            except Exception:
                log.exception("registration sweep failed; retrying at the next interval")

    async def sweep(self) -> list[int]:
        async with self.db.write_lock(), self.db.session() as session:
            ended = await registrations.expire_lapsed(session)
            await registrations.expire_queued(session)
        for terminal_id in ended:
            self.followups.discard(terminal_id)
            self.tracker.cancel_all(terminal_id)
            peer = self.peers.drop(terminal_id)
            if peer is not None and peer.scheme == "coaps":
                forget_session(peer.remote)
        return ended

    # --- registration interface ----------------------------------------------------------

    def _peer(
        self, terminal_id: int, endpoint: str, registration: Any, remote: Any, origin: Origin
    ) -> Peer:
        """Remember where the terminal is (``registration``: the ORM row or a Registered)."""
        peer = Peer(
            terminal_id,
            endpoint,
            registration.scheme,
            registration.address,
            registration.lwm2m_version,
            registration.content_format,
            registration.queue_mode,
            remote=remote,
            psk_identity=origin.psk_identity,
        )
        self.peers.put(peer)
        return peer

    async def _register_many(
        self, session: Any, requests: list[tuple[RegisterParams, Origin]]
    ) -> list[Any]:
        return await registrations.register_many(
            session, requests, dev_auto_accept=self.settings.dev_auto_accept
        )

    async def _register(self, request: Message) -> Message:
        params = parse_register(request, self.settings)
        origin = origin_of(request)
        registration = await self.commits.run_bulk(self._register_many, (params, origin))
        self.tracker.cancel_all(registration.terminal_id)
        peer = self._peer(
            registration.terminal_id, registration.endpoint, registration, request.remote, origin
        )
        log.info(
            "registered %s from %s://%s as /rd/%s (lt=%d b=%s lwm2m=%s)",
            registration.endpoint,
            origin.scheme,
            origin.address,
            registration.location_id,
            registration.lifetime_s,
            registration.binding,
            registration.lwm2m_version,
        )
        self.followups.submit(peer, list(registration.objects))
        return response(CoapCode.CREATED, location_path=(*RD_PATH, registration.location_id))

    async def _update_many(
        self, session: Any, requests: list[tuple[UpdateParams, Origin]]
    ) -> list[Any]:
        return await registrations.update_many(session, requests)

    async def _update(self, location_id: str, request: Message) -> Message:
        query = parse_query(request, UPDATE_PARAMS)
        lifetime = parse_lifetime(query.get("lt"), self.settings)
        binding = query.get("b")
        links_text = objects = None
        if request.payload:
            links_text, objects = parse_links(request)
        params = UpdateParams(
            location_id,
            lifetime,
            registrations.check_binding(binding) if binding is not None else None,
            links_text,
            objects,
        )
        origin = origin_of(request)
        updated = await self.commits.run_bulk(self._update_many, (params, origin))
        peer = self.peers.get(updated.terminal_id)
        if peer is None or peer.remote is not request.remote:
            peer = self._peer(
                updated.terminal_id, updated.endpoint, updated, request.remote, origin
            )
        peer.queue_mode = updated.queue_mode
        peer.last_heard = time.monotonic()
        if peer.terminal_id in self.operations.pending:
            self._spawn(self.operations.flush_queue(peer), f"after Update {updated.endpoint}")
        return response(CoapCode.CHANGED)

    async def _deregister(self, location_id: str, request: Message) -> Message:
        origin = origin_of(request)
        terminal = await self.commits.run(
            lambda session: registrations.deregister(session, location_id, origin)
        )
        self.followups.discard(terminal.id)
        self.tracker.cancel_all(terminal.id)
        self.peers.drop(terminal.id)
        log.info("deregistered %s", terminal.endpoint)
        return response(CoapCode.DELETED)

    # --- Send ------------------------------------------------------------------------------

    async def _sender(self, session: Any, origin: Origin) -> Terminal | None:
        """The registered terminal a Send comes from (DTLS identity, else its address)."""
        peer = self.peers.find_by_address(origin.scheme, origin.address)
        if peer is not None:
            terminal = await session.get(Terminal, peer.terminal_id)
            if terminal is not None and (
                origin.scheme != "coaps" or terminal.psk_identity == origin.psk_identity
            ):
                return terminal  # type: ignore[no-any-return]
        statement = (
            select(Terminal)
            .join(Registration, Registration.terminal_id == Terminal.id)
            .where(Registration.ended_at.is_(None))
        )
        if origin.scheme == "coaps":
            statement = statement.where(Terminal.psk_identity == origin.psk_identity)
        else:
            statement = statement.where(
                Registration.scheme == origin.scheme, Registration.address == origin.address
            )
        return await session.scalar(statement)  # type: ignore[no-any-return]

    async def _send(self, request: Message) -> Message:
        origin = origin_of(request)
        fmt = request.opt.content_format
        try:
            if fmt is None or codec.resolve_format(int(fmt)) not in codec.RECORD_FORMATS:
                return response(
                    CoapCode.UNSUPPORTED_CONTENT_FORMAT, "Send takes SenML-CBOR or SenML-JSON"
                )
            records = codec.decode_records(request.payload, int(fmt), self.model)
            found, others = events.events_from_records(records, self.model)
        except (LwM2MError, InvalidInput) as exc:
            log.warning("Send from %s://%s refused: %s", origin.scheme, origin.address, exc)
            return response(CoapCode.BAD_REQUEST, str(exc))

        async def store(session: Any) -> tuple[Terminal | None, int]:
            terminal = await self._sender(session, origin)
            if terminal is None:
                return None, 0
            new = await events.store_events(session, terminal, found, "send")
            await values.store_values(
                session, {terminal.id: [(r.path, r.value) for r in others]}, "send"
            )
            return terminal, new

        peer = self.peers.find_by_address(origin.scheme, origin.address)
        if (
            peer is not None
            and not others
            and (origin.scheme != "coaps" or peer.psk_identity == origin.psk_identity)
        ):
            # The hot path: a registered sender known in memory, events only. Its events
            # join every other Send of the batch in one INSERT; 2.04 after the commit.
            await self.commits.run_bulk(self._store_sends, (peer.terminal_id, found))
            peer.last_heard = time.monotonic()
            log.debug("Send from %s: %d event(s)", peer.endpoint, len(found))
            return response(CoapCode.CHANGED)
        terminal, new = await self.commits.run(store)
        if terminal is None:
            log.warning("Send from %s://%s refused: not registered", origin.scheme, origin.address)
            return response(CoapCode.FORBIDDEN, "register before sending")
        peer = self.peers.get(terminal.id)
        if peer is not None:
            peer.last_heard = time.monotonic()
        log.debug("Send from %s: %d event(s), %d new", terminal.endpoint, len(found), new)
        return response(CoapCode.CHANGED)

    @staticmethod
    async def _store_sends(session: Any, sends: list[tuple[int, list[Any]]]) -> list[int]:
        return await events.store_sent_events(session, sends)

    async def _on_notification(self, *args: Any) -> None:
        await self.operations.on_notification(*args)

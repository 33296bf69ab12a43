"""Device-management operations on behalf of API callers, with queue mode.

An operation goes out at once when the terminal is reachable. For a queue-mode terminal
(``b=Q``) that has not spoken for a while, or when the caller asks for it (``queue``),
it waits in ``queued_operations`` and goes out when the terminal next sends an Update or
Register; it expires after ``queue_expiry_s`` with a clear status. Results of Reads and
notifications are kept as the terminal's last known values.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select

from dm_server.db.base import utcnow
from dm_server.db.models import Account, Observation, QueuedOperation, Registration, Terminal
from dm_server.db.models.operation import OperationStatus
from dm_server.db.scope import scoped
from dm_server.db.session import Database
from dm_server.errors import N_, NotFound, OperationTimeout, ServiceError, TerminalUnreachable
from dm_server.lwm2m.observations import ObservationTracker
from dm_server.lwm2m.operations import (
    DeviceManager,
    OperationKind,
    OperationRequest,
    Outcome,
    preferred_format,
)
from dm_server.lwm2m.peers import Peer, PeerTable
from dm_server.lwm2m.requester import Response
from dm_server.services import events, state, values
from dm_server.settings import Settings
from dm_server.tasks import cancel_and_wait
from lwm2m_core.model import ObjectModelRepository
from lwm2m_core.numbers import ContentFormat
from lwm2m_core.path import LwM2mPath

log = logging.getLogger(__name__)

#: Notification values are written at most this often (seconds), in one transaction.
NOTIFY_BATCH_INTERVAL_S = 0.05
#: POS Terminal Trading State, observed on every terminal that has object 26241: the
#: trading state follows it. Only this resource: the instance's sales counters change on
#: every sale, and observing them made each sale a notification (Send carries the sales).
TRADING_STATE_RESOURCE = LwM2mPath.parse(state.TRADING_STATE_PATH)


class OperationService:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        model: ObjectModelRepository,
        peers: PeerTable,
        manager: DeviceManager,
        tracker: ObservationTracker,
    ) -> None:
        self.db = db
        self.settings = settings
        self.model = model
        self.peers = peers
        self.manager = manager
        self.tracker = tracker
        self._flushing: dict[int, asyncio.Lock] = {}
        #: Terminals that may have wanted observations or queued operations. Register and
        #: Update skip the database look-up for everyone else (most of the fleet). Every
        #: enqueue and observe goes through this service, so the set only over-approximates.
        self.pending: set[int] = set()
        self.writer = ValueWriter(db)

    async def load_pending(self) -> None:
        async with self.db.session() as session:
            observed = await session.scalars(select(Observation.terminal_id).distinct())
            queued = await session.scalars(
                select(QueuedOperation.terminal_id)
                .where(QueuedOperation.status == OperationStatus.QUEUED)
                .distinct()
            )
            self.pending = set(observed) | set(queued)

    # --- API entry ---------------------------------------------------------------------

    async def perform(
        self, caller: Account, endpoint: str, request: OperationRequest, queue: bool = False
    ) -> dict[str, Any]:
        async with self.db.session() as session:
            terminal = await session.scalar(
                scoped(select(Terminal).where(Terminal.endpoint == endpoint), Terminal, caller)
            )
            if terminal is None:
                raise NotFound(N_("no terminal %(endpoint).80r among yours"), endpoint=endpoint)
            registration = await session.scalar(
                select(Registration).where(Registration.terminal_id == terminal.id)
            )
            peer = self._peer(terminal, registration)
            must_queue = peer is None or (peer.queue_mode and not self._awake(peer))
            if must_queue and (queue or (peer is not None and peer.queue_mode)):
                operation = QueuedOperation(
                    terminal_id=terminal.id,
                    kind=request.kind.value,
                    request=request.to_json(),
                    requested_by=caller.id,
                    expires_at=utcnow() + timedelta(seconds=self.settings.queue_expiry_s),
                )
                session.add(operation)
                await session.flush()
                self.pending.add(terminal.id)
                return {
                    "status": "queued",
                    "operation_id": operation.id,
                    "expires_at": operation.expires_at.isoformat(),
                    "message": f"{endpoint} is asleep or offline; the operation goes out "
                    "when it next contacts the server",
                }
            if peer is None:
                raise TerminalUnreachable(
                    N_(
                        "%(endpoint)s is offline; retry when it is registered, or send with "
                        '"queue": true to deliver it at its next registration'
                    ),
                    endpoint=endpoint,
                )
        return await self.run_now(peer, request)

    async def run_now(self, peer: Peer, request: OperationRequest) -> dict[str, Any]:
        try:
            if request.kind is OperationKind.OBSERVE:
                outcome = await self.observe(peer, request.path, request.format)
            elif request.kind is OperationKind.CANCEL_OBSERVE:
                outcome = await self.cancel_observe(peer, request.path)
            else:
                outcome = await self.manager.run(peer, request)
        except OperationTimeout as exc:
            return {"status": "timeout", "message": exc.message}
        if outcome.values:
            await self._store(peer.terminal_id, outcome.values, request.kind.value)
        return outcome.to_json()

    async def get_operation(
        self, caller: Account, endpoint: str, operation_id: int
    ) -> QueuedOperation:
        async with self.db.session() as session:
            statement = scoped(
                select(QueuedOperation)
                .join(Terminal, Terminal.id == QueuedOperation.terminal_id)
                .where(QueuedOperation.id == operation_id, Terminal.endpoint == endpoint),
                QueuedOperation,
                caller,
            )
            operation = await session.scalar(statement)
            if operation is None:
                raise NotFound(
                    N_("no operation %(id)s on %(endpoint).80r"), id=operation_id, endpoint=endpoint
                )
            return operation

    # --- observe ------------------------------------------------------------------------

    async def observe(
        self, peer: Peer, path: LwM2mPath, fmt: ContentFormat | None, remember: bool = True
    ) -> Outcome:
        if fmt is None:  # not `or`: ContentFormat.TEXT is 0
            fmt = preferred_format(peer, path, self.model)
        response = await self.tracker.observe(
            peer, path, fmt, small=path == TRADING_STATE_RESOURCE
        )
        outcome = self.manager.read_outcome(response, path, fmt)
        if response.ok and remember:
            async with self.db.session() as session:
                existing = await session.scalar(
                    select(Observation).where(
                        Observation.terminal_id == peer.terminal_id, Observation.path == str(path)
                    )
                )
                self.pending.add(peer.terminal_id)
                if existing is None:
                    session.add(
                        Observation(
                            terminal_id=peer.terminal_id, path=str(path), content_format=int(fmt)
                        )
                    )
        return outcome

    async def cancel_observe(self, peer: Peer, path: LwM2mPath) -> Outcome:
        from lwm2m_core.numbers import CoapCode

        was_live = self.tracker.cancel(peer.terminal_id, path)
        async with self.db.session() as session:
            result = await session.execute(
                delete(Observation).where(
                    Observation.terminal_id == peer.terminal_id, Observation.path == str(path)
                )
            )
        if not was_live and not result.rowcount:  # type: ignore[attr-defined]
            return Outcome(CoapCode.NOT_FOUND, message=f"{path} was not observed")
        return Outcome(CoapCode.CONTENT, message="cancelled")

    async def on_notification(
        self, peer: Peer, path: LwM2mPath, fmt: ContentFormat, response: Response
    ) -> None:
        """Keep a notification as last known values (and events, for 26243)."""
        outcome = self.manager.read_outcome(response, path, fmt)
        peer.last_heard = time.monotonic()
        if not outcome.values:
            return
        if path.object_id == events.POS_EVENT_OBJECT:
            await self._store(peer.terminal_id, outcome.values, "observe")
        else:
            self.writer.submit(peer.terminal_id, outcome.values)

    async def _store(self, terminal_id: int, items: list[Any], source: str) -> None:
        async with self.db.write_lock(), self.db.session() as session:
            terminal = await session.get(Terminal, terminal_id)
            if terminal is None:
                return
            await values.store_values(session, {terminal_id: items}, source)
            event_records = [
                r for r in _as_records(items) if r.path.object_id == events.POS_EVENT_OBJECT
            ]
            if event_records:
                found, _ = events.events_from_records(event_records, self.model)
                await events.store_events(session, terminal, found, source)

    # --- after Register / Update ------------------------------------------------------

    async def after_register(self, peer: Peer, objects: list[dict[str, Any]]) -> None:
        """Re-establish wanted observations (plus POS Terminal), then send queued work.

        Only terminals in :attr:`pending` cost a database look-up, since this runs after
        every Register.
        """
        wanted: list[Any] = []
        queued = None
        if peer.terminal_id in self.pending:
            wanted, queued = await self._pending_work(peer.terminal_id)
        paths: dict[str, int | None] = {path: fmt for path, fmt in wanted}
        has_pos = any(
            o.get("object_id") == TRADING_STATE_RESOURCE.object_id
            and TRADING_STATE_RESOURCE.object_instance_id in (o.get("instances") or [])
            for o in objects
        )
        if has_pos:
            paths.setdefault(str(TRADING_STATE_RESOURCE), None)
        await self._reobserve(peer, paths)
        if queued is not None:
            await self.flush_queue(peer)

    async def _pending_work(self, terminal_id: int) -> tuple[list[Any], int | None]:
        async with self.db.session() as session:
            wanted = list(
                await session.execute(
                    select(Observation.path, Observation.content_format).where(
                        Observation.terminal_id == terminal_id
                    )
                )
            )
            queued = await session.scalar(
                select(QueuedOperation.id)
                .where(
                    QueuedOperation.terminal_id == terminal_id,
                    QueuedOperation.status == OperationStatus.QUEUED,
                )
                .limit(1)
            )
        return wanted, queued

    async def _reobserve(self, peer: Peer, paths: dict[str, int | None]) -> None:
        for path_text, fmt_number in paths.items():
            path = LwM2mPath.parse(path_text)
            try:
                outcome = await self.observe(peer, path, _known_format(fmt_number), remember=False)
                if outcome.values:
                    self.writer.submit(peer.terminal_id, outcome.values)
                if not outcome.ok:
                    log.info(
                        "%s: re-observe %s refused: %s", peer.endpoint, path, outcome.code.dotted
                    )
            except ServiceError as exc:
                log.info("%s: re-observe %s failed: %s", peer.endpoint, path, exc.message)
                return

    async def flush_queue(self, peer: Peer) -> int:
        """Send what waits for this terminal, oldest first; one flush at a time."""
        if peer.terminal_id not in self.pending:
            return 0
        lock = self._flushing.setdefault(peer.terminal_id, asyncio.Lock())
        sent = 0
        async with lock:
            while True:
                async with self.db.session() as session:
                    operation = await session.scalar(
                        select(QueuedOperation)
                        .where(
                            QueuedOperation.terminal_id == peer.terminal_id,
                            QueuedOperation.status == OperationStatus.QUEUED,
                        )
                        .order_by(QueuedOperation.id)
                        .limit(1)
                    )
                    if operation is None:
                        break
                    if operation.expires_at < utcnow():
                        operation.status = OperationStatus.EXPIRED
                        operation.finished_at = utcnow()
                        operation.result = {"status": "expired", "message": "expired in queue"}
                        continue
                    operation.status = OperationStatus.SENT
                    op_id, kind, body = operation.id, operation.kind, operation.request
                try:
                    request = OperationRequest.from_json(kind, dict(body))
                    result = await self.run_now(peer, request)
                except ServiceError as exc:
                    result = {"status": "failed", "message": exc.message}
                except Exception:  # never leave an operation "sent" forever
                    log.exception("%s: queued operation %d failed", peer.endpoint, op_id)
                    result = {"status": "failed", "message": "internal error; see the server log"}
                status = {
                    "done": OperationStatus.DONE,
                    "timeout": OperationStatus.TIMEOUT,
                }.get(str(result.get("status")), OperationStatus.FAILED)
                async with self.db.session() as session:
                    operation = await session.get(QueuedOperation, op_id)
                    if operation is not None:
                        operation.status = status
                        operation.result = result
                        operation.finished_at = utcnow()
                sent += 1
                if status is OperationStatus.TIMEOUT:
                    break  # it went back to sleep: the rest waits for the next Update
        if sent:
            log.info("%s: %d queued operation(s) sent", peer.endpoint, sent)
        return sent

    # --- helpers -------------------------------------------------------------------------

    def _peer(self, terminal: Terminal, registration: Registration | None) -> Peer | None:
        if registration is None or registration.ended_at is not None:
            return None
        peer = self.peers.get(terminal.id)
        if peer is None:
            # After a restart: rebuilt from the stored registration (plain CoAP only).
            peer = Peer(
                terminal.id,
                terminal.endpoint,
                registration.scheme,
                registration.address,
                registration.lwm2m_version,
                registration.content_format,
                registration.queue_mode,
                remote=None,
                last_heard=0.0,
            )
            self.peers.put(peer)
        return peer

    def _awake(self, peer: Peer) -> bool:
        return time.monotonic() - peer.last_heard < self.settings.queue_awake_s


class ValueWriter:
    """Writes notification values in batches: one transaction for many terminals.

    A fleet that trades notifies all the time; one session per notification ran the
    connection pool dry under load. Here the latest value per path wins until the next
    batch, which is what "last known value" means anyway.
    """

    def __init__(self, db: Database, interval_s: float = NOTIFY_BATCH_INTERVAL_S) -> None:
        self.db = db
        self.interval_s = interval_s
        self._pending: dict[int, dict[str, tuple[LwM2mPath, Any]]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def submit(self, terminal_id: int, items: list[tuple[LwM2mPath, Any]]) -> None:
        bucket = self._pending.setdefault(terminal_id, {})
        for path, value in items:
            bucket[str(path)] = (path, value)
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="notification writer")

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self.flush()
            await asyncio.sleep(self.interval_s)

    async def flush(self) -> None:
        batch, self._pending = self._pending, {}
        if not batch:
            return
        try:
            async with self.db.write_lock(), self.db.session() as session:
                await values.store_values(
                    session,
                    {terminal_id: bucket.values() for terminal_id, bucket in batch.items()},
                    "observe",
                )
        except Exception:
            log.exception("notification values of %d terminal(s) not stored", len(batch))

    async def close(self) -> None:
        await cancel_and_wait([self._task])
        await self.flush()


def _known_format(number: int | None) -> ContentFormat | None:
    if number is None:
        return None
    try:
        return ContentFormat(number)
    except ValueError:
        return None


def _as_records(items: list[Any]) -> list[Any]:
    from lwm2m_core.codec.records import Record

    return [Record(path, value) for path, value in items if path.depth == 3]

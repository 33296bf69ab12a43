"""Group commit: many small units of work from the CoAP side in one transaction.

Registrations, Updates and Sends each change a few rows; committing each alone made the
database round trips (and, on SQLite, the wait for the write lock) the server's limit.
Work submitted while a transaction runs waits for the next one, so under load every
transaction carries many units, and when idle a unit waits only for its own commit.

Contract for a unit of work: it may raise :class:`ServiceError` only before it changes
anything in the session (validate first, then write), so a refused unit leaves nothing
behind for its neighbours' commit. Any other failure fails the transaction, and then
every unit of that batch is run again on its own, so one bad unit cannot sink the rest.

Bulk units (:meth:`GroupCommit.run_bulk`): the hot paths (Register, Send) hand over a
plain value instead of a function, and one handler per kind gets all the values of the
batch at once, so it can write them with a few Core bulk statements (one INSERT for every
event of the batch) instead of one ORM unit of work per message. The handler answers
each value with its result or a :class:`ServiceError` instance (a refusal, for a value it
did not write). Either way the answer is given only after the transaction committed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from dm_server.db.session import Database
from dm_server.errors import ServiceError
from dm_server.tasks import cancel_and_wait

log = logging.getLogger(__name__)

T = TypeVar("T")
Work = Callable[[AsyncSession], Awaitable[Any]]
#: Gets every value of its kind in the batch; answers each with a result or a ServiceError.
BulkHandler = Callable[[AsyncSession, list[Any]], Awaitable[list[Any]]]
#: Marks a queue entry of a plain unit of work (no bulk value).
_SINGLE = object()
Entry = tuple[Any, Any, "asyncio.Future[Any]"]

#: Most units in one transaction.
MAX_BATCH = 200


class GroupCommit:
    def __init__(self, db: Database, max_batch: int = MAX_BATCH) -> None:
        self.db = db
        self.max_batch = max_batch
        self._queue: list[Entry] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        #: Transactions run and units carried, for measurements.
        self.transactions = 0
        self.units = 0

    async def run(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run ``work`` in the next transaction and return its result once committed."""
        return await self._submit(work, _SINGLE)  # type: ignore[no-any-return]

    async def run_bulk(self, handler: BulkHandler, value: Any) -> Any:
        """Hand ``value`` to ``handler`` with the rest of its kind in the next transaction;
        return its result once committed, or raise the ServiceError it answered."""
        return await self._submit(handler, value)

    async def _submit(self, work: Any, value: Any) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((work, value, future))
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop(), name="group commit")
        return await future

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
                await self._commit(batch)

    async def _commit(self, batch: list[Entry]) -> None:
        outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        bulk: dict[Any, list[tuple[Any, asyncio.Future[Any]]]] = {}
        try:
            async with self.db.write_lock(), self.db.session() as session:
                for work, value, future in batch:
                    if value is not _SINGLE:
                        bulk.setdefault(work, []).append((value, future))
                        continue
                    try:
                        outcomes.append((future, await work(session), None))
                    except ServiceError as exc:
                        outcomes.append((future, None, exc))
                for handler, entries in bulk.items():
                    results = await handler(session, [value for value, _ in entries])
                    for (_, future), result in zip(entries, results, strict=True):
                        if isinstance(result, ServiceError):
                            outcomes.append((future, None, result))
                        else:
                            outcomes.append((future, result, None))
        except Exception:
            log.warning("a batch of %d failed; running each alone", len(batch), exc_info=True)
            for work, value, future in batch:
                await self._alone(work, value, future)
            return
        self.transactions += 1
        self.units += len(batch)
        for future, result, error in outcomes:
            if future.done():
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)

    async def _alone(self, work: Any, value: Any, future: asyncio.Future[Any]) -> None:
        try:
            async with self.db.write_lock(), self.db.session() as session:
                if value is _SINGLE:
                    result = await work(session)
                else:
                    (result,) = await work(session, [value])
                    if isinstance(result, ServiceError):
                        raise result
        except BaseException as exc:  # handed to the waiting handler, which maps it
            if not future.done():
                future.set_exception(exc)
            return
        if not future.done():
            future.set_result(result)

    async def close(self) -> None:
        await cancel_and_wait([self._task])
        for _, _, future in self._queue:
            if not future.done():
                future.cancel()
        self._queue.clear()


def dialect_insert(session: AsyncSession, model: Any) -> Any:
    """``INSERT`` with ``ON CONFLICT`` support for the session's database (SQLite or
    PostgreSQL: both spell it the same, through their own SQLAlchemy dialect)."""
    bind = session.bind
    if bind is not None and bind.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(model)


_UPSERTS: dict[tuple[str, str, tuple[str, ...], tuple[str, ...]], Any] = {}


def upsert(
    session: AsyncSession, table: Any, conflict: tuple[str, ...], replace: tuple[str, ...] = ()
) -> Any:
    """``INSERT ... ON CONFLICT (conflict) DO UPDATE SET`` each of ``replace`` to the new
    row's value, or ``DO NOTHING`` when ``replace`` is empty.

    Built once per database kind and reused for every batch: building it (an alias of the
    table for ``excluded``, with a proxy for every column) cost about half a millisecond
    under cProfile,
    more than executing it for a batch of rows.
    """
    bind = session.bind
    key = (bind.dialect.name if bind is not None else "", table.name, conflict, replace)
    statement = _UPSERTS.get(key)
    if statement is None:
        insert = dialect_insert(session, table)
        if replace:
            statement = insert.on_conflict_do_update(
                index_elements=list(conflict),
                set_={name: insert.excluded[name] for name in replace},
            )
        else:
            statement = insert.on_conflict_do_nothing(index_elements=list(conflict))
        _UPSERTS[key] = statement
    return statement

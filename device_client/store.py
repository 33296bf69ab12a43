"""The terminal's durable local state: the event outbox and the trading counters, in SQLite.

Why one database: a sale changes today's counters *and* creates an event; both are written in
one transaction, so after a power cut the counters and the outbox always agree. SQLite runs
in WAL mode with ``synchronous=FULL``: once :meth:`TerminalStore.record_event` returns, the
event survives a crash or power loss. Events are removed from the outbox only after the
server acknowledged them (at-least-once); the server deduplicates by Event ID.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
#: FULL: a commit survives a power cut (the terminal). NORMAL: it survives a crash of the
#: process but maybe not of the machine (the simulator, with a thousand stores on one disk).
SYNC_MODES = ("FULL", "NORMAL")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    created REAL NOT NULL,
    body TEXT NOT NULL,
    acked REAL,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (acked, seq);
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


class EventType(StrEnum):
    """Values of resource 26243/x/1 Event Type."""

    SALE = "sale"
    REFUND = "refund"
    VOID = "void"
    DRAWER_OPEN = "drawer_open"
    ERROR = "error"
    SHIFT_OPEN = "shift_open"
    SHIFT_CLOSE = "shift_close"


@dataclass(frozen=True)
class PosEvent:
    """One trading event, as object 26243 carries it. Amounts are minor units, never < 0."""

    event_type: EventType
    time: datetime
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    amount: int | None = None
    currency: str | None = None
    cashier_id: str | None = None
    receipt: str | None = None
    original_receipt: str | None = None
    reason: str | None = None
    payment_method: str | None = None
    customer_present: bool | None = None
    item_count: int | None = None
    shift_id: str | None = None
    manager_approved: bool | None = None
    sequence: int | None = None

    def to_json(self) -> str:
        data = {k: v for k, v in self.__dict__.items() if v is not None and k != "sequence"}
        data["time"] = int(self.time.timestamp())
        data["event_type"] = self.event_type.value
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_row(cls, seq: int, body: str) -> PosEvent:
        data = json.loads(body)
        data["time"] = datetime.fromtimestamp(data["time"], UTC)
        data["event_type"] = EventType(data["event_type"])
        return cls(sequence=seq, **data)


class TerminalStore:
    """SQLite file with the outbox and key/value state. Thread-safe; calls are short."""

    def __init__(self, path: Path, synchronous: str = "FULL") -> None:
        if synchronous not in SYNC_MODES:
            raise ValueError(f"synchronous must be one of {', '.join(SYNC_MODES)}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self._db.executescript(_SCHEMA)
        self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION:d}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic, durable transaction (BEGIN IMMEDIATE .. COMMIT)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- key/value state -------------------------------------------------------------------
    def get(self, key: str, default: Any = None) -> Any:
        with self._lock:
            row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def put(self, key: str, value: Any, conn: sqlite3.Connection | None = None) -> None:
        sql = ("INSERT INTO kv (key, value) VALUES (?, ?) "
               "ON CONFLICT(key) DO UPDATE SET value = excluded.value")
        if conn is not None:
            conn.execute(sql, (key, json.dumps(value)))
            return
        with self.transaction() as db:
            db.execute(sql, (key, json.dumps(value)))

    # -- outbox ----------------------------------------------------------------------------
    def record_event(
        self, event: PosEvent, state_key: str | None = None, state: Any = None
    ) -> PosEvent:
        """Append ``event`` (and, atomically, the new trading state) to the outbox."""
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT INTO outbox (event_id, created, body) VALUES (?, ?, ?)",
                (event.event_id, time.time(), event.to_json()),
            )
            if state_key is not None:
                self.put(state_key, state, conn=db)
        return PosEvent.from_row(int(cursor.lastrowid or 0), event.to_json())

    def pending(self, limit: int) -> list[PosEvent]:
        """The oldest events the server has not acknowledged yet."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, body FROM outbox WHERE acked IS NULL ORDER BY seq LIMIT ?", (limit,)
            ).fetchall()
        return [PosEvent.from_row(seq, body) for seq, body in rows]

    def pending_count(self) -> int:
        with self._lock:
            return int(
                self._db.execute("SELECT count(*) FROM outbox WHERE acked IS NULL").fetchone()[0]
            )

    def mark_attempt(self, seqs: list[int]) -> None:
        with self.transaction() as db:
            db.executemany("UPDATE outbox SET attempts = attempts + 1 WHERE seq = ?",
                           [(s,) for s in seqs])

    def acknowledge(self, seqs: list[int], keep: int) -> None:
        """Mark events delivered; keep only the newest ``keep`` delivered ones for reading."""
        now = time.time()
        with self.transaction() as db:
            db.executemany("UPDATE outbox SET acked = ? WHERE seq = ?", [(now, s) for s in seqs])
            db.execute(
                "DELETE FROM outbox WHERE acked IS NOT NULL AND seq NOT IN "
                "(SELECT seq FROM outbox WHERE acked IS NOT NULL ORDER BY seq DESC LIMIT ?)",
                (keep,),
            )

    def recent(self, limit: int) -> list[PosEvent]:
        """The newest events, delivered or not, for object 26243."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, body FROM outbox ORDER BY seq DESC LIMIT ?", (limit,)
            ).fetchall()
        return [PosEvent.from_row(seq, body) for seq, body in reversed(rows)]

    def event(self, seq: int) -> PosEvent | None:
        with self._lock:
            row = self._db.execute("SELECT seq, body FROM outbox WHERE seq = ?", (seq,)).fetchone()
        return PosEvent.from_row(*row) if row else None

    def all_events(self) -> list[tuple[PosEvent, bool]]:
        """Every event still stored and whether it was acknowledged (for tests and tools)."""
        with self._lock:
            rows = self._db.execute("SELECT seq, body, acked FROM outbox ORDER BY seq").fetchall()
        return [(PosEvent.from_row(seq, body), acked is not None) for seq, body, acked in rows]

    def wipe(self) -> None:
        """Factory reset: drop every event and every stored value."""
        with self.transaction() as db:
            db.execute("DELETE FROM outbox")
            db.execute("DELETE FROM kv")
            db.execute("DELETE FROM sqlite_sequence WHERE name = 'outbox'")

"""The trading side of the terminal as the agent sees it: shifts, sales, refunds, voids.

The cashier application (or the simulator) calls these methods; each changes the trading
counters and appends a :class:`~device_client.store.PosEvent` to the outbox in one SQLite
transaction, then tells the object tree what changed so observers get notified.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from enum import IntEnum

from device_client.store import EventType, PosEvent, TerminalStore

STATE_KEY = "trading"
#: A terminal with a sale this recent counts as Running even without an open shift.
RECENT_SALE = timedelta(minutes=5)


class TradingState(IntEnum):
    """Resource 26241/0/0."""

    IDLE = 0
    RUNNING = 1
    OUT_OF_SERVICE = 2


class PeripheralStatus(IntEnum):
    """Resources 26241/0/16, 17, 19."""

    OK = 0
    WARNING = 1
    FAULT = 2
    NOT_CONNECTED = 3


class TradingError(ValueError):
    """A trading action that does not fit the current state (e.g. a sale without a shift)."""


@dataclass
class TradingCounters:
    business_date: str = ""
    shift_open: bool = False
    shift_id: str = ""
    shift_opened_at: int = 0
    cashier: str = ""
    sales_count: int = 0
    sales_amount: int = 0
    refunds_count: int = 0
    refunds_amount: int = 0
    voids_count: int = 0
    last_sale: int = 0
    receipt_counter: int = 0
    visitors: int = 0
    recognised: int = 0


class PosTerminal:
    """Trading state persisted in the terminal store; every change is one transaction."""

    def __init__(
        self, store: TerminalStore, currency: str, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.store = store
        self.currency = currency
        self.clock = clock or (lambda: datetime.now(UTC))
        self.out_of_service = False
        self.printer = PeripheralStatus.OK
        self.drawer = PeripheralStatus.OK
        self.drawer_open = False
        self.camera = PeripheralStatus.NOT_CONNECTED
        self.listeners: list[Callable[[PosEvent | None], None]] = []
        saved = store.get(STATE_KEY)
        self.counters = TradingCounters(**saved) if saved else TradingCounters()
        self._roll_day()

    # -- derived state ---------------------------------------------------------------------
    @property
    def trading_state(self) -> TradingState:
        if self.out_of_service:
            return TradingState.OUT_OF_SERVICE
        recent = self.counters.last_sale and (
            self.clock() - datetime.fromtimestamp(self.counters.last_sale, UTC) < RECENT_SALE
        )
        return TradingState.RUNNING if self.counters.shift_open or recent else TradingState.IDLE

    def _roll_day(self) -> None:
        today = self.clock().date().isoformat()
        if self.counters.business_date != today:
            keep = {
                "shift_open": self.counters.shift_open,
                "shift_id": self.counters.shift_id,
                "shift_opened_at": self.counters.shift_opened_at,
                "cashier": self.counters.cashier,
                "last_sale": self.counters.last_sale,
                "receipt_counter": self.counters.receipt_counter,
            }
            self.counters = TradingCounters(business_date=today, **keep)

    def _record(self, event: PosEvent, counters: TradingCounters) -> PosEvent:
        stored = self.store.record_event(event, STATE_KEY, asdict(counters))
        self.counters = counters
        for listener in list(self.listeners):
            listener(stored)
        return stored

    def _next(self) -> tuple[TradingCounters, datetime]:
        self._roll_day()
        return TradingCounters(**asdict(self.counters)), self.clock().replace(microsecond=0)

    # -- actions ---------------------------------------------------------------------------
    def open_shift(self, cashier: str) -> PosEvent:
        if self.counters.shift_open:
            raise TradingError("a shift is already open")
        c, now = self._next()
        c.shift_open, c.shift_id, c.cashier = True, uuid.uuid4().hex[:12], cashier
        c.shift_opened_at = int(now.timestamp())
        return self._record(
            PosEvent(EventType.SHIFT_OPEN, now, cashier_id=cashier, shift_id=c.shift_id), c
        )

    def close_shift(self) -> PosEvent:
        if not self.counters.shift_open:
            raise TradingError("no shift is open")
        c, now = self._next()
        cashier = c.cashier
        c.shift_open, c.cashier = False, ""
        return self._record(
            PosEvent(EventType.SHIFT_CLOSE, now, cashier_id=cashier, shift_id=c.shift_id), c
        )

    def _require_shift(self) -> None:
        if not self.counters.shift_open:
            raise TradingError("open a shift first")

    def sale(
        self, amount: int, items: int = 1, payment: str = "card",
        customer_present: bool | None = None,
    ) -> PosEvent:
        self._require_shift()
        if amount <= 0:
            raise TradingError("a sale amount must be positive")
        c, now = self._next()
        c.sales_count += 1
        c.sales_amount += amount
        c.last_sale = int(now.timestamp())
        c.receipt_counter += 1
        return self._record(
            PosEvent(
                EventType.SALE, now, amount=amount, currency=self.currency, cashier_id=c.cashier,
                receipt=f"R{c.receipt_counter:08d}", payment_method=payment,
                customer_present=customer_present, item_count=items, shift_id=c.shift_id,
            ),
            c,
        )

    def refund(
        self, amount: int, original_receipt: str, reason: str, manager_approved: bool = True,
        customer_present: bool | None = None,
    ) -> PosEvent:
        self._require_shift()
        if amount <= 0:
            raise TradingError("a refund amount must be positive")
        c, now = self._next()
        c.refunds_count += 1
        c.refunds_amount += amount
        c.receipt_counter += 1
        return self._record(
            PosEvent(
                EventType.REFUND, now, amount=amount, currency=self.currency,
                cashier_id=c.cashier, receipt=f"R{c.receipt_counter:08d}",
                original_receipt=original_receipt, reason=reason,
                manager_approved=manager_approved, customer_present=customer_present,
                shift_id=c.shift_id,
            ),
            c,
        )

    def void(self, amount: int, reason: str) -> PosEvent:
        self._require_shift()
        c, now = self._next()
        c.voids_count += 1
        return self._record(
            PosEvent(EventType.VOID, now, amount=max(amount, 0), currency=self.currency,
                     cashier_id=c.cashier, reason=reason, shift_id=c.shift_id),
            c,
        )

    def open_drawer(self) -> PosEvent:
        c, now = self._next()
        return self._record(
            PosEvent(EventType.DRAWER_OPEN, now, cashier_id=c.cashier or None,
                     shift_id=c.shift_id or None),
            c,
        )

    def error(self, message: str) -> PosEvent:
        c, now = self._next()
        return self._record(PosEvent(EventType.ERROR, now, reason=message[:200]), c)

    def visitor(self, recognised: bool) -> None:
        """Count a customer seen at the counter (aggregates for object 26244)."""
        c, _ = self._next()
        c.visitors += 1
        c.recognised += int(recognised)
        self.store.put(STATE_KEY, asdict(c))
        self.counters = c
        for listener in list(self.listeners):
            listener(None)

"""Our POS objects: 26241 POS Terminal, 26242 POS License, 26243 POS Event, 26244 Customer
Insight. Resource ids and meanings are those of ``object_defs/2624x.xml``."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from enum import IntEnum

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from device_client.errors import BadRequest, NotFound
from device_client.objects.base import (
    InstanceEnabler,
    ObjectEnabler,
    ResourceValue,
    parse_execute_arguments,
)
from device_client.pos import PosTerminal
from device_client.store import PosEvent, TerminalStore
from lwm2m_core.model import ObjectModel
from lwm2m_core.path import MAX_ID
from posfleet.licence_token import LicenceState, LicenceStatus, verify_token


class R26241(IntEnum):
    TRADING_STATE = 0
    SHIFT_OPEN = 1
    SHIFT_ID = 2
    SHIFT_OPENED_AT = 3
    CASHIER = 4
    BUSINESS_DATE = 5
    SALES_COUNT = 6
    SALES_AMOUNT = 7
    REFUNDS_COUNT = 8
    REFUNDS_AMOUNT = 9
    VOIDS_COUNT = 10
    CURRENCY = 11
    LAST_SALE = 12
    STORE_ID = 13
    STORE_NAME = 14
    OPENING_HOURS = 15
    PRINTER = 16
    DRAWER = 17
    DRAWER_OPEN = 18
    CAMERA = 19
    APP_VERSION = 20
    PENDING_EVENTS = 21


def _time(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class PosTerminalInstance(InstanceEnabler):
    """26241/0: computed from the trading state on every read."""

    def __init__(self, pos: PosTerminal, store: TerminalStore, app_version: str,
                 store_id: str, store_name: str) -> None:
        saved = store.get("store", {})
        super().__init__(0, {
            R26241.STORE_ID: saved.get("id", store_id),
            R26241.STORE_NAME: saved.get("name", store_name),
            R26241.OPENING_HOURS: saved.get("hours", "09:00-22:00"),
            R26241.APP_VERSION: app_version,
            R26241.CURRENCY: pos.currency,
        })
        self.pos = pos
        self.store = store
        pos.listeners.append(lambda event: self.changed())

    def dynamic_ids(self) -> Iterable[int]:
        ids = [R26241.TRADING_STATE, R26241.SHIFT_OPEN, R26241.BUSINESS_DATE, R26241.SALES_COUNT,
               R26241.SALES_AMOUNT, R26241.REFUNDS_COUNT, R26241.REFUNDS_AMOUNT,
               R26241.VOIDS_COUNT, R26241.PRINTER, R26241.DRAWER, R26241.DRAWER_OPEN,
               R26241.CAMERA, R26241.PENDING_EVENTS, R26241.CASHIER]
        c = self.pos.counters
        if c.shift_id:
            ids += [R26241.SHIFT_ID, R26241.SHIFT_OPENED_AT]
        if c.last_sale:
            ids.append(R26241.LAST_SALE)
        return ids

    def read(self, resource_id: int) -> ResourceValue:
        pos, c = self.pos, self.pos.counters
        computed: dict[int, Callable[[], ResourceValue]] = {
            R26241.TRADING_STATE: lambda: int(pos.trading_state),
            R26241.SHIFT_OPEN: lambda: c.shift_open,
            R26241.SHIFT_ID: lambda: c.shift_id,
            R26241.SHIFT_OPENED_AT: lambda: _time(c.shift_opened_at),
            R26241.CASHIER: lambda: c.cashier,
            R26241.BUSINESS_DATE: lambda: c.business_date,
            R26241.SALES_COUNT: lambda: c.sales_count,
            R26241.SALES_AMOUNT: lambda: c.sales_amount,
            R26241.REFUNDS_COUNT: lambda: c.refunds_count,
            R26241.REFUNDS_AMOUNT: lambda: c.refunds_amount,
            R26241.VOIDS_COUNT: lambda: c.voids_count,
            R26241.LAST_SALE: lambda: _time(c.last_sale),
            R26241.PRINTER: lambda: int(pos.printer),
            R26241.DRAWER: lambda: int(pos.drawer),
            R26241.DRAWER_OPEN: lambda: pos.drawer_open,
            R26241.CAMERA: lambda: int(pos.camera),
            R26241.PENDING_EVENTS: self.store.pending_count,
        }
        if resource_id in computed:
            return computed[resource_id]()
        return super().read(resource_id)

    def check_write(self, resource_id: int, value: ResourceValue) -> None:
        if resource_id == R26241.OPENING_HOURS:
            text = str(value)
            ok = len(text) == 11 and text[5] == "-" and all(
                part[2] == ":" and part[:2].isdigit() and part[3:].isdigit()
                and int(part[:2]) < 24 and int(part[3:]) < 60
                for part in (text[:5], text[6:])
            )
            if not ok:
                raise BadRequest("opening hours must be HH:MM-HH:MM")
        elif isinstance(value, str) and len(value) > 100:
            raise BadRequest("at most 100 characters")

    def write(self, resource_id: int, value: ResourceValue) -> None:
        super().write(resource_id, value)
        self.store.put("store", {
            "id": self.values.get(R26241.STORE_ID, ""),
            "name": self.values.get(R26241.STORE_NAME, ""),
            "hours": self.values.get(R26241.OPENING_HOURS, ""),
        })


class R26242(IntEnum):
    TOKEN = 0
    STATUS = 1
    LICENCE_ID = 2
    EDITION = 3
    FEATURES = 4
    ISSUED_AT = 5
    STARTS_AT = 6
    EXPIRES_AT = 7
    GRACE_DAYS = 8
    STATUS_REASON = 9
    LAST_VERIFIED = 10
    REVOKE = 11
    KEY_ID = 12


TOKEN_KEY = "licence_token"  # noqa: S105 - a storage key, not a secret
REVOKED_KEY = "licence_revoked"


class LicenceInstance(InstanceEnabler):
    """26242/0: the server writes a signed token; the terminal verifies it offline.

    A token that is not authentic (bad signature, foreign key, other terminal, garbage) is
    refused with 4.00 and the licence in force stays. An authentic token is kept even when
    expired or not yet valid; its status is worked out again on every read, so expiry and
    the grace period take effect without the server.
    """

    executable = frozenset({R26242.REVOKE})

    def __init__(self, store: TerminalStore, endpoint: str,
                 trusted_keys: Callable[[], list[Ed25519PublicKey]],
                 logger: logging.Logger) -> None:
        super().__init__(0)
        self.store = store
        self.endpoint = endpoint
        self.trusted_keys = trusted_keys
        self.log = logger
        self.last_verified = datetime.now(UTC).replace(microsecond=0)

    @property
    def token(self) -> str:
        return str(self.store.get(TOKEN_KEY, ""))

    def status(self) -> LicenceStatus:
        self.last_verified = datetime.now(UTC).replace(microsecond=0)
        if self.store.get(REVOKED_KEY, False):
            return LicenceStatus(LicenceState.REVOKED, "revoked by the server")
        keys = self.trusted_keys()
        if self.token and not keys:
            return LicenceStatus(LicenceState.INVALID, "no manufacturer key is configured")
        return verify_token(self.token, keys, self.endpoint)

    def dynamic_ids(self) -> Iterable[int]:
        ids = [R26242.TOKEN, R26242.STATUS, R26242.STATUS_REASON, R26242.LAST_VERIFIED]
        if self.status().licence is not None:
            ids += [R26242.LICENCE_ID, R26242.EDITION, R26242.FEATURES, R26242.ISSUED_AT,
                    R26242.STARTS_AT, R26242.EXPIRES_AT, R26242.GRACE_DAYS, R26242.KEY_ID]
        return ids

    def read(self, resource_id: int) -> ResourceValue:
        if resource_id == R26242.TOKEN:
            return self.token
        status = self.status()
        if resource_id == R26242.STATUS:
            return int(status.state)
        if resource_id == R26242.STATUS_REASON:
            return status.reason
        if resource_id == R26242.LAST_VERIFIED:
            return self.last_verified
        licence = status.licence
        if licence is None:
            raise NotFound("no licence is installed")
        values: dict[int, ResourceValue] = {
            R26242.LICENCE_ID: licence.licence_id,
            R26242.EDITION: licence.edition,
            R26242.FEATURES: dict(enumerate(licence.features)),
            R26242.ISSUED_AT: licence.issued,
            R26242.STARTS_AT: licence.starts,
            R26242.EXPIRES_AT: licence.expires,
            R26242.GRACE_DAYS: licence.grace_days,
            R26242.KEY_ID: licence.key_id,
        }
        if resource_id in values:
            return values[resource_id]
        return super().read(resource_id)

    def check_write(self, resource_id: int, value: ResourceValue) -> None:
        if resource_id != R26242.TOKEN or value == "":
            return
        keys = self.trusted_keys()
        if not keys:
            raise BadRequest("this terminal has no manufacturer key to verify licences")
        status = verify_token(str(value), keys, self.endpoint)
        if status.licence is None or status.state is LicenceState.INVALID:
            self.log.warning("licence token refused: %s", status.reason)
            raise BadRequest(f"licence token refused: {status.reason}")

    def write(self, resource_id: int, value: ResourceValue) -> None:
        if resource_id == R26242.TOKEN:
            with self.store.transaction() as db:
                self.store.put(TOKEN_KEY, str(value), conn=db)
                self.store.put(REVOKED_KEY, False, conn=db)
            self.log.info("licence token %s; status %s", "removed" if not value else "installed",
                          self.status().state.name)
            self.changed()
            return
        super().write(resource_id, value)

    async def execute(self, resource_id: int, arguments: str) -> None:
        self.store.put(REVOKED_KEY, True)
        self.log.warning("licence revoked by the server")
        self.changed()


class R26243(IntEnum):
    EVENT_ID = 0
    EVENT_TYPE = 1
    TIME = 2
    AMOUNT = 3
    CURRENCY = 4
    CASHIER = 5
    RECEIPT = 6
    ORIGINAL_RECEIPT = 7
    REASON = 8
    PAYMENT = 9
    CUSTOMER_PRESENT = 10
    ITEM_COUNT = 11
    SHIFT_ID = 12
    MANAGER_APPROVED = 13
    SEQUENCE = 14


def event_instance_id(sequence: int) -> int:
    """Instance id of an event in object 26243: its sequence number, wrapped below 65535."""
    return sequence % MAX_ID


def event_values(event: PosEvent) -> dict[int, ResourceValue]:
    """The resources of one 26243 instance for ``event`` (absent fields are left out)."""
    fields: dict[int, object] = {
        R26243.EVENT_ID: event.event_id,
        R26243.EVENT_TYPE: event.event_type.value,
        R26243.TIME: event.time,
        R26243.AMOUNT: event.amount,
        R26243.CURRENCY: event.currency,
        R26243.CASHIER: event.cashier_id,
        R26243.RECEIPT: event.receipt,
        R26243.ORIGINAL_RECEIPT: event.original_receipt,
        R26243.REASON: event.reason,
        R26243.PAYMENT: event.payment_method,
        R26243.CUSTOMER_PRESENT: event.customer_present,
        R26243.ITEM_COUNT: event.item_count,
        R26243.SHIFT_ID: event.shift_id,
        R26243.MANAGER_APPROVED: event.manager_approved,
        R26243.SEQUENCE: event.sequence,
    }
    return {rid: value for rid, value in fields.items() if value is not None}  # type: ignore[misc]


class EventObject(ObjectEnabler):
    """26243: the most recent events from the outbox, one instance each, read-only."""

    listed_in_registration = False

    def __init__(self, model: ObjectModel, store: TerminalStore, keep: int) -> None:
        self.store = store
        self.keep = keep
        super().__init__(model)

    @property  # type: ignore[override]
    def instances(self) -> dict[int, InstanceEnabler]:
        out = {}
        for event in self.store.recent(self.keep):
            iid = event_instance_id(event.sequence or 0)
            instance = InstanceEnabler(iid, event_values(event))
            instance.bind(self.id, self._listener)
            out[iid] = instance
        return out

    @instances.setter
    def instances(self, value: dict[int, InstanceEnabler]) -> None:
        """Instances come from the outbox; assignments by the base class are ignored."""


class R26244(IntEnum):
    PERIOD_START = 0
    VISITORS = 1
    RECOGNISED = 2
    ENROLLED = 3
    CONSENTED = 4
    RECOGNITION_ENABLED = 12
    EMOTION_ENABLED = 13
    DELETE_CUSTOMER = 14


INSIGHT_KEY = "insight_switches"


class CustomerInsightInstance(InstanceEnabler):
    """26244/0: aggregates only. The vision pipeline is not part of the agent; without it the
    counts are those the POS side reports (:meth:`PosTerminal.visitor`)."""

    executable = frozenset({R26244.DELETE_CUSTOMER})

    def __init__(self, pos: PosTerminal, store: TerminalStore,
                 delete_customer: Callable[[str], None] | None = None) -> None:
        switches = store.get(INSIGHT_KEY, {"recognition": False, "emotion": False})
        super().__init__(0, {
            R26244.RECOGNITION_ENABLED: bool(switches.get("recognition")),
            R26244.EMOTION_ENABLED: bool(switches.get("emotion")),
            R26244.ENROLLED: 0,
            R26244.CONSENTED: 0,
        })
        self.pos = pos
        self.store = store
        self.delete_customer = delete_customer
        self.deleted: list[str] = []
        pos.listeners.append(lambda event: self.changed() if event is None else None)

    def dynamic_ids(self) -> Iterable[int]:
        return (R26244.PERIOD_START, R26244.VISITORS, R26244.RECOGNISED)

    def read(self, resource_id: int) -> ResourceValue:
        c = self.pos.counters
        if resource_id == R26244.PERIOD_START:
            day = datetime.fromisoformat(c.business_date) if c.business_date else datetime.now()
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        if resource_id == R26244.VISITORS:
            return c.visitors
        if resource_id == R26244.RECOGNISED:
            return c.recognised
        return super().read(resource_id)

    def write(self, resource_id: int, value: ResourceValue) -> None:
        super().write(resource_id, value)
        self.store.put(INSIGHT_KEY, {
            "recognition": self.values[R26244.RECOGNITION_ENABLED],
            "emotion": self.values[R26244.EMOTION_ENABLED],
        })

    async def execute(self, resource_id: int, arguments: str) -> None:
        customer = parse_execute_arguments(arguments).get(0)
        if not customer:
            raise BadRequest("Delete Customer needs the argument 0='<customer id>'")
        if self.delete_customer is not None:
            self.delete_customer(customer)
        self.deleted.append(customer)

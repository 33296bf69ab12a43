"""A simulated fleet: many terminal agents in one process, each with its own UDP socket,
endpoint name, credentials and data folder, trading like a shop does.

``Fleet(server_uri, terminals).start()`` / ``.stop()`` is the async API the demo and the
benchmarks use; ``posfleet simulate`` wraps it. Trading: a shift opens, sales come at random
(exponential gaps), a few refunds (some suspicious: no customer at the counter, no manager
approval, a big amount, followed by a drawer opening), voids, the shift closes and a new one
opens later. A share of terminals runs old firmware, and a few go offline (socket closed,
no de-registration) and come back later.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import gc
import logging
import random
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from device_client.agent import Agent, wipe_local_state
from device_client.pos import PosTerminal, TradingError
from device_client.settings import TerminalSettings

log = logging.getLogger("device_client.simulator")

#: Columns of the server's bulk provisioning CSV (dm_server.services.terminals.CSV_COLUMNS).
CSV_COLUMNS = ("endpoint", "security_mode", "psk_identity", "psk_key_hex", "owner_id")
PSK_BYTES = 16
CASHIERS = ("kim", "lee", "park", "choi", "jung", "kang", "cho", "yoon")
OLD_FIRMWARE, CURRENT_FIRMWARE = "0.9.0", "1.0.0"


@dataclass(frozen=True)
class SimulatedTerminal:
    endpoint: str
    psk_identity: str = ""
    psk_key: bytes = b""
    owner_id: int | None = None

    @property
    def security_mode(self) -> str:
        return "psk" if self.psk_key else "nosec"


def make_terminals(count: int, prefix: str = "sim", secure: bool = True,
                   start: int = 1) -> list[SimulatedTerminal]:
    """``count`` terminals named ``<prefix>-0001``..., each with a fresh random PSK."""
    out = []
    for number in range(start, start + count):
        endpoint = f"{prefix}-{number:04d}"
        if secure:
            out.append(SimulatedTerminal(endpoint, endpoint, secrets.token_bytes(PSK_BYTES)))
        else:
            out.append(SimulatedTerminal(endpoint))
    return out


def write_csv(terminals: Iterable[SimulatedTerminal], path: Path) -> None:
    """The server's bulk-provisioning CSV; it holds keys, so it is written owner-only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        path.chmod(0o600)
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for t in terminals:
            writer.writerow([t.endpoint, t.security_mode, t.psk_identity, t.psk_key.hex(),
                             "" if t.owner_id is None else t.owner_id])


def read_csv(path: Path) -> list[SimulatedTerminal]:
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    out = []
    for row in rows:
        key = bytes.fromhex(row.get("psk_key_hex") or "")
        owner = (row.get("owner_id") or "").strip()
        out.append(SimulatedTerminal(row["endpoint"].strip(), (row.get("psk_identity") or ""),
                                     key if row.get("security_mode", "psk") == "psk" else b"",
                                     int(owner) if owner else None))
    return out


@dataclass
class TradingProfile:
    """How busy a shop is; ``speed`` compresses time (10 = a day in 2.4 hours)."""

    sales_per_hour: float = 30.0
    refund_share: float = 0.04
    suspicious_share: float = 0.3
    void_share: float = 0.02
    shift_hours: float = 8.0
    break_hours: float = 1.0
    speed: float = 1.0
    average_sale: int = 12_000  # KRW


async def trade(pos: PosTerminal, profile: TradingProfile, rng: random.Random,
                stop: asyncio.Event | None = None) -> None:
    """Run a shop on ``pos`` until cancelled (or ``stop`` is set)."""
    stop = stop or asyncio.Event()
    receipts: list[tuple[str, int]] = []
    hour = 3600.0 / profile.speed
    while not stop.is_set():
        if not pos.counters.shift_open:
            with contextlib.suppress(TradingError):
                pos.open_shift(rng.choice(CASHIERS))
        shift_end = time.monotonic() + profile.shift_hours * hour * rng.uniform(0.8, 1.2)
        while time.monotonic() < shift_end and not stop.is_set():
            await asyncio.sleep(rng.expovariate(profile.sales_per_hour / hour))
            if not pos.counters.shift_open:
                break
            roll = rng.random()
            if roll < profile.refund_share and receipts:
                receipt, amount = rng.choice(receipts)
                suspicious = rng.random() < profile.suspicious_share
                pos.refund(
                    amount * (3 if suspicious and rng.random() < 0.3 else 1), receipt,
                    reason=rng.choice(["changed mind", "damaged", "wrong item"]),
                    manager_approved=not suspicious or rng.random() < 0.5,
                    customer_present=not suspicious,
                )
                if suspicious and rng.random() < 0.7:
                    pos.open_drawer()
            elif roll < profile.refund_share + profile.void_share:
                pos.void(int(rng.lognormvariate(0, 0.6) * profile.average_sale), "cashier error")
            else:
                price = int(rng.lognormvariate(0, 0.6) * profile.average_sale)
                amount = max(500, price // 100 * 100)
                present = rng.random() < 0.9
                event = pos.sale(amount, items=rng.randint(1, 6),
                                 payment=rng.choice(["card", "card", "card", "cash"]),
                                 customer_present=present)
                if present:
                    pos.visitor(recognised=rng.random() < 0.3)
                receipts = [*receipts[-49:], (event.receipt or "", amount)]
        with contextlib.suppress(TradingError):
            pos.close_shift()
        await asyncio.sleep(profile.break_hours * hour * rng.uniform(0.5, 1.5))


@dataclass
class FleetStats:
    started: int = 0
    registered: int = 0
    events_created: int = 0
    events_sent: int = 0
    pending: int = 0
    offline_now: int = 0
    loop_lag_max_ms: float = 0.0


@dataclass
class _Member:
    terminal: SimulatedTerminal
    settings: TerminalSettings
    agent: Agent | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    events_sent_before: int = 0


class Fleet:
    """N simulated terminals in this process. ``await start()``, ``await stop()``."""

    def __init__(
        self,
        server_uri: str,
        terminals: list[SimulatedTerminal] | int,
        data_dir: Path,
        manufacturer_key: str = "",
        profile: TradingProfile | None = None,
        old_firmware_share: float = 0.1,
        flaky_share: float = 0.05,
        lifetime: int = 300,
        seed: int | None = None,
        trading: bool = True,
        start_rate: float = 200.0,
        bind_host: str = "127.0.0.1",
    ) -> None:
        if isinstance(terminals, int):
            terminals = make_terminals(terminals, secure=server_uri.startswith("coaps"))
        self.server_uri = server_uri
        self.data_dir = Path(data_dir)
        self.profile = profile or TradingProfile()
        self.rng = random.Random(seed)  # noqa: S311 - simulation, not cryptography
        self.flaky_share = flaky_share
        self.trading = trading
        self.start_rate = start_rate
        self.members: list[_Member] = []
        for index, t in enumerate(terminals):
            old = self.rng.random() < old_firmware_share
            settings = TerminalSettings(
                server_uri=server_uri, endpoint=t.endpoint, psk_identity=t.psk_identity,
                psk_key=t.psk_key, data_dir=self.data_dir / t.endpoint, lifetime=lifetime,
                manufacturer_key=manufacturer_key, bind_host=bind_host,
                firmware_version=OLD_FIRMWARE if old else CURRENT_FIRMWARE,
                store_id=f"store-{index // 3 + 1:03d}", store_name=f"Store {index // 3 + 1}",
                backoff_initial=5.0, backoff_max=120.0, log_lines=50, outbox_sync="NORMAL",
            ).validate()
            self.members.append(_Member(t, settings))
        self._background: list[asyncio.Task[None]] = []
        self._lag_ms = 0.0

    # -- life cycle ---------------------------------------------------------------------
    async def start(self) -> None:
        """Start every terminal, ``start_rate`` per second, so the server sees no wall."""
        gap = 1.0 / self.start_rate if self.start_rate > 0 else 0.0
        for member in self.members:
            await self._start_member(member)
            if gap:
                await asyncio.sleep(gap)
        # A thousand agents are a big, long-lived heap: keep it out of full GC passes,
        # which otherwise stall the event loop for hundreds of milliseconds.
        gc.collect()
        gc.freeze()
        self._background.append(asyncio.create_task(self._measure_lag()))
        if self.flaky_share > 0:
            self._background.append(asyncio.create_task(self._outages()))
        log.info("fleet of %d terminals started against %s", len(self.members), self.server_uri)

    async def _start_member(self, member: _Member) -> None:
        member.agent = Agent(member.settings, rng=random.Random(self.rng.random()))  # noqa: S311
        member.agent.log.setLevel(logging.WARNING)
        await member.agent.start()
        self._background.append(
            asyncio.create_task(self._restart_on_request(member, member.agent))
        )
        if self.trading:
            rng = random.Random(self.rng.random())  # noqa: S311
            member.tasks.append(asyncio.create_task(trade(member.agent.pos, self.profile, rng)))

    async def _restart_on_request(self, member: _Member, agent: Agent) -> None:
        """Reboot (/3/0/4), factory reset and firmware updates restart the terminal
        software, as ``run_terminal`` does on a real terminal."""
        reason = await agent.restart_reason
        if member.agent is not agent:
            return
        await self._stop_member(member, deregister=True)
        if reason == "factory reset":
            wipe_local_state(member.settings)
        await self._start_member(member)

    async def _stop_member(self, member: _Member, deregister: bool) -> None:
        for task in member.tasks:
            task.cancel()
        member.tasks.clear()
        if member.agent is not None:
            member.events_sent_before += member.agent.sent_events
            await member.agent.stop(deregister=deregister)
            member.agent = None

    async def stop(self) -> None:
        for task in self._background:
            task.cancel()
        await asyncio.gather(*(self._stop_member(m, True) for m in self.members),
                             return_exceptions=True)

    async def wait_registered(self, timeout: float) -> int:
        """Wait until every running terminal is registered (or the timeout); returns how many."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.stats().registered == sum(1 for m in self.members if m.agent):
                break
            await asyncio.sleep(0.1)
        return self.stats().registered

    # -- behaviour ----------------------------------------------------------------------
    async def _outages(self) -> None:
        """Now and then a terminal loses power or network and comes back minutes later."""
        hour = 3600.0 / self.profile.speed
        while True:
            await asyncio.sleep(self.rng.expovariate(max(1e-6, self.flaky_share)
                                                     * len(self.members) / hour))
            member = self.rng.choice(self.members)
            if member.agent is None:
                continue
            log.info("%s goes offline", member.terminal.endpoint)
            await self._stop_member(member, deregister=False)
            await asyncio.sleep(self.rng.uniform(0.05, 0.3) * hour)
            await self._start_member(member)

    async def _measure_lag(self) -> None:
        """How late the event loop wakes up: the simulator is saturated when this grows."""
        interval = 0.5
        while True:
            before = time.perf_counter()
            await asyncio.sleep(interval)
            self._lag_ms = max(self._lag_ms, (time.perf_counter() - before - interval) * 1000)

    def stats(self, reset_lag: bool = False) -> FleetStats:
        s = FleetStats(started=len(self.members))
        for m in self.members:
            s.events_sent += m.events_sent_before
            if m.agent is None:
                s.offline_now += 1
                continue
            s.registered += int(m.agent.registered)
            s.events_sent += m.agent.sent_events
            s.pending += m.agent.store.pending_count()
            s.events_created += m.agent.store.pending_count()
        s.events_created += s.events_sent
        s.loop_lag_max_ms = round(self._lag_ms, 1)
        if reset_lag:
            self._lag_ms = 0.0
        return s

    def agent(self, endpoint: str) -> Agent | None:
        return next((m.agent for m in self.members if m.terminal.endpoint == endpoint), None)

"""PosFleet DM server benchmark: ``python -m bench`` (or ``python bench/run.py``).

Starts each server under test in its own process pinned to one core, drives it from this
process (pinned to the other core) with many simulated terminals over loopback, and prints
one JSON document: the DM server's figures, the same measurements against a plain aiocoap
echo server (the ceiling), and their ratios. Every phase is bounded in count and time.
See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.loadgen import Fleet, PhaseResult, SimulatedTerminal, endpoint_names, run_phase
from bench.targets import (
    DmServerTarget,
    EchoTarget,
    Target,
    cpu_seconds,
    pin_generator,
    resident_kib,
)
from lwm2m_core.codec import Record, encode_records
from lwm2m_core.model import ObjectModelRepository
from lwm2m_core.numbers import CoapCode, ContentFormat
from lwm2m_core.path import LwM2mPath

#: What every simulated terminal says it hosts when it registers (CoRE link format).
REGISTRATION_LINKS = (
    b'</>;rt="oma.lwm2m";ct=110,</1/0>,</3/0>,</4/0>,</5/0>,</10259/0>,'
    b"</26241/0>,</26242/0>,</26243>,</26244/0>"
)
REGISTRATION_LIFETIME_S = 3600
#: The POS Event object (object_defs/26243.xml) and the resources a sale carries.
POS_EVENT_OBJECT = 26243
POS_EVENT_ID, POS_EVENT_TYPE, POS_EVENT_TIME, POS_EVENT_AMOUNT, POS_EVENT_CURRENCY = 0, 1, 2, 3, 4
POS_EVENT_SEQUENCE = 14
MODEL = ObjectModelRepository.default()


def _senml(values: dict[str, object]) -> tuple[int, bytes]:
    records = [Record(LwM2mPath.parse(path), value) for path, value in values.items()]
    return int(ContentFormat.SENML_CBOR), encode_records(records, ContentFormat.SENML_CBOR, MODEL)


#: What every simulated terminal answers when the server reads: the Manufacturer (the read
#: phase) and the POS Terminal's Trading State (the server observes it after each Register).
READ_ANSWERS = {
    ("3", "0", "0"): _senml({"/3/0/0": "PosFleet"}),
    ("26241", "0", "0"): _senml({"/26241/0/0": 1}),
}
SETTLE_S = 1.0


@dataclass(frozen=True)
class Plan:
    """How much load each phase applies; bounded so a whole run takes a few minutes."""

    terminals: int
    window: int
    send_terminals: int
    sends_per_terminal: int
    reads: int
    phase_deadline_s: float
    register_deadline_s: float
    dedup_wait_s: float = 0.0


def registration_query(terminal: SimulatedTerminal) -> list[str]:
    return [f"ep={terminal.endpoint}", f"lt={REGISTRATION_LIFETIME_S}", "lwm2m=1.1", "b=U"]


def pos_event(sequence: int) -> bytes:
    """One sale as a Send payload (SenML-CBOR via the LwM2M core), with a fresh event id."""
    base = LwM2mPath.parse(f"/{POS_EVENT_OBJECT}/{sequence}")
    values = {
        POS_EVENT_ID: str(uuid.uuid4()),
        POS_EVENT_TYPE: "sale",
        POS_EVENT_TIME: datetime.now(UTC).replace(microsecond=0),
        POS_EVENT_AMOUNT: 12_500,
        POS_EVENT_CURRENCY: "KRW",
        POS_EVENT_SEQUENCE: sequence,
    }
    records = [Record(base.child(resource), value) for resource, value in values.items()]
    return encode_records(records, ContentFormat.SENML_CBOR, MODEL)


async def register(terminal: SimulatedTerminal, _round: int) -> bool:
    response = await terminal.request(
        CoapCode.POST, ["rd"], registration_query(terminal), REGISTRATION_LINKS, ContentFormat.LINK
    )
    terminal.location = response.location_path
    return response.code == CoapCode.CREATED


async def update(terminal: SimulatedTerminal, _round: int) -> bool:
    """A registration Update (``POST /rd/<id>?lt=``), as each terminal sends every lifetime."""
    response = await terminal.request(
        CoapCode.POST, terminal.location, [f"lt={REGISTRATION_LIFETIME_S}"]
    )
    return response.code == CoapCode.CHANGED


class EventSender:
    """Sends prepared POS events: encoding them is done before the clock starts, because
    checking records against the model costs the generator more than sending them."""

    def __init__(self, count: int) -> None:
        self._payloads = iter([pos_event(sequence) for sequence in range(count)])

    async def __call__(self, terminal: SimulatedTerminal, _round: int) -> bool:
        response = await terminal.request(
            CoapCode.POST,
            ["dp"],
            payload=next(self._payloads),
            content_format=ContentFormat.SENML_CBOR,
        )
        return response.code == CoapCode.CHANGED


async def echo_get(terminal: SimulatedTerminal, _round: int) -> bool:
    response = await terminal.request(CoapCode.GET, ["echo"])
    return response.code == CoapCode.CONTENT


class Measurement:
    """CPU and memory of the target around one phase."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.cpu_before = cpu_seconds(target.pid)
        self.rss_before_kib = resident_kib(target.pid)
        self.generator_cpu_before = _own_cpu_seconds()

    def finish(self, phase: PhaseResult) -> dict[str, object]:
        self.target.check_alive()
        cpu = cpu_seconds(self.target.pid) - self.cpu_before
        summary = phase.summary()
        summary["server_cpu_s"] = round(cpu, 2)
        rss_kib = resident_kib(self.target.pid)
        summary["server_rss_mib"] = round(rss_kib / 1024, 1)
        generator_cpu = _own_cpu_seconds() - self.generator_cpu_before
        summary["generator_cpu_s"] = round(generator_cpu, 2)
        if phase.completed:
            summary["server_cpu_us_per_op"] = round(cpu / phase.completed * 1e6, 1)
            summary["server_rss_growth_kib_per_op"] = round(
                (rss_kib - self.rss_before_kib) / phase.completed, 2
            )
        return summary


def _own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


async def coap_phases(target: Target, plan: Plan, read_op: str) -> tuple[dict, Fleet]:
    """Register every terminal, then Send from some, measuring each phase."""
    figures: dict[str, object] = {"rss_idle_mib": round(resident_kib(target.pid) / 1024, 1)}
    fleet = await Fleet.open(
        plan.terminals, ("127.0.0.1", target.coap_port), read_answers=READ_ANSWERS
    )
    measurement = Measurement(target)
    phase = await run_phase(
        "register", fleet.terminals, 1, plan.window, register, plan.register_deadline_s
    )
    figures["register"] = measurement.finish(phase)
    if target.observes_after_register:
        figures["register_and_observe"] = await observed(fleet, phase, measurement, plan)
    await asyncio.sleep(SETTLE_S)
    figures["rss_registered_mib"] = round(resident_kib(target.pid) / 1024, 1)
    figures["registered"] = phase.completed

    updaters = [terminal for terminal in fleet.terminals if terminal.location]
    measurement = Measurement(target)
    phase = await run_phase("update", updaters, 1, plan.window, update, plan.phase_deadline_s)
    figures["update"] = measurement.finish(phase)

    senders = fleet.terminals[: plan.send_terminals]
    send_event = EventSender(len(senders) * plan.sends_per_terminal)
    measurement = Measurement(target)
    phase = await run_phase(
        "send", senders, plan.sends_per_terminal, plan.window, send_event, plan.phase_deadline_s
    )
    figures["send"] = measurement.finish(phase)
    figures["read_mode"] = read_op
    if plan.dedup_wait_s:
        # Received confirmables are kept for deduplication; see whether the memory comes back.
        await asyncio.sleep(plan.dedup_wait_s)
        figures[f"rss_after_{plan.dedup_wait_s:g}s_idle_mib"] = round(
            resident_kib(target.pid) / 1024, 1
        )
        # Python seldom gives freed memory back to the system, so the same load again says
        # more: if expired entries are reused, the second batch adds (almost) nothing.
        again = EventSender(len(senders) * plan.sends_per_terminal)
        measurement = Measurement(target)
        phase = await run_phase(
            "send again", senders, plan.sends_per_terminal, plan.window, again,
            plan.phase_deadline_s,
        )  # fmt: skip
        figures["send_after_idle"] = measurement.finish(phase)
    return figures, fleet


async def observed(
    fleet: Fleet, registered: PhaseResult, measurement: Measurement, plan: Plan
) -> dict[str, object]:
    """Wait until the server has observed every registered terminal's Trading State (what
    it does after each Register, possibly after answering the Registers) and measure the
    whole: from the first Register to the last Observe, and the server's CPU over it."""
    loop = asyncio.get_running_loop()
    stop_at = loop.time() + plan.phase_deadline_s
    while fleet.counters.observes < registered.completed and loop.time() < stop_at:
        await asyncio.sleep(0.01)
    whole = PhaseResult("register and observe", completed=fleet.counters.observes)
    whole.started_at = registered.started_at
    ended = max(fleet.counters.last_observe_at, registered.started_at + registered.elapsed_s)
    whole.elapsed_s = ended - registered.started_at
    return measurement.finish(whole)


async def bench_echo(plan: Plan) -> dict[str, object]:
    target = EchoTarget()
    target.start()
    try:
        figures, fleet = await coap_phases(
            target, plan, "CoAP GET from one terminal, one at a time"
        )
        try:
            measurement = Measurement(target)
            reads = await run_phase(
                "read", fleet.terminals[:1], plan.reads, 1, echo_get, plan.phase_deadline_s
            )
            figures["read"] = measurement.finish(reads)
        finally:
            fleet.close()
        return figures
    finally:
        target.stop()


async def rest_reads(target: DmServerTarget, fleet: Fleet, plan: Plan) -> PhaseResult:
    """Read /3/0/0 through the REST API, one at a time, each from a random registered terminal.

    The terminal side is the generator's socket, which answers at once: the latency is the
    server's HTTP + LwM2M + CoAP path, both ways.
    """
    import httpx

    result = PhaseResult("read")
    base = f"http://127.0.0.1:{target.http_port}/api/v1"
    registered = [t for t in fleet.terminals if t.location]
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        token = await client.post(
            "/auth/token", data={"username": "bench", "password": target.admin_password}
        )
        token.raise_for_status()
        client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        started = time.perf_counter()
        deadline = started + plan.phase_deadline_s
        for _ in range(plan.reads):
            if time.perf_counter() > deadline or not registered:
                break
            terminal = random.choice(registered)
            t0 = time.perf_counter()
            response = await client.post(
                f"/terminals/{terminal.endpoint}/read", json={"path": "/3/0/0"}
            )
            if response.status_code == 200:
                result.completed += 1
                result.latencies_ms.append((time.perf_counter() - t0) * 1000)
            else:
                result.failed += 1
                if result.failed == 1:
                    result.name = (
                        f"read (first failure: {response.status_code} {response.text[:200]})"
                    )
        result.elapsed_s = time.perf_counter() - started
    return result


async def count_persisted(target: DmServerTarget, fleet: Fleet, plan: Plan) -> int | None:
    """Events the server stored for the sending terminals, counted through the REST API."""
    import httpx

    base = f"http://127.0.0.1:{target.http_port}/api/v1"
    total = 0
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        token = await client.post(
            "/auth/token", data={"username": "bench", "password": target.admin_password}
        )
        if token.status_code != 200:
            return None
        client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        for terminal in fleet.terminals[: plan.send_terminals]:
            response = await client.get(
                f"/terminals/{terminal.endpoint}/events", params={"limit": 1}
            )
            if response.status_code != 200:
                return None
            total += int(response.json()["total"])
    return total


async def bench_dm_server(plan: Plan, database_url: str, auto_accept: bool) -> dict[str, object]:
    target = DmServerTarget(database_url, auto_accept)
    target.start()
    try:
        await target.provision(endpoint_names(plan.terminals))
        figures, fleet = await coap_phases(
            target, plan, "REST POST /terminals/{ep}/read of /3/0/0, one at a time"
        )
        try:
            figures["send_persisted"] = await count_persisted(target, fleet, plan)
            measurement = Measurement(target)
            figures["read"] = measurement.finish(await rest_reads(target, fleet, plan))
        finally:
            fleet.close()
        return figures
    finally:
        target.stop()


def ratio(value: object, ceiling: object) -> float | None:
    if not isinstance(value, int | float) or not isinstance(ceiling, int | float) or not ceiling:
        return None
    return round(value / ceiling, 3)


def headline(dm: dict, echo: dict) -> dict[str, object]:
    """The four figures the issue asks for, each with its ratio to the echo ceiling."""

    def get(figures: dict, *keys: str) -> object:
        value: object = figures
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        return value

    # name -> (the DM server's figure, the echo's figure it is held against)
    rows = {
        "registrations_per_s": (("register", "rate_per_s"),) * 2,
        # The echo answers and is done; the DM server then also observes each terminal.
        "registered_and_observed_per_s": (
            ("register_and_observe", "rate_per_s"),
            ("register", "rate_per_s"),
        ),
        "updates_per_s": (("update", "rate_per_s"),) * 2,
        "send_events_per_s": (("send", "rate_per_s"),) * 2,
        "read_p50_ms": (("read", "p50_ms"),) * 2,
        "read_p99_ms": (("read", "p99_ms"),) * 2,
        "rss_mib_with_registered_terminals": (("rss_registered_mib",),) * 2,
    }
    out: dict[str, object] = {}
    for name, (dm_keys, echo_keys) in rows.items():
        value, ceiling = get(dm, *dm_keys), get(echo, *echo_keys)
        out[name] = {"dm_server": value, "echo_ceiling": ceiling, "ratio": ratio(value, ceiling)}
    return out


async def main_async(args: argparse.Namespace) -> dict[str, object]:
    plan = Plan(
        terminals=args.terminals,
        window=args.window,
        send_terminals=min(args.send_terminals, args.terminals),
        sends_per_terminal=args.sends_per_terminal,
        reads=args.reads,
        phase_deadline_s=args.phase_deadline,
        register_deadline_s=args.register_deadline,
        dedup_wait_s=args.dedup_wait,
    )
    report: dict[str, object] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "generator_pinned": pin_generator(),
        "plan": plan.__dict__,
        "dm_server_terminals": "created at their first Register (--auto-accept)"
        if args.auto_accept
        else "provisioned NoSec through the REST API before registering",
    }
    echo = await bench_echo(plan)
    report["echo_ceiling"] = echo
    if args.echo_only:
        return report
    try:
        dm = await bench_dm_server(plan, args.database_url, args.auto_accept)
    except (RuntimeError, OSError) as error:
        report["dm_server"] = {"error": str(error)[-2000:]}
        return report
    report["dm_server"] = dm
    report["headline"] = headline(dm, echo)
    return report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--terminals", type=int, default=10_000, help="terminals that register")
    parser.add_argument("--window", type=int, default=100, help="requests in flight at once")
    parser.add_argument("--send-terminals", type=int, default=200, help="terminals that Send")
    parser.add_argument("--sends-per-terminal", type=int, default=25)
    parser.add_argument("--reads", type=int, default=300, help="Read round trips measured")
    parser.add_argument("--phase-deadline", type=float, default=60.0, help="seconds per phase")
    parser.add_argument(
        "--register-deadline",
        type=float,
        default=240.0,
        help="seconds the register phase may take (it must reach --terminals for the memory "
        "figure)",
    )
    parser.add_argument(
        "--dedup-wait",
        type=float,
        default=0.0,
        help="idle seconds after the Sends before measuring memory again (0: skip)",
    )
    parser.add_argument("--database-url", default="", help="default: SQLite in a temp folder")
    parser.add_argument(
        "--auto-accept",
        action="store_true",
        help="let the server create terminals at their first Register (the development "
        "switch) instead of provisioning them first",
    )
    parser.add_argument("--echo-only", action="store_true", help="measure the ceiling only")
    parser.add_argument("--output", type=Path, help="also write the JSON here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    report = asyncio.run(main_async(args))
    text = json.dumps(report, indent=2)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")


if __name__ == "__main__":
    main()

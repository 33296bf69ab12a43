"""``posfleet demo``: the whole product on one machine with one command.

A fresh SQLite database in a data folder, an account tree (admin, two dealers, one
sub-dealer, store owners) with printed passwords, a provisioned and running simulated fleet
that trades (with a few refunds), licences (some expiring soon, one or two in grace), and
the dashboard; it prints the URL and the log-ins and runs until Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import signal
import sys
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

log = logging.getLogger("posfleet.demo")

DEFAULT_TERMINALS = 50
DEFAULT_DATA_DIR = Path("var/demo")
DEFAULT_HTTP_PORT = 8000
#: Share of simulated terminals that lose power or network now and then (off in tests).
DEMO_OUTAGE_SHARE = 0.05
# Every wait in start-up is bounded, so a stuck step (a locked database, a terminal that
# never answers) ends in a warning or a clear error, never in a silent hang.
#: Bound on the server's start (migrations, ports) and on each database step of the set-up.
SERVER_START_S = 60.0
DATABASE_STEP_S = 60.0
#: Bound on starting the simulated terminals, and on waiting for them to register before
#: licences are written; a fleet still registering after that is used as it is.
FLEET_START_S = 60.0
REGISTRATION_WAIT_S = 60.0
#: Bound on writing one licence to its terminal, and on all of the first deliveries; a
#: licence not delivered in time stays issued (its delivery shows on the Licences page).
LICENCE_DELIVERY_S = 30.0
ALL_DELIVERIES_S = 120.0
DELIVERY_CONCURRENCY = 8
#: Bound on each part of stopping (fleet, server) so Ctrl-C always ends the demo.
STOP_S = 30.0
#: Shops trade this much faster than real time, so the dashboard moves while you watch.
DEFAULT_SPEED = 20.0
#: Files of an earlier demo run that "fresh" removes (the signing key stays: it is not data).
FRESH_FILES = ("server.db", "server.db-wal", "server.db-shm")
FRESH_DIRS = ("terminals",)


class DemoStartError(RuntimeError):
    """The demo could not be brought up; the message says which step and why."""


async def _bounded(step: str, work: Awaitable[T], seconds: float) -> T:
    """``work`` within ``seconds``, or :class:`DemoStartError` naming the step."""
    try:
        async with asyncio.timeout(seconds):
            return await work
    except TimeoutError:
        raise DemoStartError(
            f"{step} did not finish within {seconds:g} s (is the database locked by another "
            "process, or the machine overloaded?)"
        ) from None


async def _stop_bounded(what: str, work: Awaitable[Any]) -> None:
    """Stop one part within :data:`STOP_S`; a part that does not stop is left, with a warning."""
    try:
        async with asyncio.timeout(STOP_S):
            await work
    except TimeoutError:
        log.warning("%s did not stop within %g s; leaving it", what, STOP_S)


@dataclass(frozen=True)
class DemoAccount:
    username: str
    display_name: str
    role: str
    parent: str | None
    locale: str = "ko"


#: The demo organisation: parents before children.
DEMO_TREE = (
    DemoAccount("seoul-dealer", "서울 대리점", "dealer", "admin"),
    DemoAccount("busan-dealer", "Busan Dealer", "dealer", "admin", "en"),
    DemoAccount("gangnam-sub", "강남 지점", "dealer", "seoul-dealer"),
    DemoAccount("cafe-mapo", "마포 카페", "owner", "seoul-dealer"),
    DemoAccount("bakery-hongdae", "홍대 베이커리", "owner", "seoul-dealer"),
    DemoAccount("mart-gangnam", "강남 마트", "owner", "gangnam-sub"),
    DemoAccount("flower-yeoksam", "역삼 꽃집", "owner", "gangnam-sub"),
    DemoAccount("chicken-haeundae", "Haeundae Chicken", "owner", "busan-dealer", "en"),
    DemoAccount("noodle-seomyeon", "서면 국수", "owner", "busan-dealer"),
)

#: (days from now to expiry) by terminal number modulo 10; None: no licence yet.
LICENCE_PLAN: dict[int, int | None] = {0: None, 1: 5, 2: 20, 3: 45, 4: 75, 5: -3}
DEFAULT_LICENCE_DAYS = 365


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo", help="run server, dashboard and a simulated fleet in one process",
        description=__doc__,
    )
    parser.add_argument("--terminals", type=int, default=DEFAULT_TERMINALS,
                        help=f"simulated terminals (default {DEFAULT_TERMINALS})")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                        help="data folder; an earlier demo's database in it is removed "
                        f"(default {DEFAULT_DATA_DIR})")
    parser.add_argument("--port", type=int, default=DEFAULT_HTTP_PORT,
                        help=f"dashboard HTTP port (default {DEFAULT_HTTP_PORT}; 0 = any free)")
    parser.add_argument("--bind", default="127.0.0.1", help="address to serve on")
    parser.add_argument("--password", default="",
                        help="one password for every demo account (default: generated)")
    parser.add_argument("--speed", type=float, default=DEFAULT_SPEED,
                        help="how much faster than real time the shops trade "
                        f"(default {DEFAULT_SPEED:g})")
    parser.add_argument("--nosec", action="store_true",
                        help="plain CoAP instead of DTLS with pre-shared keys")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from dm_server.server import tune_garbage_collector

    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    tune_garbage_collector()
    try:
        asyncio.run(run_demo(args))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"posfleet demo: {exc}. Is another server on port {args.port}? "
              "Choose another with --port.", file=sys.stderr)
        return 1
    except DemoStartError as exc:
        print(f"posfleet demo: {exc}", file=sys.stderr)
        return 1
    return 0


def fresh_data_dir(data_dir: Path) -> None:
    """Remove an earlier demo's database and terminal state; nothing else is touched."""
    data_dir.mkdir(parents=True, exist_ok=True)
    for name in FRESH_FILES:
        (data_dir / name).unlink(missing_ok=True)
    for name in FRESH_DIRS:
        shutil.rmtree(data_dir / name, ignore_errors=True)


@dataclass
class Demo:
    """A running demo: the server, the fleet, and who can log in."""

    server: Any
    fleet: Any
    logins: list[tuple[str, str, str, str]]  # username, password, role, display name
    url: str
    endpoints: list[str]

    async def stop(self) -> None:
        # aiocoap's DTLS server logs every close_notify and late error at shutdown as a
        # warning; at the end of a demo that is noise, not news.
        logging.getLogger("posfleet.coaps").setLevel(logging.ERROR)
        if self.fleet is not None:
            await _stop_bounded("the simulated fleet", self.fleet.stop())
        await _stop_bounded("the server", self.server.stop())


async def start_demo(
    data_dir: Path,
    terminals: int = DEFAULT_TERMINALS,
    http_port: int = DEFAULT_HTTP_PORT,
    bind: str = "127.0.0.1",
    password: str = "",
    speed: float = DEFAULT_SPEED,
    fleet: bool = True,
    secure: bool = True,
    outages: bool = True,
) -> Demo:
    """Bring the demo up (used by ``posfleet demo`` and the browser tests).

    Returns within the sum of the bounds above: a fleet that does not register or a licence
    that is not delivered in time is a warning; a step that cannot go on (the server does
    not start, the database does not answer) raises :class:`DemoStartError`. ``outages``
    off keeps every simulated terminal online, for tests that act on a chosen terminal."""
    from dm_server.security import generate_password
    from dm_server.server import start_server
    from dm_server.settings import Settings

    fresh_data_dir(data_dir)
    admin_password = password or generate_password()
    settings = Settings.from_env(
        {}, data_dir=data_dir, bind=bind, http_port=http_port, coap_port=0,
        coaps_port=0 if secure else -1, dtls_address="127.0.0.1",
        admin_user="admin", admin_password=admin_password, log_level="WARNING",
    )
    server = await _bounded("starting the server", start_server(settings), SERVER_START_S)
    running_fleet = None
    try:
        logins = [("admin", admin_password, "admin", "admin")]
        logins += await _bounded(
            "creating the demo accounts", _create_tree(server, password), DATABASE_STEP_S
        )
        simulated = await _bounded(
            "provisioning the terminals", _provision(server, terminals, secure),
            DATABASE_STEP_S,
        )
        endpoints = [t.endpoint for t in simulated]
        if fleet and simulated:
            running_fleet = await _start_fleet(server, simulated, speed, secure, outages)
        issued = await _bounded(
            "issuing the demo licences", _issue_licences(server, endpoints), DATABASE_STEP_S
        )
        if running_fleet is not None:
            await _deliver_licences(server, issued)
    except BaseException:
        if running_fleet is not None:
            await _stop_bounded("the simulated fleet", running_fleet.stop())
        await _stop_bounded("the server", server.stop())
        raise
    host = "127.0.0.1" if bind in ("0.0.0.0", "::") else bind  # noqa: S104 - a comparison
    return Demo(server, running_fleet, logins, f"http://{host}:{server.http_port}/",
                endpoints)


async def run_demo(args: argparse.Namespace) -> None:
    print(f"Starting the PosFleet demo in {args.data_dir} ({args.terminals} terminals)…",
          flush=True)
    demo = await start_demo(
        args.data_dir, args.terminals, args.port, args.bind, args.password, args.speed,
        secure=not args.nosec,
    )
    _print_banner(demo)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        print("\nStopping the demo…", flush=True)
        await demo.stop()


def _print_banner(demo: Demo) -> None:
    width = max(len(u) for u, *_ in demo.logins)
    lines = [
        "",
        f"PosFleet demo: {len(demo.endpoints)} simulated terminals.",
        f"Dashboard: {demo.url}    REST API: {demo.url}docs",
        "",
        "Log in as (demo passwords, shown once):",
    ]
    lines += [f"  {u:<{width}}  {p:<24} {role:<7} {name}" for u, p, role, name in demo.logins]
    lines += ["", "Ctrl-C stops everything.", ""]
    print("\n".join(lines), flush=True)


# --- steps ------------------------------------------------------------------------------


async def _create_tree(server: Any, password: str) -> list[tuple[str, str, str, str]]:
    from sqlalchemy import select

    from dm_server.db.models.account import Account, Role
    from dm_server.security import generate_password
    from dm_server.services import accounts

    logins = []
    async with server.db.session() as session:
        admin = await session.scalar(select(Account).where(Account.parent_id.is_(None)))
        by_name = {admin.username: admin}
        for item in DEMO_TREE:
            secret = password or generate_password()
            account = await accounts.create_account(
                session, admin, parent_id=by_name[item.parent or "admin"].id,
                username=item.username, password=secret, role=Role(item.role),
                display_name=item.display_name, locale=item.locale,
            )
            by_name[item.username] = account
            logins.append((item.username, secret, item.role, item.display_name))
    return logins


async def _provision(server: Any, count: int, secure: bool) -> list[Any]:
    """Provision the simulator's terminals (PSK credentials unless NoSec), shared among
    the store owners."""
    from sqlalchemy import select

    from device_client.simulator import make_terminals
    from dm_server.db.models.account import Account, Role
    from dm_server.db.models.terminal import SecurityMode
    from dm_server.services import terminals

    owners_names = [a.username for a in DEMO_TREE if a.role == "owner"]
    simulated = make_terminals(count, prefix="pos", secure=secure)
    async with server.db.session() as session:
        admin = await session.scalar(select(Account).where(Account.parent_id.is_(None)))
        owners = {
            a.username: a
            for a in await session.scalars(select(Account).where(Account.role == Role.OWNER))
        }
        provisioned = await terminals.provision(session, admin, [
            terminals.ProvisionRequest(
                t.endpoint, SecurityMode.PSK if secure else SecurityMode.NOSEC,
                psk_identity=t.psk_identity or None, psk_key=t.psk_key or None,
                owner_id=owners[owners_names[i % len(owners_names)]].id,
            )
            for i, t in enumerate(simulated)
        ])
    server.lwm2m.credentials_changed(provisioned)
    return simulated


async def _start_fleet(
    server: Any, simulated: list[Any], speed: float, secure: bool, outages: bool
) -> Any:
    """The terminal engineer's simulator, trusting the server's licence key."""
    from device_client.simulator import Fleet, TradingProfile

    uri = (f"coaps://127.0.0.1:{server.coaps_port}" if secure
           else f"coap://127.0.0.1:{server.coap_port}")
    fleet = Fleet(
        uri, simulated, server.settings.data_dir / "terminals",
        manufacturer_key=_authority(server).public_key_text,
        profile=TradingProfile(speed=speed),
        flaky_share=DEMO_OUTAGE_SHARE if outages else 0.0,
    )
    try:
        async with asyncio.timeout(FLEET_START_S):
            await fleet.start()
    except TimeoutError:
        log.warning("the simulated fleet did not start within %g s; going on with the "
                    "terminals started so far", FLEET_START_S)
    try:
        # wait_registered has its own deadline; this bound also covers a stuck poll.
        async with asyncio.timeout(REGISTRATION_WAIT_S + 1):
            registered = await fleet.wait_registered(REGISTRATION_WAIT_S)
    except TimeoutError:
        registered = fleet.stats().registered
    if registered < len(simulated):
        log.warning("only %d of %d terminals registered within %g s; the others get their "
                    "licences when they register", registered, len(simulated),
                    REGISTRATION_WAIT_S)
    return fleet


def _authority(server: Any) -> Any:
    """The same licence authority the API and dashboard use (kept on the app state)."""
    from dm_server.services import licensing

    app_state = server.app.state
    authority = getattr(app_state, "licence_authority", None)
    if authority is None:
        authority = licensing.authority_from_settings(server.settings)
        app_state.licence_authority = authority
    return authority


async def _issue_licences(server: Any, endpoints: list[str]) -> list[int]:
    """Issue the planned licences; returns their ids (delivery is a separate step)."""
    from sqlalchemy import select

    from dm_server.db.base import utcnow
    from dm_server.db.models.account import Account
    from dm_server.services import licensing

    authority = _authority(server)
    now = utcnow()
    issued = []
    async with server.db.session() as session:
        admin = await session.scalar(select(Account).where(Account.parent_id.is_(None)))
        for number, endpoint in enumerate(endpoints, start=1):
            plan = LICENCE_PLAN.get(number % 10, DEFAULT_LICENCE_DAYS)
            if plan is None:
                continue
            starts = now + timedelta(days=plan) - timedelta(days=DEFAULT_LICENCE_DAYS)
            edition = ("basic", "standard", "premium")[number % 3]
            licence = await licensing.issue(
                session, admin, authority, endpoint=endpoint, edition=edition,
                features=["loyalty", "reports"] + (["face-recognition"] if number % 3 else []),
                starts=min(starts, now), days=DEFAULT_LICENCE_DAYS, now=now,
            )
            issued.append(licence.id)
    return issued


async def _deliver_licences(server: Any, issued: list[int]) -> None:
    """Write the issued licences to the running fleet, each within
    :data:`LICENCE_DELIVERY_S` and all within :data:`ALL_DELIVERIES_S`. One that is not
    delivered in time (or fails) is a warning: the licence stays issued, and the Licences
    page shows its delivery, from where it can be sent again."""
    from sqlalchemy import select

    from dm_server.api.routes.licences import OperationsTokenWriter
    from dm_server.db.models.account import Account
    from dm_server.services import licensing

    writer = OperationsTokenWriter(server.lwm2m.operations)
    gate = asyncio.Semaphore(DELIVERY_CONCURRENCY)

    async def one(licence_id: int) -> bool:
        async with gate:
            try:
                async with asyncio.timeout(LICENCE_DELIVERY_S), server.db.session() as session:
                    admin = await session.scalar(
                        select(Account).where(Account.parent_id.is_(None))
                    )
                    licence = await licensing.get_licence(session, admin, licence_id)
                    await licensing.deliver(session, admin, licence, writer)
                    return True
            except TimeoutError:
                return False
            except Exception:
                log.warning("licence %d: delivery failed", licence_id, exc_info=True)
                return False

    tasks = [asyncio.create_task(one(i)) for i in issued]
    if not tasks:
        return
    done, late = await asyncio.wait(tasks, timeout=ALL_DELIVERIES_S)
    for task in late:
        task.cancel()
    await asyncio.gather(*late, return_exceptions=True)
    delivered = sum(1 for t in done if not t.cancelled() and t.result())
    if delivered < len(issued):
        log.warning("%d of %d demo licences were not delivered within the bounds (%g s each, "
                    "%g s in all); they stay issued and can be sent again from the Licences "
                    "page", len(issued) - delivered, len(issued), LICENCE_DELIVERY_S,
                    ALL_DELIVERIES_S)

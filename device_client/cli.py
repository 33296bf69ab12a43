"""``posfleet terminal``, ``posfleet simulate`` and ``posfleet firmware``.

Light at import time: aiocoap and the agent are imported when a handler runs. Every
terminal flag has a ``POSFLEET_*`` variable (see :mod:`device_client.settings`); secrets
(the PSK) are best given by variable or file, not on the command line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

EXIT_BAD_INPUT = 2


def register(subparsers: Any) -> None:
    terminal = subparsers.add_parser(
        "terminal", help="run one terminal's LwM2M agent",
        description="Run the terminal's LwM2M agent until interrupted. Flags override "
        "POSFLEET_* variables (POSFLEET_SERVER, POSFLEET_ENDPOINT, POSFLEET_PSK_IDENTITY, "
        "POSFLEET_PSK_KEY or POSFLEET_PSK_FILE, POSFLEET_TERMINAL_DATA_DIR, ...).",
    )
    terminal.add_argument("--server", dest="server_uri",
                          help="coaps://HOST:5684 (DTLS-PSK) or coap://HOST:5683 (NoSec)")
    terminal.add_argument("--endpoint", help="endpoint name the server knows this terminal by")
    terminal.add_argument("--psk-identity")
    terminal.add_argument("--psk-file", type=Path,
                          help="file holding the PSK (hex:..., base64:... or text)")
    terminal.add_argument("--data-dir", type=Path, help="local state (outbox, software)")
    terminal.add_argument("--bind", dest="bind_host", help="local address (default 127.0.0.1)")
    terminal.add_argument("--port", dest="bind_port", type=int, help="local UDP port (0: any)")
    terminal.add_argument("--lifetime", type=int, help="registration lifetime in seconds")
    terminal.add_argument("--manufacturer-key",
                          help="trusted Ed25519 public key (base64url) or a PEM file")
    terminal.add_argument("--firmware-version", help="version of the factory software image")
    terminal.add_argument("--trade-rate", type=float,
                          help="simulate trading: sales per minute (0: off)")
    terminal.add_argument("--log-level", default="INFO")
    terminal.set_defaults(handler=run_terminal_command)

    simulate = subparsers.add_parser(
        "simulate", help="run a simulated fleet of terminals in one process",
        description="Run N simulated terminals against a DM server, or write their "
        "provisioning CSV (--write-csv) first. With --provision-api the CSV is imported "
        "through the server's REST API before the fleet starts (one command).",
    )
    simulate.add_argument("--server", default="coap://127.0.0.1:5683")
    simulate.add_argument("--terminals", type=int, default=10)
    simulate.add_argument("--fleet", type=Path,
                          help="CSV of the terminals (server bulk format); made if missing")
    simulate.add_argument("--write-csv", type=Path,
                          help="only write the provisioning CSV for --terminals and exit")
    simulate.add_argument("--prefix", default="sim", help="endpoint name prefix")
    simulate.add_argument("--nosec", action="store_true",
                          help="terminals without PSK (server must allow NoSec for them)")
    simulate.add_argument("--provision-api", metavar="URL",
                          help="import the fleet CSV at URL/api/v1/terminals/import first")
    simulate.add_argument("--user", default="admin", help="account for --provision-api")
    simulate.add_argument("--password-env", default="POSFLEET_ADMIN_PASSWORD",
                          help="variable holding that account's password")
    simulate.add_argument("--data-dir", type=Path, default=Path("var/simulator"))
    simulate.add_argument("--speed", type=float, default=1.0,
                          help="time compression of trading (10: a day in 2.4 h)")
    simulate.add_argument("--sales-per-hour", type=float, default=30.0)
    simulate.add_argument("--lifetime", type=int, default=300)
    simulate.add_argument("--duration", type=float, default=0.0,
                          help="stop after this many seconds (0: until interrupted)")
    simulate.add_argument("--report", type=float, default=10.0,
                          help="print fleet statistics every N seconds")
    simulate.add_argument("--manufacturer-key", default="")
    simulate.add_argument("--seed", type=int)
    simulate.set_defaults(handler=run_simulate_command)

    firmware = subparsers.add_parser("firmware", help="build and inspect signed packages")
    actions = firmware.add_subparsers(dest="firmware_command", metavar="ACTION", required=True)
    build = actions.add_parser("build", help="sign a software folder into a package")
    build.add_argument("--key", type=Path, required=True,
                       help="manufacturer Ed25519 private key (PKCS#8 PEM)")
    build.add_argument("--name", default="posfleet-terminal")
    build.add_argument("--version", required=True)
    build.add_argument("--source", type=Path, required=True, help="folder to package")
    build.add_argument("--out", type=Path, required=True)
    build.set_defaults(handler=run_firmware_build)
    inspect = actions.add_parser("inspect", help="show a package's manifest and check it")
    inspect.add_argument("package", type=Path)
    inspect.add_argument("--key", help="trusted public key (base64url) or PEM file")
    inspect.set_defaults(handler=run_firmware_inspect)


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def _configure_logging(level: str) -> None:
    import logging

    logging.basicConfig(level=level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def run_terminal_command(args: argparse.Namespace) -> int:
    import asyncio
    import contextlib
    import random
    import signal

    from device_client.settings import SettingsError, load_settings, parse_psk

    overrides: dict[str, Any] = {
        name: getattr(args, name)
        for name in ("server_uri", "endpoint", "psk_identity", "data_dir", "bind_host",
                     "bind_port", "lifetime", "manufacturer_key", "firmware_version",
                     "trade_rate")
    }
    try:
        if args.psk_file is not None:
            overrides["psk_key"] = parse_psk(args.psk_file.read_text().strip())
        settings = load_settings(overrides)
    except (SettingsError, OSError) as exc:
        return _fail(str(exc))
    _configure_logging(args.log_level)

    async def main() -> int:
        from device_client.agent import Agent, run_terminal
        from device_client.simulator import TradingProfile, trade

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)

        def start_trading(agent: Agent) -> None:
            if settings.trade_rate > 0:
                profile = TradingProfile(sales_per_hour=settings.trade_rate * 60,
                                         shift_hours=1e6)
                agent.spawn(trade(agent.pos, profile, random.Random()))  # noqa: S311

        return await run_terminal(settings, stop, on_start=start_trading)

    return asyncio.run(main())


def _provision(url: str, user: str, password: str, csv_path: Path) -> int:
    """Import the fleet CSV through the server's REST API; returns how many were created."""
    import httpx

    base = url.rstrip("/")
    with httpx.Client(timeout=60) as client:
        token = client.post(f"{base}/api/v1/auth/token",
                            data={"username": user, "password": password})
        if token.status_code != httpx.codes.OK:
            raise RuntimeError(f"log-in as {user} failed: {token.status_code} {token.text[:200]}")
        headers = {"Authorization": f"Bearer {token.json()['access_token']}",
                   "Content-Type": "text/csv"}
        response = client.post(f"{base}/api/v1/terminals/import", headers=headers,
                               content=csv_path.read_bytes())
        if response.status_code == httpx.codes.CONFLICT:
            print("some terminals were already provisioned: nothing imported "
                  f"({response.json().get('detail', '')[:200]})")
            return 0
        if response.status_code != httpx.codes.CREATED:
            raise RuntimeError(f"import failed: {response.status_code} {response.text[:300]}")
        return len(response.json())


def run_simulate_command(args: argparse.Namespace) -> int:
    import asyncio
    import contextlib
    import json
    import os
    import signal

    from device_client.simulator import make_terminals, read_csv, write_csv

    secure = not args.nosec and args.server.startswith("coaps")
    if args.write_csv is not None:
        write_csv(make_terminals(args.terminals, args.prefix, secure=not args.nosec),
                  args.write_csv)
        print(f"wrote {args.terminals} terminals to {args.write_csv}")
        return 0
    fleet_file = args.fleet or args.data_dir / "fleet.csv"
    if fleet_file.exists():
        terminals = read_csv(fleet_file)[: args.terminals]
    else:
        terminals = make_terminals(args.terminals, args.prefix, secure=secure)
        write_csv(terminals, fleet_file)
    if args.provision_api:
        password = os.environ.get(args.password_env, "")
        if not password:
            return _fail(f"--provision-api needs the password in ${args.password_env}")
        try:
            created = _provision(args.provision_api, args.user, password, fleet_file)
        except (RuntimeError, OSError) as exc:
            return _fail(str(exc))
        print(f"provisioned {created} terminals from {fleet_file}")
    _configure_logging("WARNING")

    async def main() -> int:
        from device_client.simulator import Fleet, TradingProfile

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        fleet = Fleet(args.server, terminals, args.data_dir,
                      manufacturer_key=args.manufacturer_key,
                      profile=TradingProfile(sales_per_hour=args.sales_per_hour,
                                             speed=args.speed),
                      lifetime=args.lifetime, seed=args.seed)
        started = loop.time()
        starting = asyncio.ensure_future(fleet.start())
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not starting.done():  # interrupted while starting
            starting.cancel()
            await asyncio.wait({starting})
            await fleet.stop()
            return 0
        print(json.dumps({"started_in_s": round(loop.time() - started, 2),
                          "terminals": len(terminals)}), flush=True)
        deadline = started + args.duration if args.duration else None
        while not stop.is_set():
            timeout = args.report
            if deadline is not None:
                timeout = min(timeout, max(0.0, deadline - loop.time()))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await stop.wait()
            stats = fleet.stats(reset_lag=True)
            print(json.dumps({"t_s": round(loop.time() - started, 1), **stats.__dict__}),
                  flush=True)
            if deadline is not None and loop.time() >= deadline:
                break
        await fleet.stop()
        return 0

    return asyncio.run(main())


def run_firmware_build(args: argparse.Namespace) -> int:
    from posfleet.firmware_package import PackageError, build_package, tar_folder
    from posfleet.licence_token import LicenceTokenError, load_signing_key

    if not args.source.is_dir():
        return _fail(f"{args.source} is not a folder")
    try:
        key = load_signing_key(args.key)
        data = build_package(key, args.name, args.version, tar_folder(args.source))
    except (LicenceTokenError, PackageError, OSError) as exc:
        return _fail(str(exc))
    args.out.write_bytes(data)
    print(f"{args.out}: {args.name} {args.version}, {len(data)} bytes")
    return 0


def run_firmware_inspect(args: argparse.Namespace) -> int:
    import json

    from posfleet.firmware_package import PackageError, read_manifest, verify_package

    try:
        data = args.package.read_bytes()
        manifest, _, _ = read_manifest(data)
    except (PackageError, OSError) as exc:
        return _fail(str(exc))
    print(json.dumps(manifest.__dict__, indent=2))
    if args.key:
        from device_client.agent import load_trusted_keys

        try:
            verify_package(data, load_trusted_keys(args.key))
        except (PackageError, ValueError) as exc:
            return _fail(f"NOT valid: {exc}")
        print("signature, size and SHA-256: valid")
    return 0

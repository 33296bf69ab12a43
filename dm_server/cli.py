"""``posfleet server`` and ``posfleet db upgrade|downgrade|current``.

Light at import time: the handlers import the server stack when they run.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    from dm_server.settings import add_database_arguments, add_server_arguments

    server = subparsers.add_parser(
        "server",
        help="run the DM server (LwM2M over CoAP/CoAPs and the HTTP API)",
        description="Run the DM server. Every flag can also be set as a POSFLEET_* "
        "environment variable; migrations run first.",
    )
    add_server_arguments(server)
    server.set_defaults(handler=_run_server)

    db = subparsers.add_parser("db", help="database schema migrations (Alembic)")
    db_commands = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    upgrade = db_commands.add_parser("upgrade", help="bring the database to the current schema")
    upgrade.add_argument("revision", nargs="?", default="head")
    add_database_arguments(upgrade)
    upgrade.set_defaults(handler=_db_upgrade)
    downgrade = db_commands.add_parser("downgrade", help="go back to an older schema revision")
    downgrade.add_argument("revision")
    add_database_arguments(downgrade)
    downgrade.set_defaults(handler=_db_downgrade)
    current = db_commands.add_parser("current", help="show the database's schema revision")
    add_database_arguments(current)
    current.set_defaults(handler=_db_current)


def _settings(args: argparse.Namespace) -> Any:
    from dm_server.settings import settings_from_args

    settings = settings_from_args(args)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return settings


def _run_server(args: argparse.Namespace) -> int:
    from dm_server.server import run

    return run(_settings(args))


def _db_upgrade(args: argparse.Namespace) -> int:
    from dm_server.db import migrate

    migrate.upgrade(_settings(args).resolved_database_url, args.revision)
    return 0


def _db_downgrade(args: argparse.Namespace) -> int:
    from dm_server.db import migrate

    migrate.downgrade(_settings(args).resolved_database_url, args.revision)
    return 0


def _db_current(args: argparse.Namespace) -> int:
    from dm_server.db import migrate

    migrate.current(_settings(args).resolved_database_url)
    return 0

"""Throwaway databases for tests: a SQLite file in the test's folder, or, when
POSFLEET_TEST_DATABASE_URL names a PostgreSQL server, a fresh database created there and
dropped afterwards (so parallel runs and other suites never collide)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

TEST_DATABASE_ENV = "POSFLEET_TEST_DATABASE_URL"


@contextmanager
def postgres_scratch_database(server_url: str, prefix: str) -> Iterator[str]:
    """The URL of a new, empty database on the server of ``server_url``; dropped on exit."""
    url = make_url(server_url)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url.set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def database_for_test(folder: Path, prefix: str) -> Iterator[str]:
    """An async URL: SQLite in ``folder``, or a scratch PostgreSQL database when configured."""
    server_url = os.environ.get(TEST_DATABASE_ENV)
    if not server_url:
        yield f"sqlite+aiosqlite:///{folder / 'server.db'}"
        return
    with postgres_scratch_database(server_url, prefix) as url:
        yield url

"""Alembic environment: runs migrations synchronously on the server's database."""

from __future__ import annotations

from alembic import context
from sqlalchemy import engine_from_config, pool

import dm_server.db.models  # noqa: F401 - registers every table on Base.metadata
from dm_server.db.base import Base
from dm_server.db.session import sync_url

config = context.config


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        from dm_server.settings import Settings

        url = Settings.from_env().resolved_database_url
    return sync_url(url)


def run_migrations_offline() -> None:
    context.configure(
        url=_url(), target_metadata=Base.metadata, literal_binds=True, render_as_batch=True
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is not None:
        _run(connectable)
        return
    engine = engine_from_config(
        {"sqlalchemy.url": _url()}, prefix="sqlalchemy.", poolclass=pool.NullPool
    )
    with engine.connect() as connection:
        _run(connection)


def _run(connection: object) -> None:
    # Batch mode lets ALTER TABLE work on SQLite (copy-and-move).
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

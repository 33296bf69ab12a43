"""Bring a database to the current schema with Alembic (sync, run before the loop starts)."""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config

from dm_server.db.session import sync_url


def alembic_config(database_url: str) -> Config:
    """Configured in code, so an installed package needs no alembic.ini beside it.

    The repository's top-level ``alembic.ini`` is for developers running ``alembic``.
    """
    package = resources.files("dm_server")
    config = Config()
    config.set_main_option("script_location", str(package / "migrations"))
    # ConfigParser interpolation: a literal % in a password must be doubled.
    config.set_main_option("sqlalchemy.url", sync_url(database_url).replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


def current(database_url: str) -> None:
    command.current(alembic_config(database_url), verbose=True)

"""Bring a database to the current schema with Alembic, without blocking the caller's event loop.

Alembic's command API is synchronous (it imports revision files and runs the migration to completion),
so `migrate` runs it in a worker thread; env.py then drives its own async engine there. Creating the
SQLite file's directory happens in that thread too, since it is file-system I/O.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import URL

from dfr.store.engine import normalize_url, sqlite_file

__all__ = ["MIGRATIONS_DIR", "alembic_config", "migrate"]

MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")


def alembic_config(url: str | URL) -> Config:
    """An Alembic config for ``url`` with the packaged migrations; also usable for ``command.*`` calls."""
    config = Config()
    # The ini parser treats "%" as interpolation, so it has to be doubled in option values.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.attributes["url"] = normalize_url(url)
    return config


def _upgrade(url: URL, revision: str) -> None:
    path = sqlite_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), revision)


async def migrate(url: str | URL, revision: str = "head") -> None:
    """Upgrade the database at ``url`` to ``revision`` (default: the newest); a no-op when already there."""
    await asyncio.to_thread(_upgrade, normalize_url(url), revision)

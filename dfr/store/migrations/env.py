"""Alembic environment for the dfr store, async-aware and configured from code (there is no alembic.ini).

`dfr.store.migrate.migrate` passes the database URL in ``config.attributes["url"]`` (never through the
ini-style options, which would mangle a ``%`` in a password and could echo it in logs) and runs this in
a worker thread, where `asyncio.run` drives the async engine without touching the service's event loop.
A caller that already holds a synchronous connection may pass it in ``config.attributes["connection"]``.

The whole upgrade is one transaction, under a lock (an advisory lock on PostgreSQL, ``BEGIN IMMEDIATE``
on SQLite), so two service instances starting together cannot both apply the same revision.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from dfr.store.engine import create_engine
from dfr.store.models import Base

MIGRATION_LOCK_KEY = 0x0DF2_0001
"""PostgreSQL advisory lock key taken for the duration of an upgrade."""

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL: set config.attributes['url'] (see dfr.store.migrate)")
    return str(url) if isinstance(url, str) else url.render_as_string(hide_password=False)


def run_migrations_offline() -> None:
    """Emit SQL instead of running it (``alembic upgrade --sql``), for a DBA to review."""
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode recreates tables for later revisions.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        context.run_migrations()


async def _run_async() -> None:
    engine = create_engine(_url(), pooled=False)
    try:
        async with engine.execution_options(sqlite_begin="IMMEDIATE").connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
    else:
        asyncio.run(_run_async())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

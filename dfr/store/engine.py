"""Engines for the two supported databases, configured identically for the store and its migrations.

SQLite needs care to be a trustworthy store: Python's sqlite3 driver does not open a transaction before a
SELECT or DDL (so reads are not repeatable and migrations are not atomic), foreign keys are off unless
asked for on every connection, and the default rollback journal blocks readers during writes. The hooks
below make SQLAlchemy emit BEGIN itself, switch on foreign keys and WAL, and wait for a busy database
instead of failing at once. A connection whose execution options contain ``sqlite_begin="IMMEDIATE"``
takes the write lock at BEGIN, which is how ingest serialises its read-decide-write step on SQLite.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

__all__ = ["SQLITE_BUSY_TIMEOUT_MS", "create_engine", "normalize_url", "sqlite_file"]

SQLITE_BUSY_TIMEOUT_MS = 10_000
"""How long a SQLite writer waits for another writer; ingest transactions take milliseconds."""

_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
}


def normalize_url(url: str | URL) -> URL:
    """Parse a database URL and pick the async driver when none is named (``postgresql://`` works).

    In-memory SQLite is refused: the migrations run on their own connection, which would see a
    different, empty database, and a store that forgets everything on restart is not a store.
    """
    parsed = make_url(url) if isinstance(url, str) else url
    driver = _ASYNC_DRIVERS.get(parsed.drivername)
    if driver is not None:
        parsed = parsed.set(drivername=driver)
    if parsed.drivername not in ("sqlite+aiosqlite", "postgresql+asyncpg"):
        raise ValueError(
            f"unsupported database URL scheme {parsed.drivername!r}: "
            "use sqlite+aiosqlite or postgresql+asyncpg"
        )
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if (
            database in ("", ":memory:")
            or parsed.query.get("mode") == "memory"
            or database.startswith("file::memory:")
        ):
            raise ValueError("in-memory SQLite is not supported by the store; use a file path")
    return parsed


def sqlite_file(url: URL) -> Path | None:
    """The database file of a SQLite URL (``None`` for other backends), so its directory can be created."""
    if url.get_backend_name() != "sqlite" or not url.database:
        return None
    database = url.database
    if database.startswith("file:"):  # URI form: file:path?params
        database = database[len("file:") :].split("?", 1)[0]
    return Path(database)


def create_engine(url: str | URL, *, pooled: bool = True) -> AsyncEngine:
    """An async engine for ``url`` with the SQLite hooks installed; ``pooled=False`` for one-off use."""
    parsed = normalize_url(url)
    kwargs: dict[str, Any] = {}
    if not pooled:
        kwargs["poolclass"] = NullPool
    elif parsed.get_backend_name() == "postgresql":
        kwargs["pool_pre_ping"] = True  # survive a database restart without failing the first requests
    engine = create_async_engine(parsed, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        _install_sqlite_hooks(engine)
    return engine


def _install_sqlite_hooks(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy (see the module docstring), then configure the connection.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA foreign_keys = ON")
            # FULL (the default) rather than NORMAL: an acknowledged report must survive a power cut.
            cursor.execute("PRAGMA synchronous = FULL")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        if mode not in ("DEFERRED", "IMMEDIATE", "EXCLUSIVE"):
            raise ValueError(f"bad sqlite_begin mode {mode!r}")
        conn.exec_driver_sql(f"BEGIN {mode}")

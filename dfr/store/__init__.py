"""Persistence of incidents, their reports and the audit log (SQLite or PostgreSQL, schema by Alembic).

Use `Store.open(url)`; see `dfr.store.store` for the ingest guarantees and `dfr.store.merge` for when a
report joins an existing incident.
"""

from dfr.store.merge import JOINABLE_KINDS, MergePolicy, can_join, haversine_m
from dfr.store.migrate import migrate
from dfr.store.store import MAX_PAGE, AuditEntry, IngestResult, Store, StoredReport

__all__ = [
    "JOINABLE_KINDS",
    "MAX_PAGE",
    "AuditEntry",
    "IngestResult",
    "MergePolicy",
    "Store",
    "StoredReport",
    "can_join",
    "haversine_m",
    "migrate",
]

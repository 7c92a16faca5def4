"""Persistence of incidents, missions and the audit log (SQLite or PostgreSQL, schema by Alembic).

Use `Store.open(url)`; see `dfr.store.store` for the ingest guarantees and `dfr.store.merge` for when a
report joins an existing incident. `MissionStore(store)` adds missions on the same database (see
`dfr.store.missions`); importing it here also registers the mission tables on the shared metadata, which
the migrations and the schema checks read.
"""

from dfr.store import audit_chain as _audit_chain  # noqa: F401  (chains every new audit record)
from dfr.store import auth_models as _auth_models  # noqa: F401  (registers the users and sessions tables)
from dfr.store.merge import JOINABLE_KINDS, MergePolicy, can_join, haversine_m
from dfr.store.migrate import migrate
from dfr.store.missions import MissionExists, MissionNotFound, MissionStore, UnknownIncident
from dfr.store.store import MAX_PAGE, AuditEntry, IngestResult, Store, StoredReport

__all__ = [
    "JOINABLE_KINDS",
    "MAX_PAGE",
    "AuditEntry",
    "IngestResult",
    "MergePolicy",
    "MissionExists",
    "MissionNotFound",
    "MissionStore",
    "Store",
    "StoredReport",
    "UnknownIncident",
    "can_join",
    "haversine_m",
    "migrate",
]

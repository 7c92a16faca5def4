"""`dfr audit verify`: check the audit log's hash chain and name the first record that does not fit."""

from __future__ import annotations

import argparse
import asyncio

from dfr.store import Store
from dfr.store.audit_chain import verify_chain


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="audit_command", required=True)
    verify = sub.add_parser("verify", help="recompute the hash chain; exit 1 at the first broken record")
    verify.add_argument(
        "--database-url", help="SQLAlchemy URL (default: DFR_DATABASE_URL or ./var/dfr.sqlite)"
    )


async def _verify(database_url: str) -> int:
    store = await Store.open(database_url, run_migrations=False)  # read only: never change what is checked
    try:
        found = await verify_chain(store.engine)
    finally:
        await store.close()
    if found.intact:
        print(f"audit chain intact: {found.checked} records, last hash {found.last_hash}")
        return 0
    print(
        f"audit chain BROKEN at record {found.first_broken_id}: {found.reason}; "
        f"the {found.checked} records before it verify"
    )
    return 1


def main(args: argparse.Namespace, database_url: str) -> int:
    return asyncio.run(_verify(database_url))

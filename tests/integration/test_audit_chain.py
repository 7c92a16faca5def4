"""The audit log is hash-chained: every writer's records link up, and an edit made behind dfr's back
(triggers dropped, a row changed or removed) is found and named by `verify_chain` and `dfr audit verify`.

Runs on SQLite and, when the PostgreSQL server binaries are installed, on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from dfr.auth import Role
from dfr.domain.incidents import EXAMPLE_GUNSHOT_REPORT, IncidentReport
from dfr.store import Store, migrate
from dfr.store.audit_chain import GENESIS, verify_chain
from tests.integration.test_ingest_api import _pg_database, db_url, pg_server  # noqa: F401  (fixtures)
from tests.support.auth import add_user

NOW = datetime.now(UTC)


def report(external_id: str, north_deg: float = 0.0) -> IncidentReport:
    body = dict(EXAMPLE_GUNSHOT_REPORT)
    loc = dict(body["location"])  # type: ignore[call-overload]
    loc["lat"] += north_deg
    body.update(external_id=external_id, location=loc, reported_at=(NOW - timedelta(seconds=5)).isoformat())
    return IncidentReport.model_validate(body)


async def fill(store: Store) -> None:
    """Records from several writers at once: ingests (merges included), accounts, free audit entries."""
    await asyncio.gather(*(store.ingest(report(f"chain-{i}", i * 0.01 * (i % 2))) for i in range(12)))
    await add_user(store, "chain-pilot", "pw-chain-pilot", Role.PILOT)
    await asyncio.gather(
        *(
            store.append_audit("test", "note", "test", str(i), {"i": i, "x": [1.5, None, "é"]})
            for i in range(5)
        )
    )


async def tamper(store: Store, sql: str) -> None:
    """What someone with the database file could do: lift the append-only triggers, edit, restore them."""
    async with store.engine.begin() as conn:
        if store.backend == "postgresql":
            await conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
            await conn.execute(text(sql))
            await conn.execute(text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only"))
        else:
            await conn.execute(text("DROP TRIGGER audit_log_no_update"))
            await conn.execute(text("DROP TRIGGER audit_log_no_delete"))
            await conn.execute(text(sql))


async def test_every_writer_chains_and_the_chain_verifies(db_url: str) -> None:  # noqa: F811
    async with await Store.open(db_url) as store:
        await fill(store)
        report_ = await verify_chain(store.engine, batch=7)  # batches smaller than the log
        total = (await store.row_counts())["audit_log"]
        assert report_.intact and report_.checked == total == 12 + 1 + 5  # ingests, account, notes
        async with store.engine.connect() as conn:
            rows = (await conn.execute(text("SELECT prev_hash, hash FROM audit_log ORDER BY id"))).all()
        assert rows[0][0] == GENESIS
        assert all(rows[i][0] == rows[i - 1][1] for i in range(1, len(rows)))  # one chain, no forks
        assert len({h for _, h in rows}) == len(rows)


async def test_a_changed_record_is_named(db_url: str) -> None:  # noqa: F811
    async with await Store.open(db_url) as store:
        await fill(store)
        async with store.engine.connect() as conn:
            ids = (await conn.execute(text("SELECT id FROM audit_log ORDER BY id"))).scalars().all()
        victim = ids[len(ids) // 2]
        await tamper(store, f"UPDATE audit_log SET actor = 'someone-else' WHERE id = {victim}")
        found = await verify_chain(store.engine)
        assert not found.intact and found.first_broken_id == victim and "changed" in (found.reason or "")
        assert found.checked == ids.index(victim)


async def test_a_removed_record_breaks_the_next_link(db_url: str) -> None:  # noqa: F811
    async with await Store.open(db_url) as store:
        await fill(store)
        async with store.engine.connect() as conn:
            ids = (await conn.execute(text("SELECT id FROM audit_log ORDER BY id"))).scalars().all()
        await tamper(store, f"DELETE FROM audit_log WHERE id = {ids[3]}")
        found = await verify_chain(store.engine)
        assert found.first_broken_id == ids[4] and "link" in (found.reason or "")


async def test_upgrade_chains_the_records_written_before_the_chain_existed(tmp_path: object) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/old.sqlite"
    await migrate(url, "0003")
    async with await Store.open(url, run_migrations=False) as old:
        async with old.engine.begin() as conn:  # as revision 0003 wrote them: no hash columns yet
            for i in range(3):
                await conn.execute(
                    text(
                        "INSERT INTO audit_log (at, actor, action, subject_type, subject_id, details) "
                        "VALUES (:at, 'old', 'legacy', 'test', :sid, :d)"
                    ),
                    {"at": f"2026-01-0{i + 1} 10:00:00.000000", "sid": str(i), "d": f'{{"n": {i}}}'},
                )
    async with await Store.open(url) as store:  # migrates to head
        await store.append_audit("new", "after-upgrade", "test", None, {})
        found = await verify_chain(store.engine)
        assert found.intact and found.checked == 4


async def test_cli_verify_says_intact_or_names_the_record(tmp_path: object) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/cli.sqlite"
    async with await Store.open(url) as store:
        await fill(store)

    def run() -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "dfr.cli", "audit", "verify", "--database-url", url]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60)

    ok = await asyncio.to_thread(run)
    assert ok.returncode == 0 and "intact" in ok.stdout, ok.stdout + ok.stderr
    async with await Store.open(url) as store:
        await tamper(store, "UPDATE audit_log SET details = '{}' WHERE id = 2")
    bad = await asyncio.to_thread(run)
    assert bad.returncode == 1 and "record 2" in bad.stdout, bad.stdout + bad.stderr


@pytest.mark.parametrize("batch", [1, 1000])
async def test_an_empty_log_is_intact(tmp_path: object, batch: int) -> None:
    async with await Store.open(f"sqlite+aiosqlite:///{tmp_path}/empty.sqlite") as store:
        found = await verify_chain(store.engine, batch=batch)
        assert found.intact and found.checked == 0 and found.last_hash == GENESIS

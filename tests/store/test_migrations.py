"""Migrations per dialect: the same numbers on both, and both migrate from zero to the same schema."""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.store import migrate, open_store
from gateway.store.sqlstore import SqlStore
from tests import pg

# Column types per dialect, by family: what a migration may use and what it means on the other side.
_FAMILY = {"integer": "int", "bigint": "int", "text": "text", "blob": "bytes", "bytea": "bytes"}


def test_every_sqlite_migration_has_a_postgresql_twin() -> None:
    """A migration added for SQLite must be ported to PostgreSQL with the same number and name (and back)."""
    sqlite = {(m.version, m.name) for m in migrate.migrations("sqlite")}
    postgres = {(m.version, m.name) for m in migrate.migrations("postgres")}
    assert sorted(sqlite - postgres) == [], "SQLite migrations without a PostgreSQL twin in sql/postgres/"
    assert sorted(postgres - sqlite) == [], "PostgreSQL migrations without a SQLite twin in sql/sqlite/"


async def test_migrating_from_zero_twice_gives_one_schema(store_url: str) -> None:
    store = await open_store(store_url)
    try:
        assert await store.migrate() == len(migrate.migrations(store.db.dialect))
        first = await schema(store)
        assert await store.migrate() == 0
        assert await schema(store) == first
    finally:
        await store.aclose()


@pg.needs_postgres
async def test_both_dialects_migrate_to_the_same_tables_columns_and_indexes(tmp_path: Any) -> None:
    lite = await open_store(f"sqlite:///{tmp_path / 'g.db'}")
    async with pg.fresh_schema() as url:
        post = await open_store(url)
        try:
            await lite.migrate()
            await post.migrate()
            assert await schema(post) == await schema(lite)
        finally:
            await post.aclose()
            await lite.aclose()


@pg.needs_postgres
async def test_replicas_starting_together_apply_each_migration_once() -> None:
    async with pg.fresh_schema() as url:
        stores = [await open_store(url) for _ in range(3)]
        try:
            applied = await asyncio.gather(*(s.migrate() for s in stores))
            # each migration runs under the lock exactly once, whichever replica gets to it first
            assert sum(applied) == len(migrate.migrations("postgres"))
            assert await migrate.pending(stores[0].db) == []
        finally:
            for store in stores:
                await store.aclose()


async def schema(store: SqlStore) -> dict[str, Any]:
    """Tables -> ordered (column, type family, not null, primary key) and indexes -> (unique, columns, partial)."""
    if store.db.dialect == "sqlite":
        return await _sqlite_schema(store)
    return await _postgres_schema(store)


async def _sqlite_schema(store: SqlStore) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async with store.db.read() as tx:
        tables = await tx.fetchall(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
        )
        for table in (row["name"] for row in tables):
            cols = await tx.fetchall(f"PRAGMA table_info({table})")
            columns = [
                (c["name"], _FAMILY[c["type"].lower()], bool(c["notnull"] or c["pk"]), c["pk"] > 0) for c in cols
            ]
            indexes = {}
            for index in await tx.fetchall(f"PRAGMA index_list({table})"):
                if index["origin"] == "pk":
                    continue
                info = await tx.fetchall(f"PRAGMA index_info({index['name']})")
                name = index["name"] if index["origin"] == "c" else f"{table}_{'_'.join(i['name'] for i in info)}_key"
                indexes[name] = (bool(index["unique"]), tuple(i["name"] for i in info), bool(index["partial"]))
            out[table] = {"columns": columns, "indexes": indexes}
    return out


async def _postgres_schema(store: SqlStore) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async with store.db.read() as tx:
        cols = await tx.fetchall(
            "SELECT c.table_name, c.column_name, c.data_type, c.is_nullable,"
            " EXISTS (SELECT 1 FROM information_schema.key_column_usage k"
            "  JOIN information_schema.table_constraints t ON t.constraint_name = k.constraint_name"
            "   AND t.table_schema = k.table_schema"
            "  WHERE t.constraint_type = 'PRIMARY KEY' AND k.table_schema = c.table_schema"
            "   AND k.table_name = c.table_name AND k.column_name = c.column_name) AS pk"
            " FROM information_schema.columns c WHERE c.table_schema = current_schema()"
            " ORDER BY c.table_name, c.ordinal_position"
        )
        for c in cols:
            table = out.setdefault(c["table_name"], {"columns": [], "indexes": {}})
            table["columns"].append((c["column_name"], _FAMILY[c["data_type"]], c["is_nullable"] == "NO", c["pk"]))
        indexes = await tx.fetchall(
            "SELECT t.relname AS table_name, i.relname AS index_name, x.indisunique AS is_unique,"
            " x.indisprimary AS is_primary, x.indpred IS NOT NULL AS partial,"
            " array(SELECT a.attname FROM unnest(x.indkey) WITH ORDINALITY AS k(attnum, n)"
            "  JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum ORDER BY k.n) AS columns"
            " FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid"
            " JOIN pg_namespace s ON s.oid = t.relnamespace WHERE s.nspname = current_schema()"
        )
        for index in indexes:
            if not index["is_primary"]:
                out[index["table_name"]]["indexes"][index["index_name"]] = (
                    index["is_unique"],
                    tuple(index["columns"]),
                    index["partial"],
                )
    return out

"""``gateway migrate-store``: copy a SQLite store into a fresh PostgreSQL (or SQLite) store, then verify it.

Every table of the source is copied (events, runs, timelines, notifications, reviews, deliveries, jobs and any
table later migrations add), parents before children, in batches, each batch one short transaction. Afterwards the
row count of every table is compared, and an ``audit`` table, whose rows chain by hash, is compared row by row.
Stop the gateway first: rows written during the copy would be missed.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.store import migrate, open_store
from gateway.store.sqlstore import SqlStore

HASHED_TABLES = ("audit",)  # copied byte for byte or the chain no longer verifies


class TransferError(Exception):
    """The copy cannot start or did not verify; the message says why."""


@dataclass(slots=True)
class Report:
    counts: dict[str, int] = field(default_factory=dict)
    digests: dict[str, str] = field(default_factory=dict)


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("migrate-store", help="copy a SQLite store into an empty PostgreSQL store")
    parser.add_argument("--from", dest="source", required=True, metavar="URL", help="sqlite:///path/to/gateway.db")
    parser.add_argument("--to", dest="target", required=True, metavar="URL", help="postgresql://user@host/db")
    parser.add_argument("--batch-size", type=int, default=500, help="rows copied per transaction")


def run(args: argparse.Namespace) -> int:
    problem = url_problem(args.source, args.target, args.batch_size)
    if problem:
        print(f"gateway migrate-store: {problem}", file=sys.stderr)
        return 2
    try:
        report = asyncio.run(transfer(args.source, args.target, batch_size=args.batch_size))
    except (TransferError, OSError) as exc:
        print(f"gateway migrate-store: {exc}", file=sys.stderr)
        return 1
    for table, count in report.counts.items():
        print(f"{table}: {count} row(s) copied and counted")
    for table in report.digests:
        print(f"{table}: every row identical (hash chain intact as in the source)")
    return 0


def url_problem(source: str, target: str, batch_size: int) -> str | None:
    if not source.startswith("sqlite:///") or len(source) <= len("sqlite:///"):
        return "--from must be a SQLite store URL: sqlite:///path/to/gateway.db"
    if not target.startswith(("postgresql://", "postgres://", "sqlite:///")) or target.endswith("://"):
        return "--to must be a store URL: postgresql://user@host:5432/db (or sqlite:///path)"
    if source == target:
        return "--from and --to name the same store"
    if batch_size < 1:
        return "--batch-size must be at least 1"
    return None


async def transfer(source_url: str, target_url: str, *, batch_size: int = 500) -> Report:
    source = await open_store(source_url)
    try:
        if await migrate.pending(source.db):
            raise TransferError("the source has pending migrations: run `gateway migrate` against it first")
        target = await open_store(target_url)
        try:
            await target.migrate()
            tables = await source_tables(source)
            await refuse_non_empty(target, tables)
            for table in tables:
                await copy_table(source, target, table, batch_size)
            await reset_identities(target, tables)
            return await verify(source, target, tables)
        finally:
            await target.aclose()
    finally:
        await source.aclose()


async def source_tables(store: SqlStore) -> list[str]:
    """Tables in dependency order (parents first), ties by name; the migration ledger is the target's own."""
    async with store.db.read() as tx:
        rows = await tx.fetchall(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            " AND name <> 'schema_migrations' ORDER BY name"
        )
        parents = {}
        for table in (row["name"] for row in rows):
            keys = await tx.fetchall(f'PRAGMA foreign_key_list("{table}")')
            parents[table] = {key["table"] for key in keys if key["table"] != table}
    ordered: list[str] = []
    while parents:
        ready = sorted(t for t, deps in parents.items() if not deps - set(ordered))
        if not ready:
            raise TransferError(f"foreign keys form a cycle among {sorted(parents)}")
        ordered.extend(ready)
        for table in ready:
            del parents[table]
    return ordered


async def refuse_non_empty(target: SqlStore, tables: Sequence[str]) -> None:
    for table in tables:
        if await count_rows(target, table):
            raise TransferError(f"the target is not empty (table {table} has rows); copy only into a fresh store")


async def count_rows(store: SqlStore, table: str) -> int:
    try:
        async with store.db.read() as tx:
            row = await tx.fetchone(f'SELECT COUNT(*) AS n FROM "{table}"')
    except Exception as exc:  # the target lacks a table the source has: its migrations are behind
        raise TransferError(f"cannot read table {table}: {type(exc).__name__}") from exc
    return int(row["n"]) if row else 0


async def copy_table(source: SqlStore, target: SqlStore, table: str, batch_size: int) -> None:
    last = -1
    while True:
        async with source.db.read() as tx:
            rows = await tx.fetchall(
                f'SELECT rowid AS "_rowid", * FROM "{table}" WHERE rowid > ? ORDER BY rowid LIMIT ?', (last, batch_size)
            )
        if not rows:
            return
        columns = [name for name in rows[0].keys() if name != "_rowid"]
        names = ", ".join(f'"{name}"' for name in columns)
        marks = ", ".join("?" * len(columns))
        async with target.db.write() as tx:
            await tx.executemany(
                f'INSERT INTO "{table}" ({names}) VALUES ({marks})', [[row[c] for c in columns] for row in rows]
            )
        last = rows[-1]["_rowid"]


async def reset_identities(target: SqlStore, tables: Sequence[str]) -> None:
    """Explicit ids were copied into identity columns: move each sequence past the largest id."""
    if target.db.dialect != "postgres":
        return
    async with target.db.write() as tx:
        identities = await tx.fetchall(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND is_identity = 'YES'"
        )
        for row in identities:
            if row["table_name"] in tables:
                table, column = row["table_name"], row["column_name"]
                await tx.fetchone(
                    f'SELECT setval(pg_get_serial_sequence(?, ?), COALESCE(MAX("{column}"), 0) + 1, false)'
                    f' FROM "{table}"',
                    (table, column),
                )


async def verify(source: SqlStore, target: SqlStore, tables: Sequence[str]) -> Report:
    report = Report()
    for table in tables:
        expected, copied = await count_rows(source, table), await count_rows(target, table)
        if expected != copied:
            raise TransferError(f"table {table}: {expected} row(s) in the source but {copied} in the target")
        report.counts[table] = copied
    for table in (t for t in HASHED_TABLES if t in tables):
        before, after = await digest(source, table), await digest(target, table)
        if before != after:
            raise TransferError(f"table {table}: rows differ after the copy; the hash chain would not verify")
        report.digests[table] = after
    return report


async def digest(store: SqlStore, table: str) -> str:
    """SHA-256 over every row in key order, values in column order, bytes as bytes."""
    sha = hashlib.sha256()
    async with store.db.read() as tx:
        rows = await tx.fetchall(f'SELECT * FROM "{table}" ORDER BY 1')
    for row in rows:
        for value in (row[key] for key in row.keys()):
            sha.update(value if isinstance(value, bytes) else repr(value).encode())
            sha.update(b"\x1f")
        sha.update(b"\x1e")
    return sha.hexdigest()

"""Numbered migrations: ``sql/<dialect>/NNNN_name.sql`` applied in order, each once, recorded in the database."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

from gateway.store.db import Database, Tx
from gateway.store.dialect import dialect

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_TRIGGER = re.compile(r"\s*CREATE\s+TRIGGER\b", re.IGNORECASE)
_TRIGGER_END = re.compile(r"\bEND\s*$", re.IGNORECASE)
_CREATE = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations(dialect: str) -> list[Migration]:
    folder = resources.files("gateway.store").joinpath("sql", dialect)
    found = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text("utf-8")))
    return sorted(found, key=lambda m: m.version)


def statements(sql: str) -> list[str]:
    """Split a migration into statements (our migrations keep ';' out of literals and comments).

    A ``CREATE TRIGGER`` runs on to its closing ``END``, and a ``$$``-quoted body to its closing ``$$``:
    the ';' inside them do not split them."""
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    found: list[str] = []
    pending = ""
    for part in "\n".join(lines).split(";"):
        pending = f"{pending};{part}" if pending else part
        if _TRIGGER.match(pending) and not _TRIGGER_END.search(pending):
            continue
        if pending.count("$$") % 2:
            continue
        if pending.strip():
            found.append(pending.strip())
        pending = ""
    return found


async def _exclusive(db: Database, tx: Tx) -> None:
    """Several replicas may start at once: migrations take a lock so each runs exactly once."""
    lock = dialect(db.dialect).lock
    if lock is not None:
        await tx.execute(lock, ("schema_migrations",))


async def applied_versions(db: Database) -> set[int]:
    async with db.write() as tx:
        await _exclusive(db, tx)
        await tx.execute(_CREATE)
        rows = await tx.fetchall("SELECT version FROM schema_migrations")
    return {int(row["version"]) for row in rows}


async def migrate(db: Database) -> int:
    """Apply pending migrations; returns how many were applied."""
    done = await applied_versions(db)
    count = 0
    for migration in migrations(db.dialect):
        if migration.version in done:
            continue
        async with db.write() as tx:
            await _exclusive(db, tx)
            if await tx.fetchone("SELECT version FROM schema_migrations WHERE version = ?", (migration.version,)):
                continue  # another replica applied it while we waited for the lock
            for statement in statements(migration.sql):
                await tx.execute(statement)
            await tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, CURRENT_TIMESTAMP)",
                (migration.version, migration.name),
            )
        count += 1
    return count


async def pending(db: Database) -> list[int]:
    done = await applied_versions(db)
    return [m.version for m in migrations(db.dialect) if m.version not in done]

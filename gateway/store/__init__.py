"""Durable state: ``open_store(url)`` picks the implementation by URL scheme.

One ``SqlStore`` over the Database seam (``seam``: SQLite in ``db``/``groupcommit``, PostgreSQL in ``pg``),
with the desk's queue, access and audit tables (``queue_sql``, ``access_sql``, ``audit_sql``), encryption at
rest (``sealing``, ``codec``, ``blind``), migrations and maintenance.

May import ``core`` and ``domain`` only: no feature package."""

from __future__ import annotations

from gateway.store.codec import Sealer
from gateway.store.sqlstore import SqlStore


async def open_store(
    url: str, *, sealer: Sealer | None = None, busy_timeout_ms: int = 5000, pool_size: int = 10
) -> SqlStore:
    """Open (not migrate) the store named by ``url``: ``sqlite:///path`` or ``postgresql://...``."""
    if url.startswith("sqlite:///"):
        from gateway.store.db import SqliteDatabase

        db = SqliteDatabase(url.removeprefix("sqlite:///"), busy_timeout_ms=busy_timeout_ms)
        await db.open()
        return SqlStore(db, sealer)
    if url.startswith(("postgresql://", "postgres://")):
        from gateway.store.pg import PostgresDatabase

        pg = PostgresDatabase(url, pool_size=pool_size)
        await pg.open()
        try:
            await pg.listen()
        except BaseException:
            await pg.aclose()
            raise
        return SqlStore(pg, sealer)
    raise ValueError(f"unsupported store URL scheme: {url.split(':', 1)[0]}")

"""The SQL connection layer under the store: one writer, one reader, short transactions.

SQL is written once with ``?`` placeholders; a dialect that needs ``$1`` placeholders translates.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

import aiosqlite

Row = Mapping[str, Any]
Params = Sequence[Any]


class Tx(Protocol):
    dialect: str

    async def execute(self, sql: str, params: Params = ()) -> int: ...

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None: ...

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None: ...

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]: ...


class Database(Protocol):
    dialect: str

    def write(self) -> Any: ...  # async context manager yielding Tx

    def read(self) -> Any: ...

    def on_wake(self, callback: Callable[[], None]) -> None: ...  # work queued elsewhere (other replicas)

    async def aclose(self) -> None: ...


class SqliteTx:
    __slots__ = ("_conn",)
    dialect = "sqlite"

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Params = ()) -> int:
        cursor = await self._conn.execute(sql, params)
        count = cursor.rowcount
        await cursor.close()
        return count

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        await self._conn.executemany(sql, rows)

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        async with self._conn.execute(sql, params) as cursor:
            row = await cursor.fetchone()
        return row  # type: ignore[return-value]

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        rows = await self._conn.execute_fetchall(sql, params)
        return list(rows)  # type: ignore[arg-type]


class SqliteDatabase:
    """WAL, synchronous=FULL, BEGIN IMMEDIATE for writes, a busy timeout (RELIABILITY.md T8)."""

    dialect = "sqlite"

    def __init__(self, path: str, *, busy_timeout_ms: int = 5000) -> None:
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()

    async def open(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._writer = await self._connect()
        await _run(self._writer, "PRAGMA journal_mode=WAL")
        self._reader = await self._connect()
        await _run(self._reader, "PRAGMA query_only=ON")

    async def _connect(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        conn.row_factory = sqlite3.Row
        for pragma in (f"busy_timeout={int(self.busy_timeout_ms)}", "synchronous=FULL", "foreign_keys=ON"):
            await _run(conn, f"PRAGMA {pragma}")
        return conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[SqliteTx]:
        assert self._writer is not None, "database is not open"
        async with self._write_lock:
            await _run(self._writer, "BEGIN IMMEDIATE")
            try:
                yield SqliteTx(self._writer)
            except BaseException:
                await _run(self._writer, "ROLLBACK")
                raise
            await _run(self._writer, "COMMIT")

    @asynccontextmanager
    async def read(self) -> AsyncIterator[SqliteTx]:
        assert self._reader is not None, "database is not open"
        yield SqliteTx(self._reader)

    def on_wake(self, callback: Callable[[], None]) -> None:
        """Nothing to listen for: one process owns a SQLite store and wakes its dispatcher itself."""

    async def pragmas(self) -> dict[str, Any]:
        assert self._writer is not None
        out = {}
        for name in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys"):
            async with self._writer.execute(f"PRAGMA {name}") as cursor:
                row = await cursor.fetchone()
            out[name] = row[0] if row else None
        return out

    async def aclose(self) -> None:
        for conn in (self._reader, self._writer):
            if conn is not None:
                await conn.close()
        self._reader = self._writer = None


async def _run(conn: aiosqlite.Connection, sql: str) -> None:
    """Execute and finalise at once: an unfinished statement would keep a lock."""
    await conn.execute_fetchall(sql)

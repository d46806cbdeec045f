"""The SQL connection layer under the store: one writer, one reader, short transactions.

SQL is written once with ``?`` placeholders; a dialect that needs ``$1`` placeholders translates.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import aiosqlite

if TYPE_CHECKING:
    from gateway.store.groupcommit import GroupWriter

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

    def on_commit(self, callback: Callable[[float, int], None]) -> None: ...  # (seconds, writes committed together)

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
        self._writer: GroupWriter | None = None
        self._reader: aiosqlite.Connection | None = None

    async def open(self) -> None:
        from gateway.store.groupcommit import GroupWriter

        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        self._writer = GroupWriter(conn)
        for pragma in (f"busy_timeout={int(self.busy_timeout_ms)}", "synchronous=FULL", "foreign_keys=ON"):
            await self._writer.run(f"PRAGMA {pragma}")
        await self._writer.run("PRAGMA journal_mode=WAL")
        self._writer.start()
        self._reader = await self._connect()
        await _run(self._reader, "PRAGMA query_only=ON")

    async def _connect(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        conn.row_factory = sqlite3.Row
        for pragma in (f"busy_timeout={int(self.busy_timeout_ms)}", "synchronous=FULL", "foreign_keys=ON"):
            await _run(conn, f"PRAGMA {pragma}")
        return conn

    def write(self) -> Any:
        """One transaction, committed together with the writes that arrive with it (``groupcommit``)."""
        assert self._writer is not None, "database is not open"
        return self._writer.write()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[SqliteTx]:
        assert self._reader is not None, "database is not open"
        yield SqliteTx(self._reader)

    def on_wake(self, callback: Callable[[], None]) -> None:
        """Nothing to listen for: one process owns a SQLite store and wakes its dispatcher itself."""

    def on_commit(self, callback: Callable[[float, int], None]) -> None:
        assert self._writer is not None, "database is not open"
        self._writer.on_commit = callback

    async def pragmas(self) -> dict[str, Any]:
        assert self._writer is not None
        out = {}
        for name in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys"):
            row = self._writer.conn.execute(f"PRAGMA {name}").fetchone()
            out[name] = row[0] if row else None
        return out

    async def aclose(self) -> None:
        if self._reader is not None:
            await self._reader.close()
        if self._writer is not None:
            await self._writer.aclose()
        self._reader = self._writer = None


async def _run(conn: aiosqlite.Connection, sql: str) -> None:
    """Execute and finalise at once: an unfinished statement would keep a lock."""
    await conn.execute_fetchall(sql)

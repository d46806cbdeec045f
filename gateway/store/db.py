"""The SQL connection layer under the store: one writer, one reader, short transactions.

SQL is written once with ``?`` placeholders; a dialect that needs ``$1`` placeholders translates.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import aiosqlite

from gateway.store.seam import Database as Database
from gateway.store.seam import Params as Params
from gateway.store.seam import Row as Row
from gateway.store.seam import Tx as Tx

if TYPE_CHECKING:
    from gateway.store.groupcommit import GroupWriter

WAKE_POLL_SECONDS = 0.02
T = TypeVar("T")


class SqliteTx:
    """Reads on the reader connection, each statement run to its end in one hop to aiosqlite's thread.

    A statement left open across hops (execute, then fetch, then close) keeps the connection's WAL
    read snapshot open, and another coroutine's read in between then sees state older than commits
    that landed meanwhile: a job claimed after its creator's commit read the review it must resume as
    still OPEN. ``execute_fetchall`` steps each statement to its end in one call, so every read starts
    from a fresh snapshot (RELIABILITY.md, "Jobs read what their creator committed").
    """

    __slots__ = ("_conn",)
    dialect = "sqlite"

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Params = ()) -> int:
        await self._conn.execute_fetchall(sql, params)
        return -1  # the reader is query_only: there are no rows changed to count

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        raise sqlite3.OperationalError("the reader connection is read-only")

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        rows = await self._conn.execute_fetchall(sql, params)
        for row in rows:
            return row  # type: ignore[return-value]
        return None

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
        self._wake: list[Callable[[], None]] = []
        self._watcher: asyncio.Task[None] | None = None

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

    async def transact(self, body: Callable[[Tx], Awaitable[T]]) -> T:
        """``body`` run and committed in the writer thread, with the writes that arrive with it."""
        assert self._writer is not None, "database is not open"
        return await self._writer.transact(body)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[SqliteTx]:
        assert self._reader is not None, "database is not open"
        yield SqliteTx(self._reader)

    def on_wake(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when a commit lands from another connection (another process: ``gateway serve
        --role api`` beside ``--role worker``), seen as a change of ``PRAGMA data_version``, polled every
        ``WAKE_POLL_SECONDS`` on a connection of its own."""
        self._wake.append(callback)
        if self._watcher is None and self.path != ":memory:":
            self._watcher = asyncio.create_task(self._watch(), name="sqlite-wake")

    async def _watch(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            seen = _data_version(conn)
            while True:
                await asyncio.sleep(WAKE_POLL_SECONDS)
                version = _data_version(conn)
                if version != seen:
                    seen = version
                    for callback in self._wake:
                        callback()
        finally:
            conn.close()

    def on_commit(self, callback: Callable[[float, int], None]) -> None:
        assert self._writer is not None, "database is not open"
        self._writer.on_commit = callback

    async def pragmas(self) -> dict[str, Any]:
        assert self._writer is not None
        out = {}
        for name in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys"):
            rows = await self._writer.run(f"PRAGMA {name}")
            out[name] = rows[0][0] if rows else None
        return out

    async def aclose(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        if self._reader is not None:
            await self._reader.close()
        if self._writer is not None:
            await self._writer.aclose()
        self._reader = self._writer = None


def _data_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("PRAGMA data_version").fetchone()
    return int(row[0])


async def _run(conn: aiosqlite.Connection, sql: str) -> None:
    """Execute and finalise at once: an unfinished statement would keep a lock."""
    await conn.execute_fetchall(sql)

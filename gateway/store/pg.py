"""The SQL connection layer over PostgreSQL (asyncpg): a pool, short transactions, LISTEN/NOTIFY wake-ups.

Same ``Database``/``Tx`` protocol as :mod:`gateway.store.db`. Statements keep the store's ``?`` placeholders;
each is translated to ``$n`` once and cached. Extra query parameters in the URL (``?search_path=x``) are
passed to the server as session settings, as asyncpg does.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any, TypeVar, cast

import asyncpg  # type: ignore[import-untyped]

from gateway.store.db import Params, Row, Tx

T = TypeVar("T")

log = logging.getLogger("gateway.store.pg")
WAKE_CHANNEL = "gateway_jobs"
SESSION_SETTINGS = {
    "idle_in_transaction_session_timeout": "60000",  # RELIABILITY.md §6: a stuck transaction is cut off at 60 s
    "application_name": "gateway",
}


@functools.lru_cache(maxsize=1024)
def translate(sql: str) -> str:
    """``?`` -> ``$1, $2, ...`` outside quoted literals and identifiers."""
    out: list[str] = []
    quote: str | None = None
    count = 0
    for char in sql:
        if quote is not None:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "?":
            count += 1
            out.append(f"${count}")
            continue
        out.append(char)
    return "".join(out)


def rowcount(status: str) -> int:
    """Rows touched, from a command status such as ``INSERT 0 1``, ``UPDATE 3`` or ``SELECT 1``."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class PgTx:
    dialect = "postgres"
    __slots__ = ("_conn",)

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Params = ()) -> int:
        status = await self._conn.execute(translate(sql), *params)
        return rowcount(status)

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        await self._conn.executemany(translate(sql), list(rows))

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        return cast(Row | None, await self._conn.fetchrow(translate(sql), *params))

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        return cast(list[Row], await self._conn.fetch(translate(sql), *params))


class PostgresDatabase:
    """READ COMMITTED transactions from a pool; writers coordinate with row locks, SKIP LOCKED and advisory locks."""

    dialect = "postgres"

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.pool_size = pool_size
        self._pool: Any = None
        self._listener: Any = None
        self._wake: list[Callable[[], None]] = []
        self._on_commit: Callable[[float, int], None] | None = None

    async def open(self) -> None:
        self._pool = await asyncpg.create_pool(
            self.url,
            min_size=1,
            max_size=self.pool_size,
            server_settings=dict(SESSION_SETTINGS),
            command_timeout=60,
        )

    def on_wake(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` whenever any replica queues work (NOTIFY on the jobs channel)."""
        self._wake.append(callback)

    async def listen(self) -> None:
        """Hold one extra connection that LISTENs for wake-ups; losing it only falls back to polling."""
        if self._listener is not None:
            return
        self._listener = await asyncpg.connect(self.url, server_settings=dict(SESSION_SETTINGS))
        await self._listener.add_listener(WAKE_CHANNEL, self._notified)
        self._listener.add_termination_listener(self._lost)

    def _notified(self, *_: Any) -> None:
        for callback in self._wake:
            callback()

    def _lost(self, *_: Any) -> None:
        log.warning("wake-up listener connection lost; idle replicas fall back to polling")
        self._listener = None

    def on_commit(self, callback: Callable[[float, int], None]) -> None:
        self._on_commit = callback

    @asynccontextmanager
    async def write(self) -> AsyncIterator[PgTx]:
        assert self._pool is not None, "database is not open"
        started = time.perf_counter()
        async with self._pool.acquire() as conn, conn.transaction():
            yield PgTx(conn)
        if self._on_commit is not None:
            self._on_commit(time.perf_counter() - started, 1)

    async def transact(self, body: Callable[[Tx], Awaitable[T]]) -> T:
        async with self.write() as tx:
            return await body(tx)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[PgTx]:
        assert self._pool is not None, "database is not open"
        async with self._pool.acquire() as conn:
            yield PgTx(conn)

    async def settings(self) -> dict[str, str]:
        """What the server says about the settings that matter (for health checks and tests)."""
        async with self.read() as tx:
            rows = await tx.fetchall(
                "SELECT name, setting FROM pg_settings WHERE name IN"
                " ('idle_in_transaction_session_timeout', 'synchronous_commit', 'default_transaction_isolation')"
            )
        return {row["name"]: row["setting"] for row in rows}

    async def aclose(self) -> None:
        if self._listener is not None:
            listener, self._listener = self._listener, None
            listener.remove_termination_listener(self._lost)
            await listener.close()
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

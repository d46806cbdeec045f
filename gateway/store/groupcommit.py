"""Group commit for the SQLite writer: the writes that arrive together share one transaction and one fsync.

Each ``write()`` body runs alone on the writer connection inside its own SAVEPOINT, so a body that fails is
rolled back alone and its caller gets the error. The bodies that ran since the last commit are committed
together by one task (one ``COMMIT``, one fsync with ``synchronous=FULL``), and every ``write()`` returns only
after the commit that holds its work: nothing is acknowledged before it is durable.

Statements run inline on the event loop thread (point reads and writes through indexes take microseconds);
``BEGIN IMMEDIATE`` (which may wait on another process's lock) and ``COMMIT`` (which fsyncs) run in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable

from gateway.store.db import Params, Row

MAX_GATHER_ROUNDS = 16


class SyncTx:
    """The ``Tx`` interface over a plain sqlite3 connection; each call completes without suspending."""

    __slots__ = ("_conn",)
    dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Params = ()) -> int:
        cursor = self._conn.execute(sql, params)
        count = cursor.rowcount
        cursor.close()
        return count

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        self._conn.executemany(sql, rows).close()

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        cursor = self._conn.execute(sql, params)
        try:
            row: Row | None = cursor.fetchone()
        finally:
            cursor.close()
        return row

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        cursor = self._conn.execute(sql, params)
        try:
            rows: list[Row] = cursor.fetchall()
        finally:
            cursor.close()
        return rows


class _Batch:
    __slots__ = ("committed", "members")

    def __init__(self) -> None:
        self.committed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.members = 0


class GroupWriter:
    """Owns the writer connection. ``write()`` yields a ``Tx``; leaving the block waits for the commit."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._lock = asyncio.Lock()
        self._batch: _Batch | None = None
        self._queued = 0  # writers waiting for the connection
        self._kick = asyncio.Event()
        self._committer: asyncio.Task[None] | None = None
        self.on_commit: Callable[[float, int], None] | None = None  # (seconds, writes in the batch): /metrics

    def start(self) -> None:
        if self._committer is None:
            self._committer = asyncio.create_task(self._commit_loop(), name="sqlite-group-commit")

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[SyncTx]:
        self._queued += 1
        try:
            await self._lock.acquire()
        finally:
            self._queued -= 1
        try:
            batch = await self._begin()
            self.conn.execute("SAVEPOINT w")
            try:
                yield SyncTx(self.conn)
            except BaseException:
                self._undo(batch)
                raise
            self.conn.execute("RELEASE w")
            batch.members += 1
            self._kick.set()
        finally:
            self._lock.release()
        await asyncio.shield(batch.committed)

    async def run(self, sql: str) -> None:
        """A statement outside any transaction (pragmas), after whatever is pending is committed."""
        async with self._lock:
            await self._flush()
            await self._in_thread(sql)

    async def _begin(self) -> _Batch:
        if self._batch is None:
            if not self.conn.in_transaction:
                await self._in_thread("BEGIN IMMEDIATE")
            self._batch = _Batch()
        return self._batch

    def _undo(self, batch: _Batch) -> None:
        """Roll back one body; what the others in the batch wrote stays and is committed."""
        with contextlib.suppress(sqlite3.Error):
            self.conn.execute("ROLLBACK TO w")
            self.conn.execute("RELEASE w")
        if not self.conn.in_transaction:  # SQLite rolled the whole transaction back (disk full, I/O error)
            self._batch = None
            _fail(batch, sqlite3.OperationalError("the transaction was rolled back"))
        self._kick.set()

    async def _commit_loop(self) -> None:
        while True:
            await self._kick.wait()
            self._kick.clear()
            await self._gather()
            async with self._lock:  # FIFO: the writers already queued run their bodies first
                with contextlib.suppress(Exception):  # the batch's writers get the error
                    await self._flush()

    async def _gather(self) -> None:
        """Let the writes already on their way join the batch: yield to the loop while the batch keeps growing
        (at most ``MAX_GATHER_ROUNDS`` turns of the loop, a fraction of one fsync)."""
        for _ in range(MAX_GATHER_ROUNDS):
            size = self._size()
            await asyncio.sleep(0)
            if self._size() == size:
                return

    def _size(self) -> int:
        return self._queued + (self._batch.members if self._batch is not None else 0)

    async def _flush(self) -> None:
        batch, self._batch = self._batch, None
        if batch is None:
            if self.conn.in_transaction:  # begun for writers that went away before writing
                await self._in_thread("COMMIT")
            return
        begin_next = self._queued > 0  # writers are waiting: open their transaction in the same thread hop
        started = time.perf_counter()
        try:
            await self._in_thread("COMMIT", "BEGIN IMMEDIATE" if begin_next else None)
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                await self._in_thread("ROLLBACK")
            _fail(batch, exc)
            raise
        batch.committed.set_result(None)
        if self.on_commit is not None:
            self.on_commit(time.perf_counter() - started, batch.members)
        if begin_next:
            self._kick.set()  # commits the begun transaction even if its writers go away

    async def _in_thread(self, sql: str, then: str | None = None) -> None:
        """Run in a thread; a cancelled caller still waits for the statement, so the connection stays in step.
        ``then`` runs after ``sql`` in the same hop when ``sql`` succeeded (its own failure is left for later)."""
        work = asyncio.ensure_future(asyncio.to_thread(self._execute, sql, then))
        try:
            await asyncio.shield(work)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await work
            raise

    def _execute(self, sql: str, then: str | None = None) -> None:
        if sql == "ROLLBACK" and not self.conn.in_transaction:
            return
        self.conn.execute(sql).close()
        if then is not None:
            with contextlib.suppress(sqlite3.Error):  # _begin sees no transaction and begins again
                self.conn.execute(then).close()

    async def aclose(self) -> None:
        task, self._committer = self._committer, None
        if task is not None:
            async with self._lock:
                await self._flush()
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.conn.close()


def _fail(batch: _Batch, exc: BaseException) -> None:
    if batch.committed.done():
        return
    if isinstance(exc, Exception):
        batch.committed.set_exception(exc)
        batch.committed.exception()  # retrieved: a batch whose writers are gone must not warn
    else:
        batch.committed.cancel()

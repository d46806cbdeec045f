"""The pipelined SQLite writer: the writes that arrive together share one transaction and one fsync, and the
writer thread runs and commits one batch while the event loop gathers the next.

A write is either a *body* (``transact(body)``: an async function of a ``Tx`` that awaits nothing but that
``Tx``), which the writer thread drives to its end on its own connection, or a *session* (``write()``: the
caller's ``async with`` block), for which the thread opens the savepoint and then lends the connection to the
event loop until the block ends. Each write runs alone inside its own SAVEPOINT, so one that fails is rolled
back alone and its caller gets the error. The writes of a batch are committed with one ``COMMIT`` (one fsync
with ``synchronous=FULL``) and each caller is answered only after the commit that holds its work: nothing is
acknowledged before it is durable.

The loop never waits for SQLite: ``BEGIN IMMEDIATE`` (which may wait on another process's lock), every
statement of a body, and ``COMMIT`` run in the writer thread, which hands the answers of a whole batch back
to the loop in one call.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from typing import Any, TypeVar

from gateway.store.seam import Params, Row, Tx

T = TypeVar("T")
MAX_BATCH = 512  # writes per transaction: bounds the time a COMMIT keeps its callers waiting


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


def run_to_end(coro: Coroutine[Any, Any, T]) -> T:
    """Drive a coroutine that never suspends (it awaits only a ``SyncTx``) to its result, synchronously."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError("a write body suspended: it may await only the Tx it is given")


class _Write:
    """One queued write and what became of it; ``done`` is resolved on the loop after the batch ends."""

    __slots__ = ("body", "done", "error", "result")

    def __init__(self, body: Callable[[Tx], Awaitable[Any]] | None, done: asyncio.Future[Any]) -> None:
        self.body = body
        self.done = done
        self.result: Any = None
        self.error: BaseException | None = None


class _Session(_Write):
    """A write whose statements the event loop runs itself while the writer thread waits."""

    __slots__ = ("finished", "ready", "succeeded")

    def __init__(self, done: asyncio.Future[Any], ready: asyncio.Future[None]) -> None:
        super().__init__(None, done)
        self.ready = ready
        self.finished = threading.Event()
        self.succeeded = False


class _Statement(_Write):
    """A statement outside any transaction (pragmas), run after what is pending is committed."""

    __slots__ = ("sql",)

    def __init__(self, sql: str, done: asyncio.Future[Any]) -> None:
        super().__init__(None, done)
        self.sql = sql


_STOP = object()


class GroupWriter:
    """Owns the writer connection and the thread that uses it."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._queue: collections.deque[Any] = collections.deque()
        self._ready = threading.Condition(threading.Lock())
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        # (seconds, writes in the batch) after each COMMIT, called in the writer thread: /metrics
        self.on_commit: Callable[[float, int], None] | None = None

    def start(self) -> None:
        if self._thread is None:
            self._loop = asyncio.get_running_loop()
            self._thread = threading.Thread(target=self._serve, name="sqlite-writer", daemon=True)
            self._thread.start()

    # the event loop's side -------------------------------------------------------------------------

    async def transact(self, body: Callable[[Tx], Awaitable[T]]) -> T:
        """Run ``body`` in the writer thread inside the next batch; its result once the batch is committed."""
        write = _Write(body, self._future())
        self._submit(write)
        result: T = await asyncio.shield(write.done)
        return result

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[SyncTx]:
        """The caller's block runs on the loop with the connection, inside a savepoint of the next batch."""
        session = _Session(self._future(), self._future())
        self._submit(session)
        try:
            await asyncio.shield(session.ready)
        except BaseException:
            session.finished.set()  # cancelled while waiting: the thread rolls the savepoint back, if it got one
            raise
        try:
            yield SyncTx(self.conn)
            session.succeeded = True
        finally:
            session.finished.set()
        await asyncio.shield(session.done)

    async def run(self, sql: str) -> list[Any]:
        """A statement outside any transaction, after whatever is pending is committed; its rows."""
        statement = _Statement(sql, self._future())
        self._submit(statement)
        rows: list[Any] = await asyncio.shield(statement.done)
        return rows

    def _future(self) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieve)  # a write whose caller went away must not warn
        return future

    def _submit(self, item: Any) -> None:
        if self._thread is None:
            self.start()
        with self._ready:
            self._queue.append(item)
            self._ready.notify()

    # the writer thread's side ----------------------------------------------------------------------

    def _serve(self) -> None:
        while True:
            with self._ready:
                while not self._queue:
                    self._ready.wait()
                batch = [self._queue.popleft() for _ in range(min(len(self._queue), MAX_BATCH))]
            answered = self._run_batch(batch)
            self._answer(answered)
            if batch[-1] is _STOP:
                return

    def _run_batch(self, batch: list[Any]) -> list[_Write]:
        answered: list[_Write] = []
        pending: list[_Write] = []  # written inside the open transaction, not yet committed
        for item in batch:
            if item is _STOP:
                break
            if isinstance(item, _Statement):
                self._commit(pending)
                answered += pending
                pending = []
                self._statement(item)
                answered.append(item)
                continue
            if not self._begin(item):
                answered.append(item)
                continue
            if self._one(item):
                pending.append(item)
            else:
                answered.append(item)
                if not self.conn.in_transaction:  # SQLite rolled the whole transaction back (disk full, I/O)
                    _fail_all(pending, sqlite3.OperationalError("the transaction was rolled back"))
                    answered += pending
                    pending = []
        self._commit(pending)
        return answered + pending

    def _begin(self, item: _Write) -> bool:
        if self.conn.in_transaction:
            return True
        try:
            self.conn.execute("BEGIN IMMEDIATE").close()
        except BaseException as exc:
            item.error = exc
            if isinstance(item, _Session):
                item.finished.set()
            return False
        return True

    def _one(self, item: _Write) -> bool:
        """Run one write inside its savepoint; False (and ``item.error``) when it was rolled back."""
        self.conn.execute("SAVEPOINT w").close()
        try:
            if isinstance(item, _Session):
                self._lend(item)
            else:
                assert item.body is not None
                item.result = run_to_end(item.body(SyncTx(self.conn)))  # type: ignore[arg-type]
        except BaseException as exc:
            item.error = exc
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK TO w").close()
                self.conn.execute("RELEASE w").close()
            return False
        self.conn.execute("RELEASE w").close()
        return True

    def _lend(self, session: _Session) -> None:
        """Let the loop run the session's block on the connection; this thread waits until it ends."""
        assert self._loop is not None
        if not session.finished.is_set():
            self._loop.call_soon_threadsafe(_settle_ready, session.ready)
            session.finished.wait()
        if not session.succeeded:
            raise _Abandoned

    def _commit(self, pending: list[_Write]) -> None:
        if not self.conn.in_transaction:
            return
        started = time.perf_counter()
        try:
            self.conn.execute("COMMIT").close()
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK").close()
            _fail_all(pending, exc)
            return
        if self.on_commit is not None:
            self.on_commit(time.perf_counter() - started, len(pending))

    def _statement(self, item: _Statement) -> None:
        try:
            cursor = self.conn.execute(item.sql)
            item.result = cursor.fetchall()
            cursor.close()
        except BaseException as exc:
            item.error = exc

    def _answer(self, answered: list[_Write]) -> None:
        if answered and self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody is waiting
                self._loop.call_soon_threadsafe(_settle, answered)

    async def aclose(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            with self._ready:
                self._queue.append(_STOP)
                self._ready.notify()
            await asyncio.to_thread(thread.join)
        self.conn.close()


class _Abandoned(Exception):
    """The session's block raised or was cancelled: its savepoint is rolled back; its caller has the error."""


def _settle_ready(ready: asyncio.Future[None]) -> None:
    if not ready.done():
        ready.set_result(None)


def _settle(answered: list[_Write]) -> None:
    for item in answered:
        if item.done.done():
            continue
        if item.error is None:
            item.done.set_result(item.result)
        elif isinstance(item.error, Exception):
            item.done.set_exception(item.error)
        else:
            item.done.cancel()


def _fail_all(writes: list[_Write], exc: BaseException) -> None:
    for write in writes:
        write.error = exc


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()

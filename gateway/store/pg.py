"""The SQL connection layer over PostgreSQL (asyncpg): a pool, short transactions, LISTEN/NOTIFY wake-ups.

Same ``Database``/``Tx`` protocol as :mod:`gateway.store.db`. Statements keep the store's ``?`` placeholders;
each is translated to ``$n`` once and cached. Extra query parameters in the URL (``?search_path=x``) are
passed to the server as session settings, as asyncpg does.

Event submissions take a pipelined path of their own (``EventWriter``, issue 12 point 1): the submissions
that arrive while one batch is in flight are written together by the next, with one multi-row statement
on a connection of the writer's own, in autocommit: one round trip, one commit. Each caller is answered
only after that commit; the first answer for a repeated (source, id) is returned.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
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
        self.events = EventWriter(self)

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

    async def connect(self) -> Any:
        """A connection outside the pool, with the session settings (the caller closes it)."""
        return await asyncpg.connect(self.url, server_settings=dict(SESSION_SETTINGS), command_timeout=60)

    def committed(self, seconds: float, writes: int) -> None:
        if self._on_commit is not None:
            self._on_commit(seconds, writes)

    async def aclose(self) -> None:
        await self.events.aclose()
        if self._listener is not None:
            listener, self._listener = self._listener, None
            listener.remove_termination_listener(self._lost)
            await listener.close()
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()


# The event, its runs and their start jobs, for a whole batch, in one statement: the events whose (source,
# ce_source, ce_id) is new are inserted, and only their runs and jobs; each submission gets back either
# ``inserted`` or the stored first answer. Data-modifying CTEs see the snapshot the statement started with, so
# ``old`` holds only events stored before it; runs reference events inserted by the same statement, which the
# foreign key (checked at the end of the statement) accepts. One NOTIFY wakes the workers when jobs were queued.
_EVENT_COLUMNS = ("id", "source", "ce_source", "ce_id", "type", "received_at", "body", "response", "traceparent")
_EVENT_TYPES = ("text", "text", "text", "text", "text", "bigint", "bytea", "text", "text")
_RUN_COLUMNS = (
    "id",
    "event_id",
    "route",
    "flow",
    "provider",
    "template",
    "status",
    "provider_status",
    "provider_run_id",
    "idempotency_key",
    "input",
    "output",
    "error",
    "pending",
    "created_at",
    "updated_at",
    "finished_at",
    "last_news_at",
    "version",
    "traceparent",
)
_RUN_TYPES = ("text",) * 10 + ("bytea",) * 3 + ("text",) + ("bigint",) * 5 + ("text",)
_JOB_COLUMNS = ("event_id", "kind", "ref", "due_at", "data", "created_at", "updated_at")
_JOB_TYPES = ("text", "text", "text", "bigint", "text", "bigint", "bigint")


def _unnest(columns: Sequence[str], types: Sequence[str], first: int, alias: str) -> str:
    arrays = ", ".join(f"${first + n}::{kind}[]" for n, kind in enumerate(types))
    return f"unnest({arrays}) AS {alias}({', '.join(columns)})"


def _batch_sql() -> str:
    events = ", ".join(_EVENT_COLUMNS)
    runs = ", ".join(_RUN_COLUMNS)
    first_run = len(_EVENT_COLUMNS) + 1
    first_job = first_run + len(_RUN_COLUMNS)
    return f"""
WITH ev AS (
    SELECT * FROM {_unnest(_EVENT_COLUMNS, _EVENT_TYPES, 1, "e")}
), ins AS (
    INSERT INTO events ({events}) SELECT {events} FROM ev
    ON CONFLICT (source, ce_source, ce_id) DO NOTHING
    RETURNING id
), rn AS (
    INSERT INTO runs ({runs})
    SELECT {runs} FROM {_unnest(_RUN_COLUMNS, _RUN_TYPES, first_run, "r")} WHERE r.event_id IN (SELECT id FROM ins)
    RETURNING id
), jb AS (
    INSERT INTO jobs (kind, ref, state, due_at, data, created_at, updated_at)
    SELECT j.kind, j.ref, 'queued', j.due_at, j.data, j.created_at, j.updated_at
    FROM {_unnest(_JOB_COLUMNS, _JOB_TYPES, first_job, "j")} WHERE j.event_id IN (SELECT id FROM ins)
    ON CONFLICT (kind, ref) DO UPDATE SET
        rerun = CASE WHEN jobs.state = 'running' THEN 1 ELSE jobs.rerun END,
        state = CASE WHEN jobs.state = 'running' THEN 'running' ELSE 'queued' END,
        attempts = CASE WHEN jobs.state IN ('done', 'dead') THEN 0 ELSE jobs.attempts END,
        due_at = CASE WHEN jobs.state = 'running' THEN jobs.due_at ELSE excluded.due_at END,
        data = excluded.data,
        updated_at = excluded.updated_at
    RETURNING id
), note AS (
    SELECT count(pg_notify('{WAKE_CHANNEL}', '')) AS woken FROM (SELECT 1 FROM jb LIMIT 1) AS queued
)
SELECT ev.id AS submitted, ins.id IS NOT NULL AS inserted, old.id, old.source, old.ce_id, old.received_at, old.response
FROM ev CROSS JOIN note
LEFT JOIN ins ON ins.id = ev.id
LEFT JOIN events AS old ON ins.id IS NULL
    AND old.source = ev.source AND old.ce_source = ev.ce_source AND old.ce_id = ev.ce_id
"""


BATCH_SQL = _batch_sql()
FIND_SQL = (
    "SELECT id, source, ce_id, received_at, response FROM events WHERE source = $1 AND ce_source = $2 AND ce_id = $3"
)
MAX_EVENT_BATCH = 256  # submissions per statement: bounds the time one commit keeps its callers waiting


@dataclass(slots=True, kw_only=True)
class EventRows:
    """What one event submission writes, as statement parameters (built on the loop, sealed already)."""

    event: tuple[Any, ...]  # in _EVENT_COLUMNS order
    runs: list[tuple[Any, ...]] = field(default_factory=list)  # in _RUN_COLUMNS order
    jobs: list[tuple[Any, ...]] = field(default_factory=list)  # (kind, ref, due_at, data, created_at, updated_at)

    @property
    def key(self) -> tuple[Any, ...]:
        return self.event[1:4]  # (source, ce_source, ce_id)

    def answer(self) -> dict[str, Any]:
        """This submission's own answer, as the stored row would give it."""
        event = dict(zip(_EVENT_COLUMNS, self.event, strict=True))
        return {name: event[name] for name in ("id", "source", "ce_id", "received_at", "response")}


class _Submission:
    __slots__ = ("done", "rows", "same")

    def __init__(self, rows: EventRows, done: asyncio.Future[Row | None]) -> None:
        self.rows = rows
        self.done = done
        self.same: list[_Submission] = []  # later submissions of the same (source, id) in the same batch


class EventWriter:
    """Writes event submissions in batches: while one statement is in flight, the loop gathers the next batch.

    ``insert`` returns None when the submission's event was stored, or the stored first answer for its
    (source, id). A batch whose statement fails (a row the server refuses, a lost connection) is written again
    one submission at a time, each alone: the submission that fails gets its error, the others are stored.
    Writing again is safe because an event is stored at most once per (source, id): one that did commit
    before the connection was lost comes back as its own stored answer.
    """

    def __init__(self, db: PostgresDatabase) -> None:
        self.db = db
        self._queue: list[_Submission] = []
        self._waiting = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._conn: Any = None
        self._stopping = False
        self.batches = 0  # statements that wrote a batch (for tests and the bench)

    async def insert(self, rows: EventRows) -> Row | None:
        done: asyncio.Future[Row | None] = asyncio.get_running_loop().create_future()
        done.add_done_callback(_retrieve)  # a submission whose caller went away must not warn
        self._queue.append(_Submission(rows, done))
        self._waiting.set()
        if self._task is None or self._task.done():
            self._stopping = False
            self._task = asyncio.create_task(self._serve(), name="pg-event-writer")
        return await asyncio.shield(done)

    async def _serve(self) -> None:
        while self._queue or not self._stopping:
            await self._waiting.wait()
            batch, self._queue = self._queue[:MAX_EVENT_BATCH], self._queue[MAX_EVENT_BATCH:]
            if not self._queue:
                self._waiting.clear()
            try:
                if batch:
                    await self._write(batch)
            except BaseException as exc:  # not expected; each caller gets the error, the writer goes on
                for submission in batch:
                    _fail(submission, exc)
                if not isinstance(exc, Exception):
                    raise

    async def _write(self, batch: list[_Submission]) -> None:
        firsts: dict[tuple[Any, ...], _Submission] = {}
        for submission in batch:
            first = firsts.setdefault(submission.rows.key, submission)
            if first is not submission:
                first.same.append(submission)
        unique = list(firsts.values())
        started = time.perf_counter()
        try:
            answers = await self._statement([s.rows for s in unique])
        except Exception as exc:
            log.warning("event batch refused, writing its %d submissions one at a time: %s", len(unique), exc)
            await self._one_by_one(batch)
            return
        self.db.committed(time.perf_counter() - started, len(unique))
        for submission in unique:
            await self._answer(submission, answers)

    async def _one_by_one(self, batch: list[_Submission]) -> None:
        for submission in batch:
            submission.same = []  # each repeat is written on its own too, and finds the first if it was stored
        for submission in batch:
            try:
                answers = await self._statement([submission.rows])
            except Exception as exc:
                _fail(submission, exc)
            else:
                await self._answer(submission, answers)

    async def _answer(self, submission: _Submission, answers: dict[str, Row | None]) -> None:
        """Settle a submission (and its repeats) once its batch is committed."""
        answer = answers.get(submission.rows.event[0], _MISSING)
        if answer is _MISSING:  # another replica stored the same (source, id) while the statement ran
            try:
                answer = await self._find(submission.rows)
                if answer is None:
                    raise RuntimeError("the event was neither inserted nor found")
            except Exception as exc:
                _fail(submission, exc)
                return
        _settle(submission, answer)
        for same in submission.same:
            _settle(same, submission.rows.answer() if answer is None else answer)

    async def _statement(self, batch: list[EventRows]) -> dict[str, Row | None]:
        """Run the batch statement (autocommit: it is its own transaction); the answer per submitted event id."""
        params: list[list[Any]] = [
            *_columns([rows.event for rows in batch], len(_EVENT_COLUMNS)),
            *_columns([run for rows in batch for run in rows.runs], len(_RUN_COLUMNS)),
            *_columns([(rows.event[0], *job) for rows in batch for job in rows.jobs], len(_JOB_COLUMNS)),
        ]
        try:
            found = await (await self._connection()).fetch(BATCH_SQL, *params)
        except Exception as exc:
            if not self._broken(exc):
                raise
            # the connection was lost (between batches, or during this one): once more on a new connection; safe
            # because a submission that did commit comes back as its own stored answer
            await self._drop()
            found = await (await self._connection()).fetch(BATCH_SQL, *params)
        self.batches += 1
        answers: dict[str, Row | None] = {}
        for row in found:
            if row["inserted"]:
                answers[row["submitted"]] = None
            elif row["id"] is not None:
                answers[row["submitted"]] = row
        return answers

    async def _find(self, rows: EventRows) -> Row | None:
        conn = await self._connection()
        return cast(Row | None, await conn.fetchrow(FIND_SQL, *rows.key))

    async def _connection(self) -> Any:
        if self._conn is None or self._conn.is_closed():
            self._conn = await self.db.connect()
        return self._conn

    def _broken(self, exc: Exception) -> bool:
        """True when ``exc`` says the connection is unusable, not that the server refused the rows."""
        if self._conn is None or self._conn.is_closed():
            return True
        return not isinstance(exc, asyncpg.PostgresError) or isinstance(
            exc, asyncpg.PostgresConnectionError | asyncpg.OperatorInterventionError
        )

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.terminate()

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:  # what was submitted before close is still written and answered
            self._stopping = True
            self._waiting.set()
            await task
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()


_MISSING: Any = object()


def _columns(rows: list[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows to one list per column (the arrays the statement unnests)."""
    if not rows:
        return [[] for _ in range(width)]
    return [list(column) for column in zip(*rows, strict=True)]


def _settle(submission: _Submission, answer: Row | None) -> None:
    if not submission.done.done():
        submission.done.set_result(answer)


def _fail(submission: _Submission, exc: BaseException) -> None:
    for one in (submission, *submission.same):
        if one.done.done():
            continue
        if isinstance(exc, Exception):
            one.done.set_exception(exc)
        else:
            one.done.cancel()


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()

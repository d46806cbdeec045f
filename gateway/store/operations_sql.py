"""What operating the gateway reads and writes beside the pipeline: delivery attempts, sink states, dead jobs,
and the gauges ``/metrics`` shows. Each method is one short transaction; the SQL suits SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from gateway.domain.model import DeliveryAttempt, Job, JobKind, SinkState
from gateway.domain.ports import NewJob
from gateway.store import codec
from gateway.store.codec import from_us, need_dt, to_us
from gateway.store.dialect import Dialect
from gateway.store.seam import Database, Row, Tx


class StoreHandle(Protocol):
    """What the operations store needs of ``SqlStore``: its database and its dialect's statements."""

    @property
    def db(self) -> Database: ...

    @property
    def sql(self) -> Dialect: ...

    async def _upsert_job(self, tx: Tx, job: NewJob, now: datetime) -> None: ...


async def insert_attempt(tx: Tx, attempt: DeliveryAttempt) -> None:
    await tx.execute(
        "INSERT INTO delivery_attempts (delivery_id, attempt, at, duration_us, status_code, error, response_bytes)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            attempt.delivery_id,
            attempt.attempt,
            to_us(attempt.at),
            round(attempt.duration_ms * 1000),
            attempt.status_code,
            (attempt.error or "")[:500] or None,
            attempt.response_bytes,
        ),
    )


async def clear_sink_failing(tx: Tx, sink: str) -> None:
    """A delivery got through: the sink is no longer failing (a no-op unless it was)."""
    await tx.execute(
        "UPDATE sink_states SET failing_since = NULL WHERE sink = ? AND failing_since IS NOT NULL", (sink,)
    )


class OperationsStore:
    def __init__(self, store: StoreHandle) -> None:
        self.store = store
        self.db = store.db

    # delivery attempts ---------------------------------------------------------------------------

    async def attempts(self, delivery_id: str, limit: int = 200) -> list[DeliveryAttempt]:
        """The attempts of one delivery, oldest first."""
        async with self.db.read() as tx:
            rows = await tx.fetchall(
                "SELECT * FROM delivery_attempts WHERE delivery_id = ? ORDER BY id LIMIT ?", (delivery_id, limit)
            )
        return [_attempt(row) for row in rows]

    # sink states ---------------------------------------------------------------------------------

    async def sink_state(self, sink: str) -> SinkState:
        async with self.db.read() as tx:
            row = await tx.fetchone("SELECT * FROM sink_states WHERE sink = ?", (sink,))
        return _sink_state(row) if row else SinkState(sink=sink)

    async def sink_states(self) -> list[SinkState]:
        async with self.db.read() as tx:
            rows = await tx.fetchall("SELECT * FROM sink_states ORDER BY sink")
        return [_sink_state(row) for row in rows]

    async def note_sink_failure(self, sink: str, now: datetime) -> datetime:
        """Record that a delivery to ``sink`` failed; returns since when it has been failing."""
        async with self.db.write() as tx:
            await tx.execute(
                "INSERT INTO sink_states (sink, failing_since) VALUES (?, ?) ON CONFLICT (sink) DO UPDATE"
                " SET failing_since = COALESCE(sink_states.failing_since, excluded.failing_since)",
                (sink, to_us(now)),
            )
            row = await tx.fetchone("SELECT failing_since FROM sink_states WHERE sink = ?", (sink,))
        assert row is not None
        return need_dt(row["failing_since"])

    async def disable_sink(self, sink: str, reason: str, now: datetime, jobs: Sequence[NewJob] = ()) -> bool:
        """Disable ``sink``; False when it was disabled already (so one alert is sent, not one per delivery). The
        ``jobs`` (its alert) are queued in the same transaction, only when this call disabled it."""
        async with self.db.write() as tx:
            await tx.execute("INSERT INTO sink_states (sink) VALUES (?) ON CONFLICT (sink) DO NOTHING", (sink,))
            count = await tx.execute(
                "UPDATE sink_states SET disabled_at = ?, disabled_reason = ? WHERE sink = ? AND disabled_at IS NULL",
                (to_us(now), reason[:500], sink),
            )
            if count:
                for job in jobs:
                    await self.store._upsert_job(tx, job, now)
        return bool(count)

    async def enable_sink(self, sink: str) -> bool:
        async with self.db.write() as tx:
            count = await tx.execute(
                "UPDATE sink_states SET disabled_at = NULL, disabled_reason = NULL, failing_since = NULL"
                " WHERE sink = ? AND disabled_at IS NOT NULL",
                (sink,),
            )
        return bool(count)

    # dead jobs -----------------------------------------------------------------------------------

    async def dead_jobs(self, *, kind: JobKind | None, limit: int, after: int | None) -> list[Job]:
        """Buried jobs, oldest first, paged by job id."""
        clauses: list[str] = ["state = 'dead'"]
        params: list[Any] = []
        if kind is not None:
            clauses.append("kind = ?")
            params.append(kind.value)
        if after is not None:
            clauses.append("id > ?")
            params.append(after)
        async with self.db.read() as tx:
            rows = await tx.fetchall(
                f"SELECT * FROM jobs WHERE {' AND '.join(clauses)} ORDER BY id LIMIT ?", (*params, limit)
            )
        return [codec.job_from_row(row) for row in rows]

    async def get_job(self, job_id: int) -> Job | None:
        async with self.db.read() as tx:
            row = await tx.fetchone("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return codec.job_from_row(row) if row else None

    async def revive_job(self, job_id: int, now: datetime) -> bool:
        """Queue a buried job again with a fresh attempt budget; False when it is not dead (any more)."""
        async with self.db.write() as tx:
            count = await tx.execute(
                "UPDATE jobs SET state = 'queued', attempts = 0, due_at = ?, updated_at = ? WHERE id = ?"
                " AND state = 'dead'",
                (to_us(now), to_us(now), job_id),
            )
            if count and self.store.sql.notify is not None:
                await tx.execute(self.store.sql.notify)
        return bool(count)

    # gauges --------------------------------------------------------------------------------------

    async def gauges(self, now: datetime) -> dict[str, list[Row]]:
        """Grouped counts for ``/metrics``: every label is a configured name or a state, never an id."""
        queries: Sequence[tuple[str, str, tuple[Any, ...]]] = (
            (  # live runs only: finished ones are counted as they finish (gateway_runs_finished_total)
                "runs",
                "SELECT flow, status, COUNT(*) AS n FROM runs"
                " WHERE status IN ('QUEUED', 'CREATED', 'IN_PROGRESS', 'PENDING', 'UNKNOWN') GROUP BY flow, status",
                (),
            ),
            (
                "jobs",
                "SELECT kind, state, COUNT(*) AS n, MIN(CASE WHEN state = 'queued' AND due_at <= ? THEN due_at END)"
                " AS oldest FROM jobs GROUP BY kind, state",
                (to_us(now),),
            ),
            (  # not the DELIVERED ones, which only grow: gateway_deliveries_total counts them
                "deliveries",
                "SELECT sink, state, COUNT(*) AS n FROM deliveries WHERE state IN ('PENDING', 'DEAD')"
                " GROUP BY sink, state",
                (),
            ),
            (
                "reviews",
                "SELECT r.flow, COALESCE(i.sla_state, 'ok') AS sla_state, COUNT(*) AS n FROM reviews r"
                " LEFT JOIN review_items i ON i.review_id = r.id WHERE r.state = 'OPEN'"
                " GROUP BY r.flow, COALESCE(i.sla_state, 'ok')",
                (),
            ),
            ("sinks", "SELECT sink, disabled_at FROM sink_states", ()),
        )
        found: dict[str, list[Row]] = {}
        async with self.db.read() as tx:
            for name, sql, params in queries:
                found[name] = await tx.fetchall(sql, params)
        return found


def _attempt(row: Row) -> DeliveryAttempt:
    return DeliveryAttempt(
        delivery_id=row["delivery_id"],
        attempt=row["attempt"],
        at=need_dt(row["at"]),
        duration_ms=row["duration_us"] / 1000,
        status_code=row["status_code"],
        error=row["error"],
        response_bytes=row["response_bytes"],
    )


def _sink_state(row: Row) -> SinkState:
    return SinkState(
        sink=row["sink"],
        failing_since=from_us(row["failing_since"]),
        disabled_at=from_us(row["disabled_at"]),
        disabled_reason=row["disabled_reason"],
    )

"""The Store over SQL: every method is one short transaction. Written in SQL both SQLite and PostgreSQL accept."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from gateway.core import cloudevents
from gateway.domain.model import (
    JSON,
    CloudEvent,
    Delivery,
    DeliveryState,
    Job,
    JobKind,
    JobState,
    Notification,
    Review,
    Run,
    RunStatus,
    Transition,
)
from gateway.domain.ports import (
    DeliveryOutcome,
    EventRecord,
    NewJob,
    NewRun,
    NotificationOutcome,
    OrphanRun,
    ReplayQuery,
    RunChange,
    RunFilter,
)
from gateway.store import codec, migrate, operations_sql
from gateway.store.codec import Payloads, Sealer, dumps, to_us
from gateway.store.db import Database, Row, Tx
from gateway.store.dialect import dialect

_RUN_COLUMNS = (
    "id, event_id, route, flow, provider, template, status, provider_status, provider_run_id, idempotency_key,"
    " input, output, error, pending, created_at, updated_at, finished_at, last_news_at, version, traceparent"
)
_UPSERT_JOB = """
INSERT INTO jobs (kind, ref, state, due_at, data, created_at, updated_at)
VALUES (?, ?, 'queued', ?, ?, ?, ?)
ON CONFLICT (kind, ref) DO UPDATE SET
    rerun = CASE WHEN jobs.state = 'running' THEN 1 ELSE jobs.rerun END,
    state = CASE WHEN jobs.state = 'running' THEN 'running' ELSE 'queued' END,
    attempts = CASE WHEN jobs.state IN ('done', 'dead') THEN 0 ELSE jobs.attempts END,
    due_at = CASE WHEN jobs.state = 'running' THEN jobs.due_at ELSE excluded.due_at END,
    data = excluded.data,
    updated_at = excluded.updated_at
"""

# A notification's fetch: news not yet acted on is never dropped. The status a notification saw lets the fetch be
# skipped when it only repeats the run's status; when news about different statuses is coalesced into one job,
# the job keeps no status, so it fetches.
_UPSERT_FETCH_JOB = _UPSERT_JOB.replace(
    "data = excluded.data,",
    "data = CASE WHEN jobs.state IN ('done', 'dead') OR jobs.data = excluded.data THEN excluded.data ELSE '{}' END,",
)

# the due jobs of one lane in due order; each lane has its own partial index (jobs_due_starts, jobs_due_later)
_CLAIMABLE = (
    "SELECT id FROM jobs WHERE {lane} AND due_at <= ? AND state IN ('queued', 'running')"
    " AND (state = 'queued' OR (state = 'running' AND lease_expires_at < ?)) ORDER BY due_at LIMIT ?"
)


def fair_share(starts: Sequence[Row], later: Sequence[Row], limit: int) -> list[Row]:
    """The jobs one claim takes: the later steps of started runs first, and never less than a quarter of the
    claim for new starts while starts are due, so neither lane starves the other (issue 12 point 4)."""
    n_starts = min(len(starts), max(limit - len(later), limit // 4, 1))
    return [*later[: limit - n_starts], *starts[:n_starts]]


class SqlStore:
    def __init__(self, db: Database, sealer: Sealer | None = None) -> None:
        self.db = db
        self.payloads = Payloads(sealer or codec.PlainSealer())
        self.sql = dialect(db.dialect)

    async def migrate(self) -> int:
        return await migrate.migrate(self.db)

    async def check(self) -> JSON:
        async with self.db.read() as tx:
            await tx.fetchone("SELECT 1 AS ok")
        pending = await migrate.pending(self.db)
        return {"store": "ok", "pending_migrations": pending}

    async def aclose(self) -> None:
        await self.db.aclose()

    def on_work(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when another replica queues work (LISTEN/NOTIFY on PostgreSQL)."""
        self.db.on_wake(callback)

    # events and runs -------------------------------------------------------------------------

    async def find_event(self, source: str, ce_source: str, ce_id: str) -> EventRecord | None:
        async with self.db.read() as tx:
            row = await tx.fetchone(
                "SELECT id, source, ce_id, received_at, response FROM events"
                " WHERE source = ? AND ce_source = ? AND ce_id = ?",
                (source, ce_source, ce_id),
            )
        return _event_record(row) if row else None

    async def insert_event(self, record: EventRecord, event: CloudEvent, runs: Sequence[NewRun]) -> EventRecord:
        """Insert the event with its runs and start jobs; an existing (source, id) wins and is returned."""
        now_us = to_us(record.received_at)
        body = self.payloads.seal("events", record.id, "body", event.as_dict())
        event_row = (
            record.id,
            record.source,
            event.source,
            record.ce_id,
            event.type,
            now_us,
            body,
            dumps(record.response),
            record.traceparent,
        )
        jobs = [
            NewJob(kind=JobKind.START_RUN, ref=new.run.id, due_at=record.received_at, data=new.job_data) for new in runs
        ]
        if self.sql.name == "postgres":  # one statement per batch of submissions (pg.EventWriter)
            from gateway.store.pg import EventRows, PostgresDatabase

            assert isinstance(self.db, PostgresDatabase)
            rows = EventRows(
                event=event_row,
                runs=[self._run_params(new.run) for new in runs],
                jobs=[self._job_params(job, record.received_at) for job in jobs],
            )
            stored = await self.db.events.insert(rows)
            return record if stored is None else _event_record(stored)

        async def write(tx: Tx) -> EventRecord:
            inserted = await tx.execute(
                "INSERT INTO events (id, source, ce_source, ce_id, type, received_at, body, response, traceparent)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source, ce_source, ce_id) DO NOTHING",
                event_row,
            )
            if inserted == 0:
                row = await tx.fetchone(
                    "SELECT id, source, ce_id, received_at, response FROM events"
                    " WHERE source = ? AND ce_source = ? AND ce_id = ?",
                    (record.source, event.source, record.ce_id),
                )
                assert row is not None
                return _event_record(row)
            for new, job in zip(runs, jobs, strict=True):
                await self._insert_run(tx, new.run)
                await self._upsert_job(tx, job, record.received_at)
            return record

        return await self.db.transact(write)

    async def event_body(self, event_id: str) -> CloudEvent | None:
        async with self.db.read() as tx:
            row = await tx.fetchone("SELECT body FROM events WHERE id = ?", (event_id,))
        if row is None or row["body"] is None:
            return None
        data = self.payloads.open("events", event_id, "body", row["body"])
        return cloudevents.loads(dumps(data).encode())

    async def _insert_run(self, tx: Tx, run: Run) -> None:
        await tx.execute(f"INSERT INTO runs ({_RUN_COLUMNS}) VALUES ({', '.join('?' * 20)})", self._run_params(run))

    def _run_params(self, run: Run) -> tuple[Any, ...]:
        return (
            run.id,
            run.event_id,
            run.route,
            run.flow,
            run.provider,
            run.template,
            run.status.value,
            run.provider_status,
            run.provider_run_id,
            run.idempotency_key,
            self.payloads.seal("runs", run.id, "input", run.input),
            self.payloads.seal("runs", run.id, "output", run.output),
            self.payloads.seal("runs", run.id, "error", run.error),
            codec.pending_to_text(run.pending),
            to_us(run.created_at),
            to_us(run.updated_at),
            to_us(run.finished_at),
            to_us(run.last_news_at),
            run.version,
            run.traceparent,
        )

    async def get_run(self, run_id: str) -> Run | None:
        async with self.db.read() as tx:
            row = await tx.fetchone(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,))
        return codec.run_from_row(row, self.payloads) if row else None

    async def get_run_by_provider_id(self, provider: str, provider_run_id: str) -> Run | None:
        async with self.db.read() as tx:
            row = await tx.fetchone(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE provider = ? AND provider_run_id = ?",
                (provider, provider_run_id),
            )
        return codec.run_from_row(row, self.payloads) if row else None

    async def list_runs(self, flt: RunFilter) -> list[Run]:
        where, params = _where(
            (
                ("status", flt.status.value if flt.status else None),
                ("flow", flt.flow),
                ("route", flt.route),
                ("provider", flt.provider),
                ("event_id", flt.event_id),
            ),
            before=flt.before,
        )
        async with self.db.read() as tx:
            rows = await tx.fetchall(
                f"SELECT {_RUN_COLUMNS} FROM runs {where} ORDER BY id DESC LIMIT ?", (*params, flt.limit)
            )
        return [codec.run_from_row(row, self.payloads) for row in rows]

    async def timeline(self, run_id: str) -> list[Transition]:
        async with self.db.read() as tx:
            rows = await tx.fetchall(
                "SELECT run_id, at, from_status, to_status, cause, detail FROM run_transitions"
                " WHERE run_id = ? ORDER BY id",
                (run_id,),
            )
        return [codec.transition_from_row(row) for row in rows]

    async def apply_run_change(self, change: RunChange, now: datetime) -> bool:
        """Write a run change and everything that follows from it, or nothing (version or fence lost)."""

        async def write(tx: Tx) -> None:
            if change.finish_job is not None and not await self._finish_job(tx, change.finish_job, now):
                raise _Lost
            if change.run is not None and not await self._update_run(tx, change.run, change.expected_version):
                raise _Lost
            await self._write_consequences(tx, change, now)

        try:
            await self.db.transact(write)
        except _Lost:
            return False
        return True

    async def _update_run(self, tx: Tx, run: Run, expected_version: int) -> bool:
        count = await tx.execute(
            "UPDATE runs SET status = ?, provider_status = ?, provider_run_id = ?, output = ?, error = ?,"
            " pending = ?, updated_at = ?, finished_at = ?, last_news_at = ?, version = version + 1"
            " WHERE id = ? AND version = ?",
            (
                run.status.value,
                run.provider_status,
                run.provider_run_id,
                self.payloads.seal("runs", run.id, "output", run.output),
                self.payloads.seal("runs", run.id, "error", run.error),
                codec.pending_to_text(run.pending),
                to_us(run.updated_at),
                to_us(run.finished_at),
                to_us(run.last_news_at),
                run.id,
                expected_version,
            ),
        )
        return count == 1

    async def _write_consequences(self, tx: Tx, change: RunChange, now: datetime) -> None:
        for step in change.transitions:
            await tx.execute(
                "INSERT INTO run_transitions (run_id, at, from_status, to_status, cause, detail)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    step.run_id,
                    to_us(step.at),
                    step.from_status.value if step.from_status else None,
                    step.to_status.value,
                    step.cause,
                    step.detail,
                ),
            )
        if change.resolve_review is not None:
            review_id, state, error = change.resolve_review
            await tx.execute(
                "UPDATE reviews SET state = ?, last_error = ?, updated_at = ?, version = version + 1 WHERE id = ?",
                (state.value, error, to_us(now), review_id),
            )
        if change.close_reviews and change.run is not None:
            await tx.execute(
                "UPDATE reviews SET state = CASE state WHEN 'DECIDED' THEN 'RESUMED' ELSE 'CLOSED' END,"
                " updated_at = ?, version = version + 1 WHERE run_id = ? AND state IN ('OPEN', 'DECIDED')",
                (to_us(now), change.run.id),
            )
        if change.drop_reviews is not None and change.run is not None:
            await tx.execute(
                "UPDATE reviews SET state = 'CLOSED', last_error = ?, updated_at = ?, version = version + 1"
                " WHERE run_id = ? AND state IN ('OPEN', 'DECIDED')",
                (change.drop_reviews, to_us(now), change.run.id),
            )
        if change.open_review is not None:
            await self._insert_review(tx, change.open_review)
        if change.refine_review is not None and change.run is not None:
            await tx.execute(
                "UPDATE reviews SET request = ?, updated_at = ? WHERE run_id = ? AND state = 'OPEN'",
                (codec.pending_to_text(change.refine_review), to_us(now), change.run.id),
            )
        for delivery in change.deliveries:
            inserted = await tx.execute(
                "INSERT INTO deliveries (id, run_id, sink, state, created_at, updated_at, next_attempt_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, sink) DO NOTHING",
                (
                    delivery.id,
                    delivery.run_id,
                    delivery.sink,
                    delivery.state.value,
                    to_us(now),
                    to_us(now),
                    to_us(now),
                ),
            )
            if inserted:
                await self._upsert_job(tx, NewJob(kind=JobKind.DELIVER, ref=delivery.id, due_at=now), now)
        for job in change.jobs:
            await self._upsert_job(tx, job, now)
        if change.attach_orphans and change.run is not None and change.run.provider_run_id:
            await self._attach_orphans(tx, change.run, now)

    async def _insert_review(self, tx: Tx, review: Review) -> None:
        await tx.execute(
            "INSERT INTO reviews (id, run_id, flow, state, request, gathered, created_at, updated_at, version)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)",
            (
                review.id,
                review.run_id,
                review.flow,
                review.state.value,
                codec.pending_to_text(review.request),
                self.payloads.seal("reviews", review.id, "gathered", review.gathered),
                to_us(review.created_at),
                to_us(review.updated_at),
            ),
        )

    async def _attach_orphans(self, tx: Tx, run: Run, now: datetime) -> None:
        await self._lock(tx, f"notifications/{run.provider}/{run.provider_run_id}")
        attached = await tx.execute(
            "UPDATE notifications SET run_id = ? WHERE provider = ? AND provider_run_id = ? AND run_id IS NULL",
            (run.id, run.provider, run.provider_run_id),
        )
        if attached:
            await self._upsert_job(tx, NewJob(kind=JobKind.FETCH_RUN, ref=run.id, due_at=now), now)

    # notifications ------------------------------------------------------------------------------

    async def record_notification(self, notification: Notification, received_at: datetime) -> NotificationOutcome:
        """Keep the notification once per message id; queue a fetch of its run when the run is known."""

        async def write(tx: Tx) -> NotificationOutcome:
            await self._lock(tx, f"notifications/{notification.provider}/{notification.provider_run_id}")
            inserted = await tx.execute(
                "INSERT INTO notifications (provider, message_id, provider_run_id, status, state_id, event_type,"
                " received_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (provider, message_id) DO NOTHING",
                (
                    notification.provider,
                    notification.message_id,
                    notification.provider_run_id,
                    notification.status,
                    notification.state_id,
                    notification.event_type,
                    to_us(received_at),
                ),
            )
            if not inserted:
                return NotificationOutcome(duplicate=True, run_id=None)
            row = await tx.fetchone(
                "SELECT id FROM runs WHERE provider = ? AND provider_run_id = ?",
                (notification.provider, notification.provider_run_id),
            )
            if row is None:
                return NotificationOutcome(duplicate=False, run_id=None)
            await tx.execute(
                "UPDATE notifications SET run_id = ? WHERE provider = ? AND message_id = ?",
                (row["id"], notification.provider, notification.message_id),
            )
            await self._upsert_job(
                tx,
                NewJob(
                    kind=JobKind.FETCH_RUN,
                    ref=row["id"],
                    due_at=received_at,
                    data={"status_hint": notification.status},
                ),
                received_at,
                sql=_UPSERT_FETCH_JOB,
            )
            return NotificationOutcome(duplicate=False, run_id=row["id"])

        return await self.db.transact(write)

    async def pause_state(self, run_id: str, provider_status: str) -> str | None:
        """The state id of the run's latest notification with ``provider_status`` received since the run last
        left a pause: where a provider (Sohar) names the pause point only in its notifications, this is the
        point, whatever notifications arrived after it about other statuses."""
        async with self.db.read() as tx:
            row = await tx.fetchone(
                "SELECT state_id FROM notifications WHERE run_id = ? AND status = ? AND state_id IS NOT NULL"
                " AND received_at >= COALESCE((SELECT MAX(t.at) FROM run_transitions t"
                " WHERE t.run_id = ? AND t.from_status = 'PENDING'), 0)"
                " ORDER BY received_at DESC LIMIT 1",
                (run_id, provider_status, run_id),
            )
        return str(row["state_id"]) if row else None

    async def orphan_runs(self, *, provider: str | None, limit: int) -> list[OrphanRun]:
        """Provider runs seen only in notifications, the most recently heard from first."""
        where, params = ("AND provider = ?", [provider]) if provider else ("", [])
        async with self.db.read() as tx:
            rows = await tx.fetchall(
                "SELECT provider, provider_run_id, COUNT(*) AS n, MIN(received_at) AS first_at,"
                " MAX(received_at) AS last_at FROM notifications WHERE run_id IS NULL "
                + where
                + " GROUP BY provider, provider_run_id ORDER BY last_at DESC, provider_run_id LIMIT ?",
                (*params, limit),
            )
            found = []
            for row in rows:
                last = await tx.fetchone(
                    "SELECT status, state_id FROM notifications WHERE provider = ? AND provider_run_id = ?"
                    " AND run_id IS NULL ORDER BY received_at DESC LIMIT 1",
                    (row["provider"], row["provider_run_id"]),
                )
                found.append(
                    OrphanRun(
                        provider=row["provider"],
                        provider_run_id=row["provider_run_id"],
                        notifications=int(row["n"]),
                        first_received_at=codec.need_dt(row["first_at"]),
                        last_received_at=codec.need_dt(row["last_at"]),
                        last_status=last["status"] if last else None,
                        last_state_id=last["state_id"] if last else None,
                    )
                )
        return found

    async def start_progress(self, run_id: str) -> dict[str, str]:
        async with self.db.read() as tx:
            row = await tx.fetchone("SELECT data FROM start_progress WHERE run_id = ?", (run_id,))
        return {str(k): str(v) for k, v in json.loads(row["data"]).items()} if row else {}

    async def save_start_progress(self, run_id: str, done: Mapping[str, str], now: datetime) -> None:
        async with self.db.write() as tx:
            await tx.execute(
                "INSERT INTO start_progress (run_id, data, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (run_id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
                (run_id, dumps(dict(done)), to_us(now)),
            )

    # reviews ------------------------------------------------------------------------------------

    async def get_review(self, review_id: str) -> Review | None:
        async with self.db.read() as tx:
            row = await tx.fetchone("SELECT * FROM reviews WHERE id = ?", (review_id,))
        return codec.review_from_row(row, self.payloads) if row else None

    async def list_reviews(
        self, *, state: str | None, flow: str | None, limit: int, before: str | None
    ) -> list[Review]:
        where, params = _where((("state", state), ("flow", flow)), before=before)
        async with self.db.read() as tx:
            rows = await tx.fetchall(f"SELECT * FROM reviews {where} ORDER BY id DESC LIMIT ?", (*params, limit))
        return [codec.review_from_row(row, self.payloads) for row in rows]

    async def decide_review(self, review: Review, decision: JSON, decided_by: str, now: datetime) -> Review | None:
        """Compare-and-set OPEN -> DECIDED and queue the resume in the same transaction (D9)."""
        async with self.db.write() as tx:
            count = await tx.execute(
                "UPDATE reviews SET state = 'DECIDED', decision = ?, decided_by = ?, decided_at = ?,"
                " last_error = NULL, updated_at = ?, version = version + 1"
                " WHERE id = ? AND state = 'OPEN' AND version = ?",
                (
                    self.payloads.seal("reviews", review.id, "decision", decision),
                    decided_by,
                    to_us(now),
                    to_us(now),
                    review.id,
                    review.version,
                ),
            )
            if count != 1:
                return None
            await self._upsert_job(tx, NewJob(kind=JobKind.RESUME_RUN, ref=review.id, due_at=now), now)
            row = await tx.fetchone("SELECT * FROM reviews WHERE id = ?", (review.id,))
        assert row is not None
        return codec.review_from_row(row, self.payloads)

    # deliveries ---------------------------------------------------------------------------------

    async def get_delivery(self, delivery_id: str) -> Delivery | None:
        async with self.db.read() as tx:
            row = await tx.fetchone("SELECT * FROM deliveries WHERE id = ?", (delivery_id,))
        return codec.delivery_from_row(row) if row else None

    async def list_deliveries(
        self,
        *,
        state: DeliveryState | None,
        run_id: str | None,
        sink: str | None,
        limit: int,
        before: str | None,
    ) -> list[Delivery]:
        where, params = _where(
            (("state", state.value if state else None), ("run_id", run_id), ("sink", sink)), before=before
        )
        async with self.db.read() as tx:
            rows = await tx.fetchall(f"SELECT * FROM deliveries {where} ORDER BY id DESC LIMIT ?", (*params, limit))
        return [codec.delivery_from_row(row) for row in rows]

    async def record_delivery_attempt(
        self, delivery: Delivery, job: Job, outcome: DeliveryOutcome, now: datetime, jobs: Sequence[NewJob] = ()
    ) -> bool:
        """Record one attempt's outcome with its ``delivery_attempts`` row and any follow-up jobs (alerts); fenced."""

        async def write(tx: Tx) -> bool:
            if outcome.state == DeliveryState.PENDING:
                assert outcome.next_at is not None
                if not await self._retry_job(tx, job, outcome.next_at, outcome.error or "", now):
                    return False
            elif outcome.state == DeliveryState.DEAD:
                if not await self._bury_job(tx, job, outcome.error or "", now):
                    return False
            elif not await self._finish_job(tx, job, now):
                return False
            await tx.execute(
                "UPDATE deliveries SET state = ?, attempts = attempts + 1, next_attempt_at = ?, last_error = ?,"
                " last_status_code = ?, updated_at = ?, delivered_at = ? WHERE id = ?",
                (
                    outcome.state.value,
                    to_us(outcome.next_at),
                    outcome.error,
                    outcome.status_code,
                    to_us(now),
                    to_us(now) if outcome.state == DeliveryState.DELIVERED else None,
                    delivery.id,
                ),
            )
            if outcome.attempt is not None:
                await operations_sql.insert_attempt(tx, outcome.attempt)
            if outcome.state == DeliveryState.DELIVERED:
                await operations_sql.clear_sink_failing(tx, delivery.sink)
            for job_ in jobs:
                await self._upsert_job(tx, job_, now)
            return True

        return await self.db.transact(write)

    async def requeue_delivery(self, delivery_id: str, now: datetime) -> Delivery | None:
        """Send a delivery again with the same delivery id (replay)."""
        async with self.db.write() as tx:
            count = await tx.execute(
                "UPDATE deliveries SET state = 'PENDING', next_attempt_at = ?, updated_at = ? WHERE id = ?",
                (to_us(now), to_us(now), delivery_id),
            )
            if not count:
                return None
            await self._upsert_job(tx, NewJob(kind=JobKind.DELIVER, ref=delivery_id, due_at=now), now)
            row = await tx.fetchone("SELECT * FROM deliveries WHERE id = ?", (delivery_id,))
        return codec.delivery_from_row(row) if row else None

    async def replay_deliveries(self, query: ReplayQuery, now: datetime) -> list[Delivery]:
        """Bulk replay (D10): matching deliveries go back to PENDING with the same id, each with a deliver job."""
        clauses: list[str] = ["state = ?"]
        params: list[Any] = [query.state.value]
        for clause, value in (
            ("sink = ?", query.sink),
            ("created_at >= ?", to_us(query.created_after)),
            ("created_at < ?", to_us(query.created_before)),
        ):
            if value is not None:
                clauses.append(clause)
                params.append(value)
        async with self.db.write() as tx:
            rows = await tx.fetchall(
                f"SELECT id FROM deliveries WHERE {' AND '.join(clauses)} ORDER BY id LIMIT ?", (*params, query.limit)
            )
            ids = [row["id"] for row in rows]
            for delivery_id in ids:
                await tx.execute(
                    "UPDATE deliveries SET state = 'PENDING', next_attempt_at = ?, updated_at = ? WHERE id = ?",
                    (to_us(now), to_us(now), delivery_id),
                )
                await self._upsert_job(tx, NewJob(kind=JobKind.DELIVER, ref=delivery_id, due_at=now), now)
            marks = ", ".join("?" * len(ids))
            found = await tx.fetchall(f"SELECT * FROM deliveries WHERE id IN ({marks}) ORDER BY id", ids) if ids else []
        return [codec.delivery_from_row(row) for row in found]

    # jobs ---------------------------------------------------------------------------------------

    async def enqueue(self, job: NewJob, now: datetime) -> None:
        await self.db.transact(lambda tx: self._upsert_job(tx, job, now))

    async def _upsert_job(self, tx: Tx, job: NewJob, now: datetime, *, sql: str = _UPSERT_JOB) -> None:
        await tx.execute(sql, self._job_params(job, now))
        if self.sql.notify is not None:
            await tx.execute(self.sql.notify)

    @staticmethod
    def _job_params(job: NewJob, now: datetime) -> tuple[Any, ...]:
        return (job.kind.value, job.ref, to_us(job.due_at), dumps(job.data or {}), to_us(now), to_us(now))

    async def _lock(self, tx: Tx, key: str) -> None:
        """Serialise writers on ``key`` until commit (a no-op where all writers are serialised already)."""
        if self.sql.lock is not None:
            await tx.execute(self.sql.lock, (key,))

    async def claim_jobs(self, owner: str, now: datetime, lease_seconds: float, limit: int) -> list[Job]:
        """Lease up to ``limit`` due jobs; each claim bumps the fencing token."""
        now_us = to_us(now)
        expires = to_us(now + timedelta(seconds=lease_seconds))

        async def write(tx: Tx) -> list[Row]:
            starts, later = [
                await tx.fetchall(_CLAIMABLE.format(lane=lane) + self.sql.claim_suffix, (now_us, now_us, limit))
                for lane in ("kind = 'start_run'", "kind <> 'start_run'")
            ]
            rows = fair_share(starts, later, limit)
            if not rows:
                return []
            ids = [row["id"] for row in rows]
            marks = ", ".join("?" * len(ids))
            await tx.execute(
                f"UPDATE jobs SET state = 'running', lease_owner = ?, lease_expires_at = ?, fence = fence + 1,"
                f" attempts = attempts + 1, rerun = 0, updated_at = ? WHERE id IN ({marks})",
                (owner, expires, now_us, *ids),
            )
            return await tx.fetchall(f"SELECT * FROM jobs WHERE id IN ({marks}) ORDER BY due_at", ids)

        return [codec.job_from_row(row) for row in await self.db.transact(write)]

    async def finish_job(self, job: Job, now: datetime) -> bool:
        return await self.db.transact(lambda tx: self._finish_job(tx, job, now))

    async def _finish_job(self, tx: Tx, job: Job, now: datetime) -> bool:
        """Delete a done job, or queue it again when more work arrived while it ran; fenced.

        Each statement re-checks ``rerun`` under the row lock, so work queued concurrently is never lost."""
        if await tx.execute("DELETE FROM jobs WHERE id = ? AND fence = ? AND rerun = 0", (job.id, job.fence)):
            return True
        count = await tx.execute(
            "UPDATE jobs SET state = 'queued', rerun = 0, attempts = 0, due_at = ?, lease_owner = NULL,"
            " lease_expires_at = NULL, updated_at = ? WHERE id = ? AND fence = ? AND rerun = 1",
            (to_us(now), to_us(now), job.id, job.fence),
        )
        return count == 1

    async def retry_job(self, job: Job, due_at: datetime, error: str, now: datetime) -> bool:
        return await self.db.transact(lambda tx: self._retry_job(tx, job, due_at, error, now))

    async def _retry_job(self, tx: Tx, job: Job, due_at: datetime, error: str, now: datetime) -> bool:
        count = await tx.execute(
            "UPDATE jobs SET state = 'queued', due_at = ?, last_error = ?, lease_owner = NULL,"
            " lease_expires_at = NULL, updated_at = ? WHERE id = ? AND fence = ?",
            (to_us(due_at), error[:500], to_us(now), job.id, job.fence),
        )
        return count == 1

    async def postpone_job(self, job: Job, due_at: datetime, reason: str, now: datetime) -> bool:
        """Queue the job again for later; this claim does not count as an attempt (circuit breaker, S7)."""
        async with self.db.write() as tx:
            count: int = await tx.execute(
                "UPDATE jobs SET state = 'queued', due_at = ?, attempts = CASE WHEN attempts > 0 THEN attempts - 1"
                " ELSE 0 END, last_error = ?,"
                " lease_owner = NULL, lease_expires_at = NULL, updated_at = ? WHERE id = ? AND fence = ?",
                (to_us(due_at), reason[:500], to_us(now), job.id, job.fence),
            )
        return count == 1

    async def release_jobs(self, jobs: Sequence[Job], now: datetime) -> int:
        """Give back the leases of jobs this worker will not finish (it is shutting down): due at once, and the
        claim does not count as an attempt. Fenced: a job another worker has claimed since is left alone."""

        async def write(tx: Tx) -> int:
            released = 0
            for job in jobs:
                released += await tx.execute(
                    "UPDATE jobs SET state = 'queued', due_at = ?, attempts = CASE WHEN attempts > 0 THEN attempts - 1"
                    " ELSE 0 END, lease_owner = NULL, lease_expires_at = NULL, updated_at = ?"
                    " WHERE id = ? AND fence = ? AND state = 'running'",
                    (to_us(now), to_us(now), job.id, job.fence),
                )
            return released

        return await self.db.transact(write)

    async def bury_job(self, job: Job, error: str, now: datetime, jobs: Sequence[NewJob] = ()) -> bool:
        """Bury the job (fenced) and queue ``jobs`` (its alert) in the same transaction: only when it was buried."""

        async def write(tx: Tx) -> bool:
            if not await self._bury_job(tx, job, error, now):
                return False
            for job_ in jobs:
                await self._upsert_job(tx, job_, now)
            return True

        return await self.db.transact(write)

    async def _bury_job(self, tx: Tx, job: Job, error: str, now: datetime) -> bool:
        count = await tx.execute(
            "UPDATE jobs SET state = 'dead', last_error = ?, lease_owner = NULL, lease_expires_at = NULL,"
            " updated_at = ? WHERE id = ? AND fence = ?",
            (error[:500], to_us(now), job.id, job.fence),
        )
        return count == 1

    async def next_due(self) -> datetime | None:
        async with self.db.read() as tx:
            row = await tx.fetchone(
                "SELECT MIN(CASE WHEN state = 'queued' THEN due_at ELSE lease_expires_at END) AS due FROM jobs"
                " WHERE state IN ('queued', 'running')"
            )
        return codec.from_us(row["due"]) if row and row["due"] is not None else None

    async def list_jobs(
        self, *, state: JobState | None = None, kind: JobKind | None = None, limit: int = 100
    ) -> list[Job]:
        where, params = _where((("state", state.value if state else None), ("kind", kind.value if kind else None)))
        async with self.db.read() as tx:
            rows = await tx.fetchall(f"SELECT * FROM jobs {where} ORDER BY id LIMIT ?", (*params, limit))
        return [codec.job_from_row(row) for row in rows]

    async def stats(self) -> dict[str, Any]:
        async with self.db.read() as tx:
            runs = await tx.fetchall("SELECT status, COUNT(*) AS n FROM runs GROUP BY status")
            jobs = await tx.fetchall("SELECT kind, state, COUNT(*) AS n FROM jobs GROUP BY kind, state")
            reviews = await tx.fetchall("SELECT state, COUNT(*) AS n FROM reviews GROUP BY state")
            deliveries = await tx.fetchall("SELECT state, COUNT(*) AS n FROM deliveries GROUP BY state")
        return {
            "runs": {r["status"]: r["n"] for r in runs},
            "jobs": {f"{r['kind']}:{r['state']}": r["n"] for r in jobs},
            "reviews": {r["state"]: r["n"] for r in reviews},
            "deliveries": {r["state"]: r["n"] for r in deliveries},
        }

    # reconciler and stuck runs ------------------------------------------------------------------

    async def quiet_runs(
        self, *, statuses: Sequence[RunStatus], before: datetime, providers: Sequence[str] | None, limit: int
    ) -> list[Run]:
        """Started runs in ``statuses`` with no news since ``before`` and no fetch queued or running."""
        if not statuses or (providers is not None and not providers):
            return []
        clauses = [
            f"status IN ({', '.join('?' * len(statuses))})",
            "provider_run_id IS NOT NULL",
            "COALESCE(last_news_at, updated_at) < ?",
            "NOT EXISTS (SELECT 1 FROM jobs j WHERE j.kind = 'fetch_run' AND j.ref = runs.id"
            " AND j.state IN ('queued', 'running'))",
        ]
        params: list[Any] = [s.value for s in statuses] + [to_us(before)]
        if providers is not None:
            clauses.append(f"provider IN ({', '.join('?' * len(providers))})")
            params.extend(providers)
        return await self._runs_where(clauses, params, "COALESCE(last_news_at, updated_at)", limit)

    async def pending_without_review(self, limit: int) -> list[Run]:
        """PENDING runs with no OPEN or DECIDED review and no review touched since the run last paused
        (a review resumed, expired or closed after the pause means the pause was handled)."""
        clauses = [
            "status = 'PENDING'",
            "NOT EXISTS (SELECT 1 FROM reviews v WHERE v.run_id = runs.id AND (v.state IN ('OPEN', 'DECIDED')"
            " OR v.updated_at >= (SELECT MAX(t.at) FROM run_transitions t"
            " WHERE t.run_id = runs.id AND t.to_status = 'PENDING')))",
        ]
        return await self._runs_where(clauses, [], "id", limit)

    async def finished_without_deliveries(
        self, *, statuses: Sequence[RunStatus], flows: Sequence[str] | None, limit: int
    ) -> list[Run]:
        """Runs finished in ``statuses`` (of ``flows``; None = any) that have no delivery at all."""
        if not statuses or (flows is not None and not flows):
            return []
        clauses = [
            f"status IN ({', '.join('?' * len(statuses))})",
            "NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.run_id = runs.id)",
        ]
        params: list[Any] = [s.value for s in statuses]
        if flows is not None:
            clauses.append(f"flow IN ({', '.join('?' * len(flows))})")
            params.extend(flows)
        return await self._runs_where(clauses, params, "id", limit)

    async def queued_without_start(self, limit: int) -> list[Run]:
        """QUEUED runs whose start job is gone (it is written with the run, so this is damage)."""
        clauses = [
            "status = 'QUEUED'",
            "NOT EXISTS (SELECT 1 FROM jobs j WHERE j.kind = 'start_run' AND j.ref = runs.id"
            " AND j.state IN ('queued', 'running'))",
        ]
        return await self._runs_where(clauses, [], "id", limit)

    async def held_starts(self, limit: int) -> list[Run]:
        """Runs HELD after an ambiguous start: an operator adopts, retries or abandons them."""
        return await self._runs_where(["status = 'HELD'"], [], "id", limit)

    async def decided_without_resume(self, limit: int) -> list[tuple[Run, str]]:
        """(run, review id) for DECIDED reviews with no resume job queued or running. The job is written with
        the decision and finished with the review's next state, so this is owed work that nothing will do."""
        return await self._runs_owing(
            "SELECT v.run_id, v.id AS owed FROM reviews v WHERE v.state = 'DECIDED' AND NOT EXISTS"
            " (SELECT 1 FROM jobs j WHERE j.kind = 'resume_run' AND j.ref = v.id AND j.state IN ('queued', 'running'))",
            limit,
        )

    async def pending_deliveries_without_job(self, limit: int) -> list[tuple[Run, str]]:
        """(run, delivery id) for PENDING deliveries with no deliver job queued or running: owed, never sent."""
        return await self._runs_owing(
            "SELECT d.run_id, d.id AS owed FROM deliveries d WHERE d.state = 'PENDING' AND NOT EXISTS"
            " (SELECT 1 FROM jobs j WHERE j.kind = 'deliver' AND j.ref = d.id AND j.state IN ('queued', 'running'))",
            limit,
        )

    async def _runs_owing(self, owed_sql: str, limit: int) -> list[tuple[Run, str]]:
        columns = ", ".join(f"runs.{name.strip()}" for name in _RUN_COLUMNS.split(","))
        async with self.db.read() as tx:
            rows = await tx.fetchall(
                f"SELECT {columns}, o.owed AS owed FROM ({owed_sql}) o JOIN runs ON runs.id = o.run_id"
                " ORDER BY o.owed LIMIT ?",
                (limit,),
            )
        return [(codec.run_from_row(row, self.payloads), row["owed"]) for row in rows]

    async def _runs_where(self, clauses: Sequence[str], params: Sequence[Any], order: str, limit: int) -> list[Run]:
        async with self.db.read() as tx:
            rows = await tx.fetchall(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE {' AND '.join(clauses)} ORDER BY {order} LIMIT ?",
                (*params, limit),
            )
        return [codec.run_from_row(row, self.payloads) for row in rows]


class _Lost(Exception):
    """The run's version moved underneath us; the transaction is rolled back."""


def _event_record(row: Any) -> EventRecord:
    return EventRecord(
        id=row["id"],
        source=row["source"],
        ce_id=row["ce_id"],
        received_at=codec.need_dt(row["received_at"]),
        response=json.loads(row["response"]),
    )


def _where(filters: Sequence[tuple[str, object]], *, before: str | None = None) -> tuple[str, list[object]]:
    """``WHERE column = ? AND ...`` for the filters that are set, plus the ``id < before`` page cursor."""
    clauses = [f"{column} = ?" for column, value in filters if value is not None]
    params: list[object] = [value for _, value in filters if value is not None]
    if before:
        clauses.append("id < ?")
        params.append(before)
    return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), params

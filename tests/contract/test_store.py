"""The store against a real database, each test on SQLite and PostgreSQL (the tests that take ``tmp_path`` are
SQLite's own): migrations, T8 pragmas, idempotent events, leased and
fenced jobs, compare-and-set decisions, all-or-nothing run changes, notifications, concurrent writers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.domain.model import (
    CloudEvent,
    Delivery,
    DeliveryState,
    JobKind,
    JobState,
    Notification,
    PendingInput,
    Review,
    ReviewState,
    Run,
    RunStatus,
    Transition,
)
from gateway.domain.ports import EventRecord, NewJob, NewRun, RunChange, RunFilter
from gateway.store import open_store
from gateway.store.operations_sql import OperationsStore
from gateway.store.sqlstore import SqlStore

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LEASE = 30.0


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[SqlStore]:
    """A migrated store on each backend: SQLite in ``tmp_path``, PostgreSQL (own schema) where configured."""
    opened = await open_store(store_url)
    await opened.migrate()
    yield opened
    await opened.aclose()


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def event(ce_id: str = "e-1", source: str = "/ehr") -> CloudEvent:
    return CloudEvent(id=ce_id, source=source, type="t", data={"patient": "P-1"})


def make_run(run_id: str, event_id: str, **changes: object) -> Run:
    run = Run(
        id=run_id,
        event_id=event_id,
        route="r",
        flow="f",
        provider="sohar",
        template="tpl",
        status=RunStatus.QUEUED,
        idempotency_key=f"key-{run_id}",
        created_at=T0,
        updated_at=T0,
        input={"patient": "P-1"},
    )
    return replace(run, **changes)  # type: ignore[arg-type]


async def seed(store: SqlStore, run_id: str = "run_1", event_id: str = "evt_1", ce_id: str = "e-1") -> Run:
    """One event with one queued run (and its start job)."""
    run = make_run(run_id, event_id)
    record = EventRecord(id=event_id, source="demo", ce_id=ce_id, received_at=T0, response={"event_id": event_id})
    await store.insert_event(record, event(ce_id), [NewRun(run=run, job_data={})])
    return run


async def count(store: SqlStore, table: str) -> int:
    async with store.db.read() as tx:
        row = await tx.fetchone(f"SELECT COUNT(*) AS n FROM {table}")
    assert row is not None
    return int(row["n"])


# migrations and pragmas ---------------------------------------------------------------------------


async def test_migrations_are_idempotent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    first = await open_store(url)
    try:
        assert await first.migrate() >= 1
        assert await first.migrate() == 0
        assert (await first.check()) == {"store": "ok", "pending_migrations": []}
    finally:
        await first.aclose()
    again = await open_store(url)
    try:
        assert await again.migrate() == 0
    finally:
        await again.aclose()


async def test_a_fresh_store_reports_pending_migrations(tmp_path: Path) -> None:
    fresh = await open_store(f"sqlite:///{tmp_path / 'fresh.db'}")
    try:
        assert (await fresh.check())["pending_migrations"] != []
    finally:
        await fresh.aclose()


async def test_sqlite_pragmas_read_back(tmp_path: Path) -> None:
    """T8: WAL, synchronous=FULL, a busy timeout and foreign keys, on the writer and the reader."""
    opened = await open_store(f"sqlite:///{tmp_path / 'p.db'}", busy_timeout_ms=4321)
    try:
        pragmas = await opened.db.pragmas()  # type: ignore[attr-defined]
        assert pragmas == {"journal_mode": "wal", "synchronous": 2, "busy_timeout": 4321, "foreign_keys": 1}
        async with opened.db.read() as tx:
            assert (await tx.fetchone("PRAGMA synchronous"))[0] == 2  # type: ignore[index]
            assert (await tx.fetchone("PRAGMA busy_timeout"))[0] == 4321  # type: ignore[index]
            assert (await tx.fetchone("PRAGMA foreign_keys"))[0] == 1  # type: ignore[index]
    finally:
        await opened.aclose()


# events -------------------------------------------------------------------------------------------


async def test_event_insert_is_idempotent_on_source_ce_source_and_id(store: SqlStore) -> None:
    await seed(store)
    again = EventRecord(id="evt_2", source="demo", ce_id="e-1", received_at=at(5), response={"event_id": "evt_2"})
    stored = await store.insert_event(again, event("e-1"), [NewRun(run=make_run("run_2", "evt_2"), job_data={})])
    assert stored.id == "evt_1"
    assert stored.response == {"event_id": "evt_1"}
    assert await count(store, "events") == 1
    assert await count(store, "runs") == 1
    assert [j.ref for j in await store.list_jobs()] == ["run_1"]
    found = await store.find_event("demo", "/ehr", "e-1")
    assert found is not None and found.id == "evt_1"


async def test_same_id_from_another_ce_source_or_gateway_source_is_a_new_event(store: SqlStore) -> None:
    await seed(store)
    other_ce_source = EventRecord(id="evt_2", source="demo", ce_id="e-1", received_at=T0, response={})
    assert (await store.insert_event(other_ce_source, event("e-1", source="/lab"), [])).id == "evt_2"
    other_source = EventRecord(id="evt_3", source="other", ce_id="e-1", received_at=T0, response={})
    assert (await store.insert_event(other_source, event("e-1"), [])).id == "evt_3"
    assert await count(store, "events") == 3


async def test_event_body_round_trips(store: SqlStore) -> None:
    await seed(store)
    assert await store.event_body("evt_1") == event("e-1")
    assert await store.event_body("evt_missing") is None


# jobs: leases and fencing -------------------------------------------------------------------------


async def test_claim_leases_and_fences(store: SqlStore) -> None:
    await seed(store)
    [first] = await store.claim_jobs("worker-a", T0, LEASE, 10)
    assert (first.kind, first.ref, first.state, first.fence, first.attempts) == (
        JobKind.START_RUN,
        "run_1",
        JobState.RUNNING,
        1,
        1,
    )
    assert first.lease_owner == "worker-a" and first.lease_expires_at == at(LEASE)
    assert await store.claim_jobs("worker-b", at(LEASE - 1), LEASE, 10) == []  # still leased

    [second] = await store.claim_jobs("worker-b", at(LEASE + 1), LEASE, 10)  # the lease ran out
    assert second.id == first.id and second.fence == 2 and second.attempts == 2
    assert second.lease_owner == "worker-b"

    # The stale holder can no longer finish, retry or bury the job.
    assert not await store.finish_job(first, at(LEASE + 2))
    assert not await store.retry_job(first, at(100), "late", at(LEASE + 2))
    assert not await store.bury_job(first, "late", at(LEASE + 2))
    stale_change = RunChange(run=None, finish_job=first, jobs=[NewJob(kind=JobKind.DELIVER, ref="x", due_at=T0)])
    assert not await store.apply_run_change(stale_change, at(LEASE + 2))
    assert [(j.ref, j.fence) for j in await store.list_jobs()] == [("run_1", 2)]

    assert await store.finish_job(second, at(LEASE + 3))
    assert await store.list_jobs() == []


async def test_retry_and_bury(store: SqlStore) -> None:
    await seed(store)
    [job] = await store.claim_jobs("w", T0, LEASE, 10)
    assert await store.retry_job(job, at(60), "provider_unavailable status=503", at(1))
    [queued] = await store.list_jobs()
    assert (queued.state, queued.due_at, queued.last_error, queued.lease_owner) == (
        JobState.QUEUED,
        at(60),
        "provider_unavailable status=503",
        None,
    )
    assert await store.claim_jobs("w", at(59), LEASE, 10) == []  # not due yet
    assert await store.next_due() == at(60)
    [again] = await store.claim_jobs("w", at(60), LEASE, 10)
    assert again.attempts == 2
    assert await store.bury_job(again, "gave up", at(61))
    [dead] = await store.list_jobs(state=JobState.DEAD)
    assert dead.last_error == "gave up"
    assert await store.claim_jobs("w", at(10_000), LEASE, 10) == []
    assert await store.next_due() is None


async def test_claims_respect_the_limit_and_due_order(store: SqlStore) -> None:
    for i in range(5):
        await store.enqueue(NewJob(kind=JobKind.FETCH_RUN, ref=f"r{i}", due_at=at(10 - i)), T0)
    claimed = await store.claim_jobs("w", at(20), LEASE, 3)
    assert [j.ref for j in claimed] == ["r4", "r3", "r2"]


async def test_fetch_jobs_coalesce_and_rerun_when_news_arrives_while_running(store: SqlStore) -> None:
    fetch = NewJob(kind=JobKind.FETCH_RUN, ref="run_1", due_at=T0, data={"state_hint": "a"})
    await store.enqueue(fetch, T0)
    await store.enqueue(replace(fetch, data={"state_hint": "b"}), T0)
    [queued] = await store.list_jobs()
    assert queued.data == {"state_hint": "b"}

    [running] = await store.claim_jobs("w", T0, LEASE, 10)
    await store.enqueue(replace(fetch, data={"state_hint": "c"}, due_at=at(1)), at(1))  # news while it runs
    [still] = await store.list_jobs()
    assert still.state == JobState.RUNNING and still.id == running.id
    assert await store.claim_jobs("w2", at(2), LEASE, 10) == []  # no second copy runs in parallel

    assert await store.finish_job(running, at(3))
    [rerun] = await store.list_jobs()
    assert rerun.state == JobState.QUEUED and rerun.attempts == 0 and rerun.data == {"state_hint": "c"}
    [claimed] = await store.claim_jobs("w", at(3), LEASE, 10)
    assert await store.finish_job(claimed, at(4))
    assert await store.list_jobs() == []


async def test_a_done_or_dead_job_starts_fresh_when_enqueued_again(store: SqlStore) -> None:
    await store.enqueue(NewJob(kind=JobKind.FETCH_RUN, ref="run_1", due_at=T0), T0)
    [job] = await store.claim_jobs("w", T0, LEASE, 10)
    assert await store.bury_job(job, "x", T0)
    await store.enqueue(NewJob(kind=JobKind.FETCH_RUN, ref="run_1", due_at=at(5)), at(5))
    [fresh] = await store.list_jobs()
    assert (fresh.state, fresh.attempts, fresh.due_at) == (JobState.QUEUED, 0, at(5))


# run changes --------------------------------------------------------------------------------------


def review_for(run: Run, review_id: str = "rev_1") -> Review:
    return Review(
        id=review_id,
        run_id=run.id,
        flow=run.flow,
        state=ReviewState.OPEN,
        request=PendingInput(key="await", options=["approve", "deny"]),
        created_at=T0,
        updated_at=T0,
        gathered={"coverage": True},
    )


def to_pending(run: Run) -> tuple[Run, Transition]:
    moved = replace(
        run, status=RunStatus.PENDING, provider_run_id="prv_1", pending=PendingInput(key="await"), updated_at=at(1)
    )
    return moved, Transition(run_id=run.id, at=at(1), from_status=run.status, to_status=RunStatus.PENDING, cause="t")


async def test_apply_run_change_writes_everything(store: SqlStore) -> None:
    run = await seed(store)
    moved, step = to_pending(run)
    change = RunChange(
        run=moved,
        expected_version=0,
        transitions=[step],
        open_review=review_for(run),
        jobs=[NewJob(kind=JobKind.FETCH_RUN, ref=run.id, due_at=at(30))],
    )
    assert await store.apply_run_change(change, at(1))
    stored = await store.get_run(run.id)
    assert stored is not None
    assert (stored.status, stored.version, stored.provider_run_id, stored.pending) == (
        RunStatus.PENDING,
        1,
        "prv_1",
        PendingInput(key="await"),
    )
    assert await store.get_run_by_provider_id("sohar", "prv_1") == stored
    assert [t.to_status for t in await store.timeline(run.id)] == [RunStatus.PENDING]
    review = await store.get_review("rev_1")
    assert review is not None and review.state == ReviewState.OPEN and review.gathered == {"coverage": True}
    assert {j.kind for j in await store.list_jobs()} == {JobKind.START_RUN, JobKind.FETCH_RUN}


async def test_apply_run_change_is_all_or_nothing_on_a_version_conflict(store: SqlStore) -> None:
    run = await seed(store)
    moved, step = to_pending(run)
    delivery = Delivery(id="dlv_1", run_id=run.id, sink="s", state=DeliveryState.PENDING, created_at=T0, updated_at=T0)
    change = RunChange(
        run=moved,
        expected_version=7,  # someone else moved the run
        transitions=[step],
        open_review=review_for(run),
        deliveries=[delivery],
        jobs=[NewJob(kind=JobKind.FETCH_RUN, ref=run.id, due_at=at(30))],
    )
    assert not await store.apply_run_change(change, at(1))
    assert await store.get_run(run.id) == run
    assert await store.timeline(run.id) == []
    assert await count(store, "reviews") == 0
    assert await count(store, "deliveries") == 0
    assert [j.kind for j in await store.list_jobs()] == [JobKind.START_RUN]


async def test_deliveries_are_created_once_per_run_and_sink_and_queued(store: SqlStore) -> None:
    run = await seed(store)
    delivery = Delivery(id="dlv_1", run_id=run.id, sink="s", state=DeliveryState.PENDING, created_at=T0, updated_at=T0)
    assert await store.apply_run_change(RunChange(run=None, deliveries=[delivery]), T0)
    assert await store.apply_run_change(RunChange(run=None, deliveries=[replace(delivery, id="dlv_2")]), T0)
    assert [d.id for d in await store.list_deliveries(state=None, run_id=None, sink=None, limit=10, before=None)] == [
        "dlv_1"
    ]
    assert [j.ref for j in await store.list_jobs(kind=JobKind.DELIVER)] == ["dlv_1"]


# reviews ------------------------------------------------------------------------------------------


async def open_review(store: SqlStore) -> Review:
    run = await seed(store)
    moved, step = to_pending(run)
    assert await store.apply_run_change(
        RunChange(run=moved, expected_version=0, transitions=[step], open_review=review_for(run)), at(1)
    )
    review = await store.get_review("rev_1")
    assert review is not None
    return review


async def test_decide_review_is_compare_and_set(store: SqlStore) -> None:
    review = await open_review(store)
    decided = await store.decide_review(review, {"decision": "approve"}, "alice", at(2))
    assert decided is not None
    assert (decided.state, decided.decision, decided.decided_by, decided.decided_at, decided.version) == (
        ReviewState.DECIDED,
        {"decision": "approve"},
        "alice",
        at(2),
        1,
    )
    assert await store.decide_review(review, {"decision": "deny"}, "bob", at(3)) is None
    fresh = await store.get_review(review.id)
    assert await store.decide_review(fresh, {"decision": "deny"}, "bob", at(3)) is None  # type: ignore[arg-type]
    stored = await store.get_review(review.id)
    assert stored is not None and stored.decision == {"decision": "approve"} and stored.decided_by == "alice"
    assert [j.ref for j in await store.list_jobs(kind=JobKind.RESUME_RUN)] == [review.id]


async def test_concurrent_decisions_have_one_winner(store: SqlStore) -> None:
    review = await open_review(store)
    results = await asyncio.gather(
        *(store.decide_review(review, {"decision": "approve"}, f"op{i}", at(2)) for i in range(10))
    )
    assert sum(r is not None for r in results) == 1
    assert len(await store.list_jobs(kind=JobKind.RESUME_RUN)) == 1


async def test_one_open_review_per_run(store: SqlStore) -> None:
    await open_review(store)
    run = await store.get_run("run_1")
    assert run is not None
    with pytest.raises(Exception, match=r"(?i)unique"):
        await store.apply_run_change(RunChange(run=None, open_review=review_for(run, "rev_2")), at(3))


async def test_list_reviews_filters_and_pages(store: SqlStore) -> None:
    await open_review(store)
    assert [r.id for r in await store.list_reviews(state="OPEN", flow=None, limit=10, before=None)] == ["rev_1"]
    assert await store.list_reviews(state="DECIDED", flow=None, limit=10, before=None) == []
    assert await store.list_reviews(state=None, flow="other", limit=10, before=None) == []
    assert await store.list_reviews(state=None, flow=None, limit=10, before="rev_1") == []


# notifications ------------------------------------------------------------------------------------


def notification(
    message_id: str, provider_run_id: str = "prv_1", state_id: str | None = "await", status: str = "PENDING"
) -> Notification:
    return Notification(
        provider="sohar",
        message_id=message_id,
        provider_run_id=provider_run_id,
        status=status,
        state_id=state_id,
        event_type="flow.updated",
    )


async def test_notifications_are_deduplicated_on_the_message_id(store: SqlStore) -> None:
    run = await seed(store)
    moved, step = to_pending(run)
    assert await store.apply_run_change(RunChange(run=moved, expected_version=0, transitions=[step]), at(1))
    first = await store.record_notification(notification("msg_1"), at(2))
    assert (first.duplicate, first.run_id) == (False, run.id)
    again = await store.record_notification(notification("msg_1"), at(3 + 72 * 3600))  # D8: days later
    assert again.duplicate
    assert await count(store, "notifications") == 1
    [fetch] = await store.list_jobs(kind=JobKind.FETCH_RUN)
    assert (fetch.ref, fetch.data) == (run.id, {"status_hint": "PENDING"})
    assert await store.pause_state(run.id, "PENDING") == "await"


async def test_news_of_different_statuses_coalesced_into_one_fetch_leaves_it_no_status_to_skip_on(
    store: SqlStore,
) -> None:
    """A fetch may be skipped when its news only repeats the run's status; a later notification must never hide
    an earlier one's different status (a stale IN_PROGRESS after a PENDING would lose the pause)."""
    run = await seed(store)
    moved, step = to_pending(run)
    assert await store.apply_run_change(RunChange(run=moved, expected_version=0, transitions=[step]), at(1))
    await store.record_notification(notification("msg_1", status="IN_PROGRESS", state_id=None), at(2))
    await store.record_notification(notification("msg_2", status="IN_PROGRESS", state_id=None), at(3))
    [fetch] = await store.list_jobs(kind=JobKind.FETCH_RUN)
    assert fetch.data == {"status_hint": "IN_PROGRESS"}  # the same news twice: still skippable
    await store.record_notification(notification("msg_3", status="PENDING"), at(4))
    await store.record_notification(notification("msg_4", status="IN_PROGRESS", state_id=None), at(5))
    [fetch] = await store.list_jobs(kind=JobKind.FETCH_RUN)
    assert fetch.data == {}


async def test_an_early_notification_is_kept_and_attached_when_the_run_appears(store: SqlStore) -> None:
    run = await seed(store)
    early = await store.record_notification(notification("msg_1", state_id="s1"), T0)
    assert (early.duplicate, early.run_id) == (False, None)
    assert await store.record_notification(notification("msg_2", state_id="s2"), at(1)) is not None
    assert await store.list_jobs(kind=JobKind.FETCH_RUN) == []

    [start] = await store.claim_jobs("w", at(2), LEASE, 10)
    started = replace(run, status=RunStatus.CREATED, provider_run_id="prv_1", updated_at=at(2))
    change = RunChange(run=started, expected_version=0, finish_job=start, attach_orphans=True)
    assert await store.apply_run_change(change, at(2))

    [fetch] = await store.list_jobs(kind=JobKind.FETCH_RUN)
    assert fetch.ref == run.id
    assert await store.pause_state(run.id, "PENDING") == "s2"  # the latest state seen
    async with store.db.read() as tx:
        rows = await tx.fetchall("SELECT run_id FROM notifications")
    assert [r["run_id"] for r in rows] == [run.id, run.id]


# runs listing -------------------------------------------------------------------------------------


async def test_list_runs_filters_and_pages_newest_first(store: SqlStore) -> None:
    for i in range(5):
        await seed(store, run_id=f"run_{i}", event_id=f"evt_{i}", ce_id=f"e-{i}")
    page = await store.list_runs(RunFilter(limit=2))
    assert [r.id for r in page] == ["run_4", "run_3"]
    page = await store.list_runs(RunFilter(limit=2, before="run_3"))
    assert [r.id for r in page] == ["run_2", "run_1"]
    assert [r.id for r in await store.list_runs(RunFilter(event_id="evt_2"))] == ["run_2"]
    assert await store.list_runs(RunFilter(status=RunStatus.COMPLETE)) == []
    assert len(await store.list_runs(RunFilter(status=RunStatus.QUEUED, flow="f", route="r", provider="sohar"))) == 5


# concurrency ---------------------------------------------------------------------------------------


async def test_concurrent_writers_on_separate_connections_never_see_database_locked(tmp_path: Path) -> None:
    """T8: several connections (like several processes) write through BEGIN IMMEDIATE at once."""
    url = f"sqlite:///{tmp_path / 'c.db'}"
    stores = [await open_store(url) for _ in range(3)]
    try:
        await stores[0].migrate()

        async def write(store: SqlStore, worker: int) -> None:
            for i in range(40):
                await store.enqueue(NewJob(kind=JobKind.FETCH_RUN, ref=f"w{worker}-{i}", due_at=T0), T0)
                await store.claim_jobs(f"w{worker}", T0, LEASE, 2)

        await asyncio.gather(*(write(s, n) for n, s in enumerate(stores) for _ in range(2)))
        assert len(await stores[0].list_jobs(limit=1000)) == 3 * 40
    finally:
        for s in stores:
            await s.aclose()


# alerts ride in the transaction of the change they announce ----------------------------------------

ALERT = NewJob(kind=JobKind.ALERT, ref="alert_1", due_at=T0, data={"type": "job.buried"})
BROKEN_ALERT = NewJob(kind=JobKind.ALERT, ref="alert_2", due_at=T0, data={"type": object()})  # fails to encode


async def test_a_burial_and_its_alert_are_one_transaction(store: SqlStore) -> None:
    await store.enqueue(NewJob(kind=JobKind.FETCH_RUN, ref="run_1", due_at=T0), T0)
    [job] = await store.claim_jobs("w", T0, LEASE, 10)
    with pytest.raises(TypeError):
        await store.bury_job(job, "gave up", at(1), [BROKEN_ALERT])  # the alert cannot be stored ...
    [still] = await store.list_jobs()
    assert still.state == JobState.RUNNING  # ... so the job is not buried either: no change without its alert

    stale = replace(job, fence=job.fence + 1)
    assert not await store.bury_job(stale, "gave up", at(1), [ALERT])  # a lost lease buries nothing ...
    assert await store.list_jobs(kind=JobKind.ALERT) == []  # ... and announces nothing

    assert await store.bury_job(job, "gave up", at(1), [ALERT])
    [dead] = await store.list_jobs(state=JobState.DEAD)
    [alert] = await store.list_jobs(kind=JobKind.ALERT)
    assert dead.id == job.id and alert.ref == "alert_1" and alert.state == JobState.QUEUED


async def test_disabling_a_sink_and_its_alert_are_one_transaction_and_announced_once(store: SqlStore) -> None:
    ops = OperationsStore(store)
    with pytest.raises(TypeError):
        await ops.disable_sink("hook", "410 Gone", T0, [BROKEN_ALERT])
    assert (await ops.sink_state("hook")).disabled_at is None  # rolled back with its alert

    assert await ops.disable_sink("hook", "410 Gone", T0, [ALERT])
    assert not await ops.disable_sink("hook", "410 Gone", at(1), [replace(ALERT, ref="alert_3")])
    assert [job.ref for job in await store.list_jobs(kind=JobKind.ALERT)] == ["alert_1"]

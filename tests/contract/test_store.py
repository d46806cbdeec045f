"""The store contract (RELIABILITY.md T10): one suite, each test on SQLite and PostgreSQL through the ``store_url``
fixture (the few that take ``tmp_path`` are SQLite's own: a fresh file, T8 pragmas, concurrent writers).

Migrations, idempotent events, runs listed and paged, leased and fenced jobs (claim order, fair share of
starts, coalesced fetches, released leases), compare-and-set run changes written all or nothing, reviews decided
once, notifications kept once and attached late, pause points, deliveries once per sink, owed work, and alerts
written in the transaction they announce."""

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
from gateway.domain.ports import DeliveryOutcome, EventRecord, NewJob, NewRun, RunChange, RunFilter
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
    try:
        yield opened
    finally:
        await opened.aclose()


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def event(ce_id: str = "ce-evt_1", source: str = "/ehr") -> CloudEvent:
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
        input={"patient": "P-1", "bytes": "\u00e9\u00fc"},
    )
    return replace(run, **changes)  # type: ignore[arg-type]


async def seed(store: SqlStore, *run_ids: str, event_id: str = "evt_1") -> list[Run]:
    """One event (CloudEvent id ``ce-<event_id>``) with its queued runs, ``run_1`` unless named, and their start
    jobs."""
    runs = [make_run(run_id, event_id) for run_id in run_ids or ("run_1",)]
    ce_id = f"ce-{event_id}"
    record = EventRecord(id=event_id, source="demo", ce_id=ce_id, received_at=T0, response={"event_id": event_id})
    await store.insert_event(record, event(ce_id), [NewRun(run=run, job_data={"attempt": 0}) for run in runs])
    return runs


async def count(store: SqlStore, table: str) -> int:
    async with store.db.read() as tx:
        row = await tx.fetchone(f"SELECT COUNT(*) AS n FROM {table}")
    assert row is not None
    return int(row["n"])


# migrations and pragmas ---------------------------------------------------------------------------


async def test_migrations_are_idempotent(store_url: str) -> None:
    first = await open_store(store_url)
    try:
        assert await first.migrate() >= 1
        assert await first.migrate() == 0
        assert await first.check() == {"store": "ok", "pending_migrations": []}
    finally:
        await first.aclose()
    again = await open_store(store_url)
    try:
        assert await again.migrate() == 0
        assert await again.check() == {"store": "ok", "pending_migrations": []}
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


async def test_an_event_is_stored_once_with_its_runs_and_start_jobs(store: SqlStore) -> None:
    """Idempotent on (gateway source, CloudEvent source, id): a repeat returns the stored event and writes nothing."""
    await seed(store)
    other = EventRecord(
        id="evt_other", source="demo", ce_id="ce-evt_other", received_at=T0, response={"event_id": "evt_other"}
    )
    run_other = NewRun(run=make_run("run_other", "evt_other"), job_data={"attempt": 0})
    assert await store.insert_event(other, event("ce-evt_other"), [run_other]) == other

    again = EventRecord(id="evt_2", source="demo", ce_id="ce-evt_1", received_at=at(5), response={"event_id": "evt_2"})
    repeat = CloudEvent(id="ce-evt_1", source="/ehr", type="t.again", data={"patient": "P-2"})
    stored = await store.insert_event(again, repeat, [NewRun(run=make_run("run_2", "evt_2"), job_data={})])
    assert (stored.id, stored.response, stored.received_at) == ("evt_1", {"event_id": "evt_1"}, T0)
    assert await store.get_run("run_2") is None
    assert await count(store, "events") == 2
    assert await count(store, "runs") == 2
    assert await store.event_body("evt_1") == event("ce-evt_1")  # the repeat's body did not replace it
    found = await store.find_event("demo", "/ehr", "ce-evt_1")
    assert found is not None and found.id == "evt_1"
    jobs = await store.list_jobs()
    assert sorted(job.ref for job in jobs) == ["run_1", "run_other"]
    assert all((job.kind, job.state, job.data) == (JobKind.START_RUN, JobState.QUEUED, {"attempt": 0}) for job in jobs)


async def test_same_id_from_another_ce_source_or_gateway_source_is_a_new_event(store: SqlStore) -> None:
    await seed(store)
    other_ce_source = EventRecord(id="evt_2", source="demo", ce_id="ce-evt_1", received_at=T0, response={})
    assert (await store.insert_event(other_ce_source, event("ce-evt_1", source="/lab"), [])).id == "evt_2"
    other_source = EventRecord(id="evt_3", source="other", ce_id="ce-evt_1", received_at=T0, response={})
    assert (await store.insert_event(other_source, event("ce-evt_1"), [])).id == "evt_3"
    assert await count(store, "events") == 3


async def test_event_body_round_trips(store: SqlStore) -> None:
    await seed(store)
    assert await store.event_body("evt_1") == event("ce-evt_1")
    assert await store.event_body("evt_missing") is None


# runs listing -------------------------------------------------------------------------------------


async def test_runs_round_trip_and_list_filtered_and_paged_newest_first(store: SqlStore) -> None:
    await seed(store, "run_0", "run_1", event_id="evt_a")
    await seed(store, "run_2", event_id="evt_b")
    await seed(store, "run_3", "run_4", event_id="evt_c")
    assert await store.get_run("run_3") == make_run("run_3", "evt_c")  # non-ASCII input included
    assert [r.id for r in await store.list_runs(RunFilter(limit=2))] == ["run_4", "run_3"]
    assert [r.id for r in await store.list_runs(RunFilter(flow="f", limit=2, before="run_3"))] == ["run_2", "run_1"]
    assert [r.id for r in await store.list_runs(RunFilter(before="run_1"))] == ["run_0"]
    assert [r.id for r in await store.list_runs(RunFilter(event_id="evt_b"))] == ["run_2"]
    assert [r.id for r in await store.list_runs(RunFilter(event_id="evt_c"))] == ["run_4", "run_3"]
    assert await store.list_runs(RunFilter(status=RunStatus.COMPLETE)) == []
    assert len(await store.list_runs(RunFilter(status=RunStatus.QUEUED, flow="f", route="r", provider="sohar"))) == 5


# jobs: leases and fencing -------------------------------------------------------------------------


async def test_claim_leases_and_fences(store: SqlStore) -> None:
    [run] = await seed(store)
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
    assert second.id == first.id and second.fence == first.fence + 1 == 2 and second.attempts == 2
    assert second.lease_owner == "worker-b"

    # The stale holder can no longer finish, retry or bury the job, and its whole change is dropped.
    assert not await store.finish_job(first, at(LEASE + 2))
    assert not await store.retry_job(first, at(100), "late", at(LEASE + 2))
    assert not await store.bury_job(first, "late", at(LEASE + 2))
    moved = replace(run, status=RunStatus.CREATED, provider_run_id="prv_1", updated_at=at(LEASE + 2))
    stale_change = RunChange(run=moved, finish_job=first, jobs=[NewJob(kind=JobKind.DELIVER, ref="x", due_at=T0)])
    assert not await store.apply_run_change(stale_change, at(LEASE + 2))
    assert await store.get_run(run.id) == run
    assert [(j.ref, j.fence) for j in await store.list_jobs()] == [("run_1", 2)]

    # The holder of the lease finishes the job with its change.
    assert await store.apply_run_change(RunChange(run=moved, finish_job=second), at(LEASE + 3))
    assert await store.get_run(run.id) == replace(moved, version=1)
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


async def test_claims_respect_the_limit_and_due_order_and_skip_what_is_not_due_or_leased(store: SqlStore) -> None:
    for i in range(5):  # r4 is due first (at 6 s), r0 last (at 10 s)
        await store.enqueue(NewJob(kind=JobKind.FETCH_RUN, ref=f"r{i}", due_at=at(10 - i)), T0)
    assert await store.next_due() == at(6)
    claimed = await store.claim_jobs("w1", at(9), LEASE, 3)
    assert [j.ref for j in claimed] == ["r4", "r3", "r2"]  # r1 is due too, but over the limit
    assert all(j.state == JobState.RUNNING and j.lease_owner == "w1" and j.fence == 1 for j in claimed)
    assert all(j.lease_expires_at == at(9 + LEASE) for j in claimed)
    assert [j.ref for j in await store.claim_jobs("w2", at(9), LEASE, 10)] == ["r1"]  # not the leased, not r0
    assert await store.next_due() == at(10)  # running jobs are not due


async def test_a_burst_of_starts_does_not_hold_back_the_later_steps_of_runs_in_flight(store: SqlStore) -> None:
    """Issue 12 point 4: 40 starts due first, then 5 fetches; a claim of 8 takes the 5 fetches and 3 starts, and
    while later steps keep coming, starts still get a quarter of each claim."""
    for n in range(40):
        await store.enqueue(NewJob(kind=JobKind.START_RUN, ref=f"s{n:02d}", due_at=T0), T0)
    for n in range(5):
        await store.enqueue(NewJob(kind=JobKind.FETCH_RUN, ref=f"f{n}", due_at=at(1)), T0)

    first = await store.claim_jobs("w1", at(2), LEASE, 8)
    assert sorted(j.ref for j in first) == ["f0", "f1", "f2", "f3", "f4", "s00", "s01", "s02"]

    for n in range(20):
        await store.enqueue(NewJob(kind=JobKind.DELIVER, ref=f"d{n:02d}", due_at=at(1)), T0)
    second = await store.claim_jobs("w1", at(2), LEASE, 8)
    assert sorted(j.kind for j in second).count(JobKind.START_RUN) == 2
    assert sorted(j.ref for j in second if j.kind == JobKind.START_RUN) == ["s03", "s04"]


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
    assert (claimed.id, claimed.attempts, claimed.data) == (running.id, 1, {"state_hint": "c"})
    assert await store.finish_job(claimed, at(4))
    assert await store.list_jobs() == []


async def test_a_done_or_dead_job_starts_fresh_when_enqueued_again(store: SqlStore) -> None:
    await store.enqueue(NewJob(kind=JobKind.FETCH_RUN, ref="run_1", due_at=T0), T0)
    [job] = await store.claim_jobs("w", T0, LEASE, 10)
    assert await store.bury_job(job, "x", T0)
    await store.enqueue(NewJob(kind=JobKind.FETCH_RUN, ref="run_1", due_at=at(5)), at(5))
    [fresh] = await store.list_jobs()
    assert (fresh.state, fresh.attempts, fresh.due_at) == (JobState.QUEUED, 0, at(5))


async def test_released_leases_are_due_at_once_and_do_not_count_an_attempt(store: SqlStore) -> None:
    await seed(store)
    [job] = await store.claim_jobs("w1", T0, LEASE, 10)
    assert job.attempts == 1
    assert await store.release_jobs([job], at(1)) == 1
    assert await store.release_jobs([job], at(1)) == 0  # already released: fenced on state and fence
    [again] = await store.claim_jobs("w2", at(1), LEASE, 10)
    assert (again.id, again.attempts) == (job.id, 1)
    assert await store.release_jobs([job], at(1)) == 0  # the old claim's fence no longer holds


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


def pending_delivery(run: Run, delivery_id: str = "dlv_1") -> Delivery:
    return Delivery(
        id=delivery_id, run_id=run.id, sink="results", state=DeliveryState.PENDING, created_at=T0, updated_at=T0
    )


async def test_apply_run_change_writes_everything_and_is_compare_and_set_on_the_version(store: SqlStore) -> None:
    [run] = await seed(store)
    moved, step = to_pending(run)
    moved = replace(moved, output={"x": [1, 2]})
    change = RunChange(
        run=moved,
        expected_version=0,
        transitions=[step],
        open_review=review_for(run),
        jobs=[NewJob(kind=JobKind.FETCH_RUN, ref=run.id, due_at=at(30))],
    )
    assert await store.apply_run_change(change, at(1))
    assert not await store.apply_run_change(change, at(2))  # the same change again: version 0 is gone
    stored = await store.get_run(run.id)
    assert stored is not None
    assert (stored.status, stored.version, stored.provider_run_id, stored.pending, stored.output) == (
        RunStatus.PENDING,
        1,
        "prv_1",
        PendingInput(key="await"),
        {"x": [1, 2]},
    )
    assert stored == replace(moved, version=1)
    assert await store.get_run_by_provider_id("sohar", "prv_1") == stored
    assert await store.timeline(run.id) == [step]
    review = await store.get_review("rev_1")
    assert review is not None and review.state == ReviewState.OPEN and review.gathered == {"coverage": True}
    assert sorted((j.kind, j.ref) for j in await store.list_jobs()) == [
        (JobKind.FETCH_RUN, run.id),
        (JobKind.START_RUN, run.id),
    ]


async def test_apply_run_change_is_all_or_nothing_on_a_version_conflict(store: SqlStore) -> None:
    [run] = await seed(store)
    moved, step = to_pending(run)
    change = RunChange(
        run=moved,
        expected_version=7,  # someone else moved the run
        transitions=[step],
        open_review=review_for(run),
        deliveries=[pending_delivery(run)],
        jobs=[NewJob(kind=JobKind.FETCH_RUN, ref=run.id, due_at=at(30))],
    )
    assert not await store.apply_run_change(change, at(1))
    assert await store.get_run(run.id) == run
    assert await store.timeline(run.id) == []
    assert await count(store, "reviews") == 0
    assert await count(store, "deliveries") == 0
    assert [j.kind for j in await store.list_jobs()] == [JobKind.START_RUN]


# deliveries ---------------------------------------------------------------------------------------


async def test_deliveries_once_per_run_and_sink_queued_attempted_and_replayed(store: SqlStore) -> None:
    [run] = await seed(store)
    delivery = pending_delivery(run)
    done = replace(run, status=RunStatus.COMPLETE, finished_at=T0)
    twin = pending_delivery(run, "dlv_2")  # the same sink twice in one change ...
    assert await store.apply_run_change(RunChange(run=done, deliveries=[delivery, twin]), T0)
    late = pending_delivery(run, "dlv_3")  # ... and again in a later one
    assert await store.apply_run_change(RunChange(run=None, deliveries=[late]), T0)
    for run_id in (None, run.id):
        listed = await store.list_deliveries(state=None, run_id=run_id, sink=None, limit=10, before=None)
        assert [d.id for d in listed] == ["dlv_1"]
    assert [j.ref for j in await store.list_jobs(kind=JobKind.DELIVER)] == ["dlv_1"]

    [job] = [j for j in await store.claim_jobs("w1", T0, LEASE, 10) if j.kind == JobKind.DELIVER]
    assert job.ref == "dlv_1"
    delivered = DeliveryOutcome(state=DeliveryState.DELIVERED, status_code=200)
    assert await store.record_delivery_attempt(delivery, job, delivered, T0)
    sent = await store.get_delivery("dlv_1")
    assert sent is not None and sent.state == DeliveryState.DELIVERED and sent.attempts == 1 and sent.delivered_at == T0
    replay = await store.requeue_delivery("dlv_1", T0)
    assert replay is not None and replay.state == DeliveryState.PENDING and replay.id == "dlv_1"
    assert await store.requeue_delivery("dlv_missing", T0) is None
    stats = await store.stats()
    assert stats["deliveries"] == {"PENDING": 1} and stats["runs"] == {"COMPLETE": 1}
    assert stats["jobs"] == {"deliver:queued": 1, "start_run:running": 1}


# reviews ------------------------------------------------------------------------------------------


async def open_review(store: SqlStore) -> Review:
    """run_1 moved to PENDING (version 1) with review rev_1 opened; the review as written."""
    [run] = await seed(store)
    moved, step = to_pending(run)
    review = review_for(run)
    assert await store.apply_run_change(
        RunChange(run=moved, expected_version=0, transitions=[step], open_review=review), at(1)
    )
    return review


async def test_decide_review_is_compare_and_set_and_queues_one_resume(store: SqlStore) -> None:
    review = await open_review(store)
    assert await store.get_review(review.id) == review
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

    paused = await store.get_run(review.run_id)
    assert paused is not None and paused.version == 1
    resumed = replace(paused, status=RunStatus.IN_PROGRESS)
    assert await store.apply_run_change(RunChange(run=resumed, expected_version=1, close_reviews=True), at(4))
    closed = await store.get_review(review.id)
    assert closed is not None and closed.state == ReviewState.RESUMED


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


# owed work ----------------------------------------------------------------------------------------


async def test_a_decided_review_is_owed_a_resume_only_while_it_has_no_job(store: SqlStore) -> None:
    review = await open_review(store)
    assert await store.decided_without_resume(10) == []  # still OPEN
    assert await store.decide_review(review, {"decision": "approve"}, "op", at(2)) is not None
    assert await store.decided_without_resume(10) == []  # the resume job came with the decision
    [job] = await store.list_jobs(kind=JobKind.RESUME_RUN)
    assert await store.bury_job(job, "lost", at(3))
    [(run, owed)] = await store.decided_without_resume(10)
    assert (run.id, run.status, owed) == ("run_1", RunStatus.PENDING, "rev_1")
    await store.enqueue(NewJob(kind=JobKind.RESUME_RUN, ref="rev_1", due_at=at(4)), at(4))
    assert await store.decided_without_resume(10) == []


async def test_a_pending_delivery_is_owed_a_job_only_while_it_has_none(store: SqlStore) -> None:
    [run] = await seed(store)
    done = replace(run, status=RunStatus.COMPLETE, finished_at=T0)
    assert await store.apply_run_change(RunChange(run=done, deliveries=[pending_delivery(run)]), T0)
    assert await store.pending_deliveries_without_job(10) == []
    [job] = [j for j in await store.claim_jobs("w1", T0, LEASE, 10) if j.kind == JobKind.DELIVER]
    assert await store.pending_deliveries_without_job(10) == []  # running counts
    assert await store.bury_job(job, "lost", T0)
    [(owing, owed)] = await store.pending_deliveries_without_job(10)
    assert (owing.id, owed) == ("run_1", "dlv_1")
    assert [r.id for r in await store.held_starts(10)] == []
    [held] = await seed(store, "run_2", event_id="evt_2")
    assert await store.apply_run_change(RunChange(run=replace(held, status=RunStatus.HELD)), T0)
    assert [r.id for r in await store.held_starts(10)] == ["run_2"]


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
    [run] = await seed(store)
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
    [run] = await seed(store)
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


async def test_an_early_notification_is_kept_once_and_attached_when_the_run_appears(store: SqlStore) -> None:
    [run] = await seed(store)
    early = await store.record_notification(notification("msg_1", state_id="s1"), T0)
    assert (early.duplicate, early.run_id) == (False, None)
    assert (await store.record_notification(notification("msg_1", state_id="s1"), at(1))).duplicate  # orphan too
    second = await store.record_notification(notification("msg_2", state_id="s2"), at(1))
    assert (second.duplicate, second.run_id) == (False, None)
    assert await count(store, "notifications") == 2
    assert await store.list_jobs(kind=JobKind.FETCH_RUN) == []

    [start] = await store.claim_jobs("w", at(2), LEASE, 10)
    started = replace(run, status=RunStatus.CREATED, provider_run_id="prv_1", updated_at=at(2))
    change = RunChange(run=started, expected_version=0, finish_job=start, attach_orphans=True)
    assert await store.apply_run_change(change, at(2))

    [fetch] = await store.list_jobs(kind=JobKind.FETCH_RUN)
    assert (fetch.ref, fetch.data) == (run.id, {})
    assert await store.pause_state(run.id, "PENDING") == "s2"  # the latest state seen
    async with store.db.read() as tx:
        rows = await tx.fetchall("SELECT run_id FROM notifications")
    assert [r["run_id"] for r in rows] == [run.id, run.id]
    late = await store.record_notification(notification("msg_3", state_id="s3"), at(3))
    assert (late.duplicate, late.run_id) == (False, run.id)  # once attached, news finds the run at once


async def test_the_pause_state_is_the_latest_stored_one_of_that_status_since_the_last_pause(store: SqlStore) -> None:
    [run] = await seed(store)
    started = replace(run, status=RunStatus.PENDING, provider_run_id="prv_1")
    assert await store.apply_run_change(RunChange(run=started), T0)

    await store.record_notification(notification("m1", status="PENDING", state_id="await-review"), at(1))
    await store.record_notification(notification("m2", status="IN_PROGRESS", state_id="lookup"), at(2))  # stale
    assert await store.pause_state(run.id, "PENDING") == "await-review"
    assert await store.pause_state(run.id, "IN_PROGRESS") == "lookup"
    assert await store.pause_state(run.id, "COMPLETE") is None

    left = Transition(
        run_id=run.id, at=at(3), from_status=RunStatus.PENDING, to_status=RunStatus.IN_PROGRESS, cause="review:rev_1"
    )
    resumed = replace(started, status=RunStatus.IN_PROGRESS)
    assert await store.apply_run_change(RunChange(run=resumed, expected_version=1, transitions=[left]), T0)
    assert await store.pause_state(run.id, "PENDING") is None  # that pause is over
    await store.record_notification(notification("m3", status="PENDING", state_id="second-review"), at(4))
    assert await store.pause_state(run.id, "PENDING") == "second-review"


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

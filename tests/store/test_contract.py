"""The store's behaviour, the same on every store (RELIABILITY.md T10): each test runs on SQLite and PostgreSQL.

``tests/contract/test_store.py`` holds the rest of the store contract, on both stores too; a behaviour is
tested in one of the two files, not both."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

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
from gateway.store.sqlstore import SqlStore

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[SqlStore]:
    opened = await open_store(store_url)
    await opened.migrate()
    try:
        yield opened
    finally:
        await opened.aclose()


def make_run(run_id: str, event_id: str, **changes: object) -> Run:
    run = Run(
        id=run_id,
        event_id=event_id,
        route="r1",
        flow="eligibility",
        provider="sohar",
        template="eligibility-check",
        status=RunStatus.QUEUED,
        idempotency_key=f"key-{run_id}",
        created_at=T0,
        updated_at=T0,
        input={"patientId": "p-1", "bytes": "\u00e9\u00fc"},
    )
    return dataclasses.replace(run, **changes)  # type: ignore[arg-type]


async def add_event(store: SqlStore, event_id: str, run_ids: tuple[str, ...] = ("run_1",)) -> EventRecord:
    event = CloudEvent(id=f"ce-{event_id}", source="/demo", type="demo.created", data={"n": 1})
    record = EventRecord(id=event_id, source="demo", ce_id=event.id, received_at=T0, response={"id": event_id})
    runs = [NewRun(run=make_run(run_id, event_id), job_data={"attempt": 0}) for run_id in run_ids]
    return await store.insert_event(record, event, runs)


async def test_migrate_is_idempotent_and_check_reports_nothing_pending(store: SqlStore) -> None:
    assert await store.migrate() == 0
    assert await store.check() == {"store": "ok", "pending_migrations": []}


async def test_an_event_is_stored_once_with_its_runs_and_start_jobs(store: SqlStore) -> None:
    first = await add_event(store, "evt_1")
    again = await add_event(store, "evt_other", run_ids=("run_other",))
    assert first.id == "evt_1" and again.id == "evt_other"
    duplicate = CloudEvent(id="ce-evt_1", source="/demo", type="demo.created")
    record = EventRecord(id="evt_dup", source="demo", ce_id="ce-evt_1", received_at=T0, response={"id": "evt_dup"})
    kept = await store.insert_event(record, duplicate, [NewRun(run=make_run("run_dup", "evt_dup"), job_data={})])
    assert kept.id == "evt_1" and kept.response == {"id": "evt_1"} and kept.received_at == T0
    assert await store.get_run("run_dup") is None
    found = await store.find_event("demo", "/demo", "ce-evt_1")
    assert found is not None and found.id == "evt_1"
    body = await store.event_body("evt_1")
    assert body is not None and body.data == {"n": 1}
    jobs = await store.list_jobs(kind=JobKind.START_RUN)
    assert sorted(job.ref for job in jobs) == ["run_1", "run_other"]
    assert all(job.state == JobState.QUEUED and job.data == {"attempt": 0} for job in jobs)


async def test_runs_round_trip_and_list_newest_first(store: SqlStore) -> None:
    await add_event(store, "evt_1", run_ids=("run_1", "run_2", "run_3"))
    run = await store.get_run("run_2")
    assert run == make_run("run_2", "evt_1")
    listed = await store.list_runs(RunFilter(flow="eligibility", limit=2))
    assert [r.id for r in listed] == ["run_3", "run_2"]
    assert [r.id for r in await store.list_runs(RunFilter(before="run_2"))] == ["run_1"]
    assert await store.list_runs(RunFilter(status=RunStatus.COMPLETE)) == []


async def test_run_changes_are_compare_and_set_on_the_version(store: SqlStore) -> None:
    await add_event(store, "evt_1")
    run = await store.get_run("run_1")
    assert run is not None
    moved = dataclasses.replace(
        run, status=RunStatus.CREATED, provider_run_id="prov-1", output={"x": [1, 2]}, updated_at=T0
    )
    step = Transition(run_id="run_1", at=T0, from_status=RunStatus.QUEUED, to_status=RunStatus.CREATED, cause="c")
    assert await store.apply_run_change(RunChange(run=moved, expected_version=0, transitions=[step]), T0)
    assert not await store.apply_run_change(RunChange(run=moved, expected_version=0, transitions=[step]), T0)
    stored = await store.get_run("run_1")
    assert stored is not None and stored.version == 1 and stored.output == {"x": [1, 2]}
    assert await store.timeline("run_1") == [step]
    by_provider = await store.get_run_by_provider_id("sohar", "prov-1")
    assert by_provider is not None and by_provider.id == "run_1"


async def test_a_lost_fence_drops_the_whole_change(store: SqlStore) -> None:
    await add_event(store, "evt_1")
    [job] = await store.claim_jobs("w1", T0, 30, 10)
    later = T0 + timedelta(seconds=60)
    [taken] = await store.claim_jobs("w2", later, 30, 10)  # w1's lease expired
    assert taken.id == job.id and taken.fence == job.fence + 1
    run = await store.get_run("run_1")
    assert run is not None
    moved = dataclasses.replace(run, status=RunStatus.CREATED)
    assert not await store.apply_run_change(RunChange(run=moved, finish_job=job), later)
    assert (await store.get_run("run_1")) == run
    assert not await store.finish_job(job, later)
    assert not await store.retry_job(job, later, "late", later)
    assert not await store.bury_job(job, "late", later)
    assert await store.apply_run_change(RunChange(run=moved, finish_job=taken), later)
    assert await store.list_jobs() == []


async def test_claims_lease_and_fence_and_skip_what_is_not_due(store: SqlStore) -> None:
    for n in range(3):
        await store.enqueue(NewJob(kind=JobKind.FETCH_RUN, ref=f"r{n}", due_at=T0 + timedelta(seconds=n)), T0)
    assert await store.next_due() == T0
    claimed = await store.claim_jobs("w1", T0 + timedelta(seconds=1), 30, 10)
    assert [j.ref for j in claimed] == ["r0", "r1"]
    assert all(j.state == JobState.RUNNING and j.lease_owner == "w1" and j.fence == 1 for j in claimed)
    assert all(j.lease_expires_at == T0 + timedelta(seconds=31) for j in claimed)
    assert await store.claim_jobs("w2", T0 + timedelta(seconds=1), 30, 10) == []
    assert await store.next_due() == T0 + timedelta(seconds=2)


async def test_a_burst_of_starts_does_not_hold_back_the_later_steps_of_runs_in_flight(store: SqlStore) -> None:
    """Issue 12 point 4: 40 starts due first, then 5 fetches; a claim of 8 takes the 5 fetches and 3 starts, and
    while later steps keep coming, starts still get a quarter of each claim."""
    for n in range(40):
        await store.enqueue(NewJob(kind=JobKind.START_RUN, ref=f"s{n:02d}", due_at=T0), T0)
    for n in range(5):
        await store.enqueue(NewJob(kind=JobKind.FETCH_RUN, ref=f"f{n}", due_at=T0 + timedelta(seconds=1)), T0)
    now = T0 + timedelta(seconds=2)

    first = await store.claim_jobs("w1", now, 30, 8)
    assert sorted(j.ref for j in first) == ["f0", "f1", "f2", "f3", "f4", "s00", "s01", "s02"]

    for n in range(20):
        await store.enqueue(NewJob(kind=JobKind.DELIVER, ref=f"d{n:02d}", due_at=T0 + timedelta(seconds=1)), T0)
    second = await store.claim_jobs("w1", now, 30, 8)
    assert sorted(j.kind for j in second).count(JobKind.START_RUN) == 2
    assert sorted(j.ref for j in second if j.kind == JobKind.START_RUN) == ["s03", "s04"]


async def test_work_queued_while_a_job_runs_is_not_lost(store: SqlStore) -> None:
    await store.enqueue(NewJob(kind=JobKind.FETCH_RUN, ref="r", due_at=T0, data={"state_hint": "a"}), T0)
    [job] = await store.claim_jobs("w1", T0, 30, 10)
    await store.enqueue(NewJob(kind=JobKind.FETCH_RUN, ref="r", due_at=T0, data={"state_hint": "b"}), T0)
    assert await store.finish_job(job, T0)
    [again] = await store.claim_jobs("w1", T0, 30, 10)
    assert again.id == job.id and again.data == {"state_hint": "b"} and again.attempts == 1
    assert await store.finish_job(again, T0)
    assert await store.list_jobs() == []


async def test_the_pause_state_is_the_latest_stored_one_of_that_status_since_the_last_pause(store: SqlStore) -> None:
    await add_event(store, "evt_1")
    run = await store.get_run("run_1")
    assert run is not None
    started = dataclasses.replace(run, status=RunStatus.PENDING, provider_run_id="prov-1")
    assert await store.apply_run_change(RunChange(run=started), T0)

    def seen(message_id: str, status: str, state_id: str | None) -> Notification:
        return Notification(
            provider="sohar", message_id=message_id, provider_run_id="prov-1", status=status, state_id=state_id
        )

    await store.record_notification(seen("m1", "PENDING", "await-review"), T0 + timedelta(seconds=1))
    await store.record_notification(seen("m2", "IN_PROGRESS", "lookup"), T0 + timedelta(seconds=2))  # stale
    assert await store.pause_state("run_1", "PENDING") == "await-review"
    assert await store.pause_state("run_1", "IN_PROGRESS") == "lookup"
    assert await store.pause_state("run_1", "COMPLETE") is None

    left = Transition(
        run_id="run_1",
        at=T0 + timedelta(seconds=3),
        from_status=RunStatus.PENDING,
        to_status=RunStatus.IN_PROGRESS,
        cause="review:rev_1",
    )
    resumed = dataclasses.replace(started, status=RunStatus.IN_PROGRESS)
    assert await store.apply_run_change(RunChange(run=resumed, expected_version=1, transitions=[left]), T0)
    assert await store.pause_state("run_1", "PENDING") is None  # that pause is over
    await store.record_notification(seen("m3", "PENDING", "second-review"), T0 + timedelta(seconds=4))
    assert await store.pause_state("run_1", "PENDING") == "second-review"


async def test_notifications_are_kept_once_and_orphans_attach_later(store: SqlStore) -> None:
    await add_event(store, "evt_1")
    early = Notification(provider="sohar", message_id="m1", provider_run_id="prov-1", status="x", state_id="s1")
    outcome = await store.record_notification(early, T0)
    assert not outcome.duplicate and outcome.run_id is None
    assert (await store.record_notification(early, T0)).duplicate
    run = await store.get_run("run_1")
    assert run is not None
    moved = dataclasses.replace(run, status=RunStatus.CREATED, provider_run_id="prov-1")
    assert await store.apply_run_change(RunChange(run=moved, attach_orphans=True), T0)
    [fetch] = await store.list_jobs(kind=JobKind.FETCH_RUN)
    assert fetch.ref == "run_1" and fetch.data == {}
    assert await store.pause_state("run_1", "x") == "s1"
    late = Notification(provider="sohar", message_id="m2", provider_run_id="prov-1", state_id="s2")
    assert (await store.record_notification(late, T0)).run_id == "run_1"


async def _paused_with_review(store: SqlStore) -> Review:
    await add_event(store, "evt_1")
    run = await store.get_run("run_1")
    assert run is not None
    review = Review(
        id="rev_1",
        run_id="run_1",
        flow="eligibility",
        state=ReviewState.OPEN,
        request=PendingInput(key="await-decision", message="ok?"),
        created_at=T0,
        updated_at=T0,
        gathered={"coverage": True},
    )
    assert await store.apply_run_change(
        RunChange(run=dataclasses.replace(run, status=RunStatus.PENDING), open_review=review), T0
    )
    return review


async def test_reviews_decide_once_and_queue_one_resume(store: SqlStore) -> None:
    review = await _paused_with_review(store)
    assert await store.get_review("rev_1") == review
    assert [r.id for r in await store.list_reviews(state="OPEN", flow=None, limit=10, before=None)] == ["rev_1"]
    decided = await store.decide_review(review, {"decision": "approve"}, "op", T0)
    assert decided is not None and decided.state == ReviewState.DECIDED and decided.decision == {"decision": "approve"}
    assert await store.decide_review(review, {"decision": "deny"}, "op2", T0) is None
    assert [j.ref for j in await store.list_jobs(kind=JobKind.RESUME_RUN)] == ["rev_1"]
    paused = await store.get_run("run_1")
    assert paused is not None and paused.version == 1
    resumed = dataclasses.replace(paused, status=RunStatus.IN_PROGRESS)
    assert await store.apply_run_change(RunChange(run=resumed, expected_version=1, close_reviews=True), T0)
    closed = await store.get_review("rev_1")
    assert closed is not None and closed.state == ReviewState.RESUMED


async def test_deliveries_once_per_sink_with_attempts_and_replay(store: SqlStore) -> None:
    await add_event(store, "evt_1")
    run = await store.get_run("run_1")
    assert run is not None
    delivery = Delivery(
        id="dlv_1", run_id="run_1", sink="results", state=DeliveryState.PENDING, created_at=T0, updated_at=T0
    )
    done = dataclasses.replace(run, status=RunStatus.COMPLETE, finished_at=T0)
    twin = dataclasses.replace(delivery, id="dlv_2")
    assert await store.apply_run_change(RunChange(run=done, deliveries=[delivery, twin]), T0)
    assert [
        d.id for d in await store.list_deliveries(state=None, run_id="run_1", sink=None, limit=10, before=None)
    ] == ["dlv_1"]
    [job] = [j for j in await store.claim_jobs("w1", T0, 30, 10) if j.kind == JobKind.DELIVER]
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


async def test_a_decided_review_is_owed_a_resume_only_while_it_has_no_job(store: SqlStore) -> None:
    review = await _paused_with_review(store)
    assert await store.decided_without_resume(10) == []  # still OPEN
    assert await store.decide_review(review, {"decision": "approve"}, "op", T0) is not None
    assert await store.decided_without_resume(10) == []  # the resume job came with the decision
    [job] = await store.list_jobs(kind=JobKind.RESUME_RUN)
    assert await store.bury_job(job, "lost", T0)
    [(run, owed)] = await store.decided_without_resume(10)
    assert (run.id, run.status, owed) == ("run_1", RunStatus.PENDING, "rev_1")
    await store.enqueue(NewJob(kind=JobKind.RESUME_RUN, ref="rev_1", due_at=T0), T0)
    assert await store.decided_without_resume(10) == []


async def test_a_pending_delivery_is_owed_a_job_only_while_it_has_none(store: SqlStore) -> None:
    await add_event(store, "evt_1")
    run = await store.get_run("run_1")
    assert run is not None
    delivery = Delivery(
        id="dlv_1", run_id="run_1", sink="results", state=DeliveryState.PENDING, created_at=T0, updated_at=T0
    )
    done = dataclasses.replace(run, status=RunStatus.COMPLETE, finished_at=T0)
    assert await store.apply_run_change(RunChange(run=done, deliveries=[delivery]), T0)
    assert await store.pending_deliveries_without_job(10) == []
    [job] = [j for j in await store.claim_jobs("w1", T0, 30, 10) if j.kind == JobKind.DELIVER]
    assert await store.pending_deliveries_without_job(10) == []  # running counts
    assert await store.bury_job(job, "lost", T0)
    [(owing, owed)] = await store.pending_deliveries_without_job(10)
    assert (owing.id, owed) == ("run_1", "dlv_1")
    assert [r.id for r in await store.held_starts(10)] == []
    await add_event(store, "evt_2", run_ids=("run_2",))
    stored = await store.get_run("run_2")
    assert stored is not None
    assert await store.apply_run_change(RunChange(run=dataclasses.replace(stored, status=RunStatus.HELD)), T0)
    assert [r.id for r in await store.held_starts(10)] == ["run_2"]


async def test_released_leases_are_due_at_once_and_do_not_count_an_attempt(store: SqlStore) -> None:
    await add_event(store, "evt_1")
    [job] = await store.claim_jobs("w1", T0, 30, 10)
    assert job.attempts == 1
    later = T0 + timedelta(seconds=1)
    assert await store.release_jobs([job], later) == 1
    assert await store.release_jobs([job], later) == 0  # already released: fenced on state and fence
    [again] = await store.claim_jobs("w2", later, 30, 10)
    assert (again.id, again.attempts) == (job.id, 1)
    assert await store.release_jobs([job], later) == 0  # the old claim's fence no longer holds

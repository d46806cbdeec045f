"""What only PostgreSQL has to prove: many claimers at once (T9), wake-ups between replicas, session settings."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from gateway.domain.model import JobKind, Notification, RunStatus
from gateway.domain.ports import NewJob, RunChange
from gateway.store import open_store
from gateway.store.pg import PostgresDatabase, rowcount, translate
from gateway.store.sqlstore import SqlStore
from tests import pg
from tests.contract.test_store import seed

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def test_placeholders_are_numbered_outside_literals() -> None:
    assert translate("SELECT ? , '?' AS \"a?\" WHERE x = ? AND y IN (?, ?)") == (
        "SELECT $1 , '?' AS \"a?\" WHERE x = $2 AND y IN ($3, $4)"
    )


@pytest.mark.parametrize(
    ("status", "count"), [("INSERT 0 1", 1), ("UPDATE 3", 3), ("DELETE 0", 0), ("SELECT 12", 12), ("CREATE TABLE", 0)]
)
def test_rowcount_comes_from_the_command_status(status: str, count: int) -> None:
    assert rowcount(status) == count


@pytest.fixture
async def replicas() -> AsyncIterator[list[SqlStore]]:
    """Three stores on one fresh schema, as three replicas would have."""
    async with pg.fresh_schema() as url:
        stores = [await open_store(url, pool_size=4) for _ in range(3)]
        await stores[0].migrate()
        try:
            yield stores
        finally:
            for store in stores:
                await store.aclose()


@pg.needs_postgres
async def test_sessions_cut_off_idle_transactions_and_keep_durable_commits(replicas: list[SqlStore]) -> None:
    db = replicas[0].db
    assert isinstance(db, PostgresDatabase)
    settings = await db.settings()
    assert settings["idle_in_transaction_session_timeout"] == "60000"
    assert settings["synchronous_commit"] == "on"


@pg.needs_postgres
async def test_concurrent_claimers_each_get_a_job_once_per_lease(replicas: list[SqlStore]) -> None:
    jobs = 600
    for n in range(0, jobs, 100):
        async with replicas[0].db.write() as tx:
            for m in range(n, n + 100):
                await replicas[0]._upsert_job(tx, NewJob(kind=JobKind.FETCH_RUN, ref=f"r{m}", due_at=T0), T0)

    async def worker(store: SqlStore, name: str) -> list[tuple[int, int]]:
        got: list[tuple[int, int]] = []
        while batch := await store.claim_jobs(name, T0, 60, 10):
            got.extend((job.id, job.fence) for job in batch)
        return got

    results = await asyncio.gather(*(worker(replicas[n % 3], f"w{n}") for n in range(12)))
    claimed = [item for result in results for item in result]
    assert len(claimed) == jobs and len(set(claimed)) == jobs
    assert {fence for _, fence in claimed} == {1}
    assert sum(1 for result in results if result) > 1  # the work really was shared


@pg.needs_postgres
async def test_a_paused_holder_loses_to_the_replica_that_took_over(replicas: list[SqlStore]) -> None:
    first, second, _ = replicas
    await first.enqueue(NewJob(kind=JobKind.DELIVER, ref="d1", due_at=T0), T0)
    [held] = await first.claim_jobs("paused", T0, 30, 10)
    later = T0 + timedelta(seconds=31)
    [taken] = await second.claim_jobs("alive", later, 30, 10)
    assert taken.fence == held.fence + 1
    assert await second.finish_job(taken, later)
    assert not await first.finish_job(held, later)  # the late completion matches no row


@pg.needs_postgres
async def test_finishing_never_loses_work_queued_at_the_same_moment(replicas: list[SqlStore]) -> None:
    first, second, _ = replicas
    for n in range(40):
        ref = f"r{n}"
        await first.enqueue(NewJob(kind=JobKind.FETCH_RUN, ref=ref, due_at=T0), T0)
        [job] = await first.claim_jobs("w", T0, 30, 1)
        again = NewJob(kind=JobKind.FETCH_RUN, ref=ref, due_at=T0, data={"n": n})
        finished, _ = await asyncio.gather(first.finish_job(job, T0), second.enqueue(again, T0))
        assert finished
        [left] = await second.list_jobs()
        assert left.ref == ref and left.state.value == "queued"  # either re-queued by finish or inserted anew
        [rerun] = await second.claim_jobs("w", T0, 30, 1)
        assert await second.finish_job(rerun, T0)


@pg.needs_postgres
async def test_a_notification_racing_the_run_start_is_never_orphaned(replicas: list[SqlStore]) -> None:
    first, second, _ = replicas
    run_ids = tuple(f"run_{n}" for n in range(30))
    await seed(first, *run_ids)
    for n, run_id in enumerate(run_ids):
        run = await first.get_run(run_id)
        assert run is not None
        started = dataclasses.replace(run, status=RunStatus.CREATED, provider_run_id=f"prov-{n}")
        note = Notification(provider="sohar", message_id=f"m{n}", provider_run_id=f"prov-{n}", state_id="s")
        await asyncio.gather(
            first.apply_run_change(RunChange(run=started, attach_orphans=True), T0),
            second.record_notification(note, T0),
        )
    fetches = {job.ref for job in await first.list_jobs(kind=JobKind.FETCH_RUN, limit=100)}
    assert fetches == set(run_ids)


@pg.needs_postgres
async def test_queued_work_wakes_the_other_replicas(replicas: list[SqlStore]) -> None:
    woken = [asyncio.Event(), asyncio.Event()]
    replicas[1].on_work(woken[0].set)
    replicas[2].on_work(woken[1].set)
    await replicas[0].enqueue(NewJob(kind=JobKind.START_RUN, ref="r", due_at=T0), T0)
    await asyncio.wait_for(asyncio.gather(*(event.wait() for event in woken)), timeout=10)

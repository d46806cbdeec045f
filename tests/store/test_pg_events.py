"""The pipelined event writer on PostgreSQL (issue 12 point 1): the submissions that arrive together are written
with one statement and one commit, each is answered only after that commit, the first answer for a repeated
(source, id) is returned, and a submission the server refuses fails alone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg  # type: ignore[import-untyped]
import pytest

from gateway.domain.model import CloudEvent, JobKind
from gateway.domain.ports import EventRecord, NewRun
from gateway.store import open_store
from gateway.store.pg import PostgresDatabase
from gateway.store.sqlstore import SqlStore
from tests import pg
from tests.contract.test_store import make_run

pytestmark = pg.needs_postgres

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    async with pg.fresh_schema() as url:
        yield url


@pytest.fixture
async def store(schema: str) -> AsyncIterator[SqlStore]:
    opened = await open_store(schema, pool_size=4)
    await opened.migrate()
    try:
        yield opened
    finally:
        await opened.aclose()


def _db(store: SqlStore) -> PostgresDatabase:
    assert isinstance(store.db, PostgresDatabase)
    return store.db


def submit(
    store: SqlStore, event_id: str, ce_id: str, *, runs: tuple[str, ...] = (), key: str | None = None
) -> asyncio.Task[EventRecord]:
    """One submission as the ingest path makes it: the event, its runs and their start jobs."""
    event = CloudEvent(id=ce_id, source="/demo", type="demo.created", data={"n": event_id})
    record = EventRecord(id=event_id, source="demo", ce_id=ce_id, received_at=T0, response={"id": event_id})
    new = [
        NewRun(run=make_run(run_id, event_id, idempotency_key=key or f"key-{run_id}"), job_data={})
        for run_id in (runs or (f"run_{event_id}",))
    ]
    return asyncio.ensure_future(store.insert_event(record, event, new))


async def committed_events(url: str) -> dict[str, str]:
    """ce_id -> event id, as another session reads them: only what is committed."""
    conn = await asyncpg.connect(url)
    try:
        return {row["ce_id"]: row["id"] for row in await conn.fetch("SELECT id, ce_id FROM events")}
    finally:
        await conn.close()


async def test_submissions_share_statements_and_are_committed_when_they_are_answered(
    store: SqlStore, schema: str
) -> None:
    reader = await asyncpg.create_pool(schema, min_size=1, max_size=2)

    async def one(n: int) -> None:
        stored = await submit(store, f"evt_{n}", f"ce-{n}")
        assert stored.id == f"evt_{n}"
        seen = await reader.fetchval("SELECT id FROM events WHERE ce_id = $1", f"ce-{n}")
        assert seen == f"evt_{n}"  # answered only after its commit

    before = _db(store).events.batches
    try:
        await asyncio.gather(*(one(n) for n in range(120)))
    finally:
        await reader.close()

    assert len(await committed_events(schema)) == 120
    assert 1 <= _db(store).events.batches - before < 120
    starts = await store.list_jobs(kind=JobKind.START_RUN, limit=500)
    assert sorted(job.ref for job in starts) == sorted(f"run_evt_{n}" for n in range(120))


async def test_a_repeat_inside_one_batch_gets_the_first_answer(store: SqlStore, schema: str) -> None:
    before = _db(store).events.batches
    answers = await asyncio.gather(*(submit(store, f"evt_{n}", "ce-same") for n in range(5)))

    assert _db(store).events.batches - before == 1  # all five went into one statement
    assert {answer.id for answer in answers} == {"evt_0"}
    assert {answer.response["id"] for answer in answers} == {"evt_0"}
    assert await committed_events(schema) == {"ce-same": "evt_0"}
    assert await store.get_run("run_evt_0") is not None
    assert all([await store.get_run(f"run_evt_{n}") is None for n in range(1, 5)])
    assert [job.ref for job in await store.list_jobs(kind=JobKind.START_RUN)] == ["run_evt_0"]


async def test_a_repeat_in_a_later_batch_gets_the_stored_first_answer(store: SqlStore) -> None:
    first = await submit(store, "evt_1", "ce-1")
    again, other = await asyncio.gather(submit(store, "evt_2", "ce-1"), submit(store, "evt_3", "ce-3"))

    assert first.id == again.id == "evt_1" and again.response == {"id": "evt_1"} and again.received_at == T0
    assert other.id == "evt_3"
    assert await store.get_run("run_evt_2") is None


async def test_a_refused_submission_fails_alone_and_the_others_are_stored(store: SqlStore, schema: str) -> None:
    await submit(store, "evt_0", "ce-0", key="taken")
    tasks = [
        submit(store, "evt_1", "ce-1"),
        submit(store, "evt_2", "ce-2", key="taken"),  # its run's idempotency key is stored already
        submit(store, "evt_3", "ce-3"),
        submit(store, "evt_4", "ce-1"),  # a repeat of the first in the same batch
    ]
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)

    assert isinstance(outcomes[1], asyncpg.UniqueViolationError)
    assert [o.id for o in outcomes if isinstance(o, EventRecord)] == ["evt_1", "evt_3", "evt_1"]
    assert await committed_events(schema) == {"ce-0": "evt_0", "ce-1": "evt_1", "ce-3": "evt_3"}
    assert await store.get_run("run_evt_2") is None
    refs = {job.ref for job in await store.list_jobs(kind=JobKind.START_RUN)}
    assert refs == {"run_evt_0", "run_evt_1", "run_evt_3"}


async def test_a_lost_connection_is_replaced_and_nothing_is_lost(store: SqlStore, schema: str) -> None:
    await submit(store, "evt_1", "ce-1")
    conn = _db(store).events._conn
    assert conn is not None
    admin = await asyncpg.connect(schema)
    try:
        await admin.execute("SELECT pg_terminate_backend($1)", conn.get_server_pid())
    finally:
        await admin.close()

    answers = await asyncio.gather(submit(store, "evt_2", "ce-2"), submit(store, "evt_3", "ce-1"))

    assert [answer.id for answer in answers] == ["evt_2", "evt_1"]
    assert await committed_events(schema) == {"ce-1": "evt_1", "ce-2": "evt_2"}


async def test_replicas_racing_on_the_same_events_agree_on_the_first_answer(schema: str) -> None:
    stores = [await open_store(schema, pool_size=2) for _ in range(2)]
    await stores[0].migrate()
    try:
        answers = await asyncio.gather(
            *(submit(stores[side], f"evt_{side}_{n}", f"ce-{n}") for n in range(60) for side in (0, 1))
        )
    finally:
        for opened in stores:
            await opened.aclose()

    stored = await committed_events(schema)
    assert len(stored) == 60
    for n in range(60):
        pair = answers[2 * n : 2 * n + 2]
        assert {answer.id for answer in pair} == {stored[f"ce-{n}"]}


async def test_stored_events_wake_the_other_replicas(schema: str) -> None:
    stores = [await open_store(schema, pool_size=2) for _ in range(2)]
    await stores[0].migrate()
    try:
        woken = asyncio.Event()
        stores[1].on_work(woken.set)
        await submit(stores[0], "evt_1", "ce-1")
        await asyncio.wait_for(woken.wait(), timeout=10)
    finally:
        for opened in stores:
            await opened.aclose()


async def test_close_writes_and_answers_what_was_submitted(schema: str) -> None:
    opened = await open_store(schema, pool_size=2)
    await opened.migrate()
    pending = [submit(opened, f"evt_{n}", f"ce-{n}") for n in range(10)]
    await asyncio.sleep(0)
    await opened.aclose()

    assert [task.result().id for task in pending] == [f"evt_{n}" for n in range(10)]
    assert len(await committed_events(schema)) == 10

"""A read that starts after a commit returns sees that commit, however many reads are in flight.

The reader connection is shared by every coroutine. When a statement stayed open across hops to the
reader's thread (execute, then fetch, then close), its WAL snapshot stayed open too, and reads by
other coroutines in between saw state older than commits that had already returned: a job claimed
after its creator's commit read its review as still OPEN and finished itself (issue: lost decisions).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.store.db import SqliteDatabase

ROUNDS = 300
BACKGROUND_READERS = 4


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[SqliteDatabase]:
    database = SqliteDatabase(str(tmp_path / "fresh.db"))
    await database.open()
    async with database.write() as tx:
        await tx.execute("CREATE TABLE counter (n INTEGER NOT NULL)")
        await tx.execute("CREATE TABLE filler (x INTEGER NOT NULL)")
        await tx.execute("INSERT INTO counter (n) VALUES (0)")
        await tx.executemany("INSERT INTO filler (x) VALUES (?)", [(i,) for i in range(50)])
    yield database
    await database.aclose()


async def _keep_reading(db: SqliteDatabase, stop: asyncio.Event) -> None:
    while not stop.is_set():
        async with db.read() as tx:
            await tx.fetchone("SELECT x FROM filler ORDER BY x")  # many rows: only the first is wanted


async def test_every_read_after_a_commit_sees_it_while_other_reads_are_in_flight(db: SqliteDatabase) -> None:
    stop = asyncio.Event()
    readers = [asyncio.create_task(_keep_reading(db, stop)) for _ in range(BACKGROUND_READERS)]
    stale: list[tuple[int, int]] = []
    try:
        for committed in range(1, ROUNDS + 1):
            async with db.write() as tx:
                await tx.execute("UPDATE counter SET n = ?", (committed,))
            async with db.read() as tx:
                row = await tx.fetchone("SELECT n FROM counter")
            assert row is not None
            if row["n"] != committed:
                stale.append((committed, row["n"]))
    finally:
        stop.set()
        await asyncio.gather(*readers)
    assert stale == []


async def test_fetchone_returns_the_first_row_or_none(db: SqliteDatabase) -> None:
    async with db.read() as tx:
        assert (await tx.fetchone("SELECT x FROM filler ORDER BY x DESC"))["x"] == 49  # type: ignore[index]
        assert await tx.fetchone("SELECT x FROM filler WHERE x < 0") is None
        assert len(await tx.fetchall("SELECT x FROM filler")) == 50


async def test_the_reader_cannot_write(db: SqliteDatabase) -> None:
    async with db.read() as tx:
        with pytest.raises(Exception, match=r"readonly|read-only"):
            await tx.execute("UPDATE counter SET n = -1")
        with pytest.raises(Exception, match="read-only"):
            await tx.executemany("UPDATE counter SET n = ?", [(-1,)])
    async with db.read() as tx:
        assert (await tx.fetchone("SELECT n FROM counter"))["n"] == 0  # type: ignore[index]

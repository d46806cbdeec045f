"""Group commit: writes that arrive together share one COMMIT, each returns only once it is durable, and a
write that fails inside a batch fails alone."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.store.db import SqliteDatabase, Tx


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[SqliteDatabase]:
    database = SqliteDatabase(str(tmp_path / "g.db"))
    await database.open()
    async with database.write() as tx:
        await tx.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)")
    yield database
    await database.aclose()


def _commits(db: SqliteDatabase) -> list[str]:
    seen: list[str] = []
    assert db._writer is not None
    db._writer.conn.set_trace_callback(lambda sql: seen.append(sql) if sql.strip().upper() == "COMMIT" else None)
    return seen


def _names_on_disk(path: str) -> set[str]:
    """What another connection reads: only committed rows."""
    conn = sqlite3.connect(path)
    try:
        return {row[0] for row in conn.execute("SELECT name FROM items")}
    finally:
        conn.close()


async def test_concurrent_writes_share_commits_and_are_durable_when_they_return(db: SqliteDatabase) -> None:
    commits = _commits(db)

    async def insert(n: int) -> None:
        async with db.write() as tx:
            await tx.execute("INSERT INTO items (name) VALUES (?)", (f"item-{n}",))
        assert f"item-{n}" in _names_on_disk(db.path)  # acknowledged only after its commit

    await asyncio.gather(*(insert(n) for n in range(200)))

    assert _names_on_disk(db.path) == {f"item-{n}" for n in range(200)}
    assert 1 <= len(commits) < 200


async def test_a_failing_write_in_a_batch_fails_alone(db: SqliteDatabase) -> None:
    async with db.write() as tx:
        await tx.execute("INSERT INTO items (name) VALUES ('taken')")

    async def insert(name: str) -> None:
        async with db.write() as tx:
            await tx.execute("INSERT INTO items (name) VALUES (?)", (f"{name}-first",))
            await tx.execute("INSERT INTO items (name) VALUES (?)", (name,))

    outcomes = await asyncio.gather(*(insert(n) for n in ("a", "taken", "b", "c")), return_exceptions=True)

    assert [type(o).__name__ for o in outcomes] == ["NoneType", "IntegrityError", "NoneType", "NoneType"]
    assert _names_on_disk(db.path) == {"taken", "a-first", "a", "b-first", "b", "c-first", "c"}


async def test_an_exception_raised_by_the_caller_rolls_back_only_its_own_writes(db: SqliteDatabase) -> None:
    class Lost(Exception):
        pass

    async def insert(name: str, fail: bool) -> None:
        async with db.write() as tx:
            await tx.execute("INSERT INTO items (name) VALUES (?)", (name,))
            if fail:
                raise Lost

    outcomes = await asyncio.gather(insert("kept", False), insert("gone", True), return_exceptions=True)

    assert outcomes[0] is None and isinstance(outcomes[1], Lost)
    assert _names_on_disk(db.path) == {"kept"}


async def test_reads_inside_a_write_see_that_write(db: SqliteDatabase) -> None:
    async with db.write() as tx:
        await tx.execute("INSERT INTO items (name) VALUES ('x')")
        row = await tx.fetchone("SELECT COUNT(*) AS n FROM items")
        rows = await tx.fetchall("SELECT name FROM items")
    assert row is not None and row["n"] == 1
    assert [r["name"] for r in rows] == ["x"]


async def test_the_durability_pragmas_hold(db: SqliteDatabase) -> None:
    pragmas = await db.pragmas()
    assert pragmas["journal_mode"] == "wal"
    assert pragmas["synchronous"] == 2  # FULL
    assert pragmas["foreign_keys"] == 1


async def _insert(tx: Tx, name: str) -> int:
    return await tx.execute("INSERT INTO items (name) VALUES (?)", (name,))


async def test_bodies_run_in_the_writer_thread_share_commits_and_are_durable_when_they_return(
    db: SqliteDatabase,
) -> None:
    commits = _commits(db)
    threads: set[int] = set()

    async def body(tx: Tx, n: int) -> int:
        threads.add(threading.get_ident())
        return await _insert(tx, f"item-{n}")

    async def insert(n: int) -> None:
        assert await db.transact(lambda tx: body(tx, n)) == 1
        assert f"item-{n}" in _names_on_disk(db.path)  # answered only after its commit

    await asyncio.gather(*(insert(n) for n in range(200)))

    assert _names_on_disk(db.path) == {f"item-{n}" for n in range(200)}
    assert 1 <= len(commits) < 200
    assert threads and threading.get_ident() not in threads  # no statement ran on the event loop


async def test_a_failing_body_in_a_batch_fails_alone(db: SqliteDatabase) -> None:
    await db.transact(lambda tx: _insert(tx, "taken"))

    async def two(tx: Tx, name: str) -> None:
        await _insert(tx, f"{name}-first")
        await _insert(tx, name)

    outcomes = await asyncio.gather(
        *(db.transact(lambda tx, n=n: two(tx, n)) for n in ("a", "taken", "b")), return_exceptions=True
    )

    assert [type(o).__name__ for o in outcomes] == ["NoneType", "IntegrityError", "NoneType"]
    assert _names_on_disk(db.path) == {"taken", "a-first", "a", "b-first", "b"}


async def test_a_body_that_suspends_is_refused_and_writes_nothing(db: SqliteDatabase) -> None:
    async def suspends(tx: Tx) -> None:
        await _insert(tx, "never")
        await asyncio.sleep(0)

    with pytest.raises(RuntimeError, match="suspended"):
        await db.transact(suspends)
    assert _names_on_disk(db.path) == set()


async def test_the_loop_gathers_the_next_batch_while_a_commit_is_in_flight(db: SqliteDatabase) -> None:
    """Pipelining: while the writer thread is inside batch 1's COMMIT, the loop accepts write 2; batch 1 is
    answered only after its COMMIT returns, and write 2 commits in a batch of its own."""
    in_commit, release = threading.Event(), threading.Event()
    commits: list[str] = []

    def hold_commit(sql: str) -> None:
        if sql.strip().upper() == "COMMIT":
            commits.append(sql)
            if len(commits) == 1:
                in_commit.set()
                release.wait(timeout=60)

    assert db._writer is not None
    db._writer.conn.set_trace_callback(hold_commit)
    first = asyncio.ensure_future(db.transact(lambda tx: _insert(tx, "one")))
    await asyncio.to_thread(in_commit.wait, 60)
    second = asyncio.ensure_future(db.transact(lambda tx: _insert(tx, "two")))
    await asyncio.sleep(0.05)
    assert not first.done() and not second.done()
    release.set()
    assert await asyncio.wait_for(asyncio.gather(first, second), timeout=60) == [1, 1]
    assert len(commits) == 2
    assert _names_on_disk(db.path) == {"one", "two"}


async def test_a_cancelled_session_rolls_back_and_the_writer_goes_on(db: SqliteDatabase) -> None:
    entered = asyncio.Event()

    async def slow_session() -> None:
        async with db.write() as tx:
            await tx.execute("INSERT INTO items (name) VALUES ('abandoned')")
            entered.set()
            await asyncio.sleep(60)

    task = asyncio.ensure_future(slow_session())
    await asyncio.wait_for(entered.wait(), timeout=60)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(db.transact(lambda tx: _insert(tx, "after")), timeout=60)
    assert _names_on_disk(db.path) == {"after"}

"""``gateway migrate-store``: a SQLite store that has seen the whole flow, copied and verified (target: each store)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from gateway import cli
from gateway.domain.model import JobKind
from gateway.domain.ports import NewJob, RunFilter
from gateway.runtime.wiring import sealer_for
from gateway.store import open_store
from tests.contract.test_store import T0
from tests.support import OPERATOR, SOURCE, claim, example_settings, running_gateway

EVENT = json.loads((Path(__file__).resolve().parents[2] / "examples" / "event.json").read_text())
CE = {"Content-Type": "application/cloudevents+json"}
AUDIT = "CREATE TABLE audit (id {int} PRIMARY KEY, prev_hash {blob}, hash {blob} NOT NULL, action TEXT NOT NULL)"


async def lived_in_store(tmp_path: Path) -> str:
    """A SQLite store with events, runs, timelines, notifications, reviews, deliveries, jobs and an audit chain."""
    url = f"sqlite:///{tmp_path / 'source.db'}"
    async with running_gateway(example_settings(tmp_path, store_url=url)) as gw:
        for n in range(3):
            event = {**EVENT, "id": f"evt-{n}"}
            assert (await gw.client.post("/v1/events", json=event, headers={**SOURCE, **CE})).status_code == 202
        await gw.settle()
        review = (await gw.client.get("/v1/reviews", headers=OPERATOR)).json()["items"][0]
        decision = {"input": {"decision": "approve"}}
        await claim(gw.client, review["id"])
        await gw.client.post(f"/v1/reviews/{review['id']}/decision", json=decision, headers=OPERATOR)
        await gw.settle()
        await gw.services.store.enqueue(NewJob(kind=JobKind.FETCH_RUN, ref="later", due_at=T0), T0)
        async with gw.services.store.db.write() as tx:
            await tx.execute(AUDIT.format(int="INTEGER", blob="BLOB"))
            await tx.executemany(
                "INSERT INTO audit (id, prev_hash, hash, action) VALUES (?, ?, ?, ?)",
                [(n, bytes([n]) * 32 if n else None, bytes([n + 1]) * 32, f"a{n}") for n in range(5)],
            )
    return url


async def test_a_lived_in_store_moves_up_with_counts_and_audit_chain_verified(
    tmp_path: Path, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source = await lived_in_store(tmp_path)
    target = await open_store(store_url)
    blob = "BYTEA" if target.db.dialect == "postgres" else "BLOB"
    async with target.db.write() as tx:  # the audit table comes from its own migration on the target side
        await tx.execute(AUDIT.format(int="BIGINT", blob=blob))
    await target.aclose()

    argv = ["migrate-store", "--from", source, "--to", store_url, "--batch-size", "2"]
    assert await asyncio.to_thread(cli.main, argv) == 0
    out = capsys.readouterr().out
    for table in ("events", "runs", "run_transitions", "notifications", "reviews", "deliveries", "jobs", "audit"):
        assert f"{table}: " in out
    assert "audit: every row identical" in out

    sealer = sealer_for(example_settings(tmp_path))  # the payloads were written encrypted; both stores read them
    old, new = await open_store(source, sealer=sealer), await open_store(store_url, sealer=sealer)
    try:
        runs = await old.list_runs(RunFilter(limit=10))
        assert len(runs) == 3 and await new.list_runs(RunFilter(limit=10)) == runs
        for run in runs:
            assert await new.timeline(run.id) == await old.timeline(run.id)
        assert await new.stats() == await old.stats()
        await new.enqueue(NewJob(kind=JobKind.FETCH_RUN, ref="after-the-move", due_at=T0), T0)  # ids keep counting
    finally:
        await old.aclose()
        await new.aclose()

    again = await asyncio.to_thread(cli.main, ["migrate-store", "--from", source, "--to", store_url])
    assert again == 1
    assert "not empty" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["--from", "mysql://x/db", "--to", "postgresql://localhost/db"],
        ["--from", "sqlite:///a.db", "--to", "redis://localhost"],
        ["--from", "sqlite:///a.db", "--to", "sqlite:///a.db"],
        ["--from", "sqlite:///a.db", "--to", "postgresql://"],
    ],
)
def test_bad_urls_exit_2_with_a_message(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["migrate-store", *argv]) == 2
    assert "gateway migrate-store: --" in capsys.readouterr().err

"""2,000 events at a steady 45/s into the real server, no kill, every review decided as it opens: every run
must end COMPLETE and be delivered exactly once, with no decision or delivery left without its job.

This is the load under which decisions and deliveries were once lost without any crash (a job read state
older than the commit that created it and finished itself). ``GATEWAY_STEADY_EVENTS`` scales it.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_quickstart import OPERATOR, SOURCE, wait_for

pytestmark = pytest.mark.e2e

EVENTS = int(os.environ.get("GATEWAY_STEADY_EVENTS", "2000"))
RATE = 45.0  # events per second: under the demo source's rate limit (50/s)
OPERATORS = 8  # reviews decided at once
SETTLE_SECONDS = 600.0  # after the last event: generous, for a machine kept busy by other work
EVENT = json.loads((Path(__file__).resolve().parents[2] / "examples" / "event.json").read_text())


async def _post_steadily(http: httpx.AsyncClient, accepted: dict[str, str]) -> int:
    """Open loop: event i goes out at i / RATE s whatever the answers; a dropped connection is sent again
    (the same event id: the gateway answers it once). Returns how many were sent again."""
    resent = 0

    async def post(i: int) -> None:
        nonlocal resent
        event = {**EVENT, "id": f"steady-{i:05d}", "data": {**EVENT["data"], "patient": {"id": f"P-{i:05d}"}}}
        for attempt in range(20):
            try:
                answer = await http.post("/v1/events", json=event, headers=SOURCE)
            except httpx.TransportError:
                resent += 1
                await asyncio.sleep(0.2 * (attempt + 1))
                continue
            if answer.status_code == 429:
                await asyncio.sleep(float(answer.headers.get("retry-after", "1")))
                continue
            assert answer.status_code == 202, answer.text
            accepted[event["id"]] = answer.json()["runs"][0]["id"]
            return
        raise AssertionError(f"event {event['id']} was never accepted")

    started = time.monotonic()
    tasks = []
    for i in range(EVENTS):
        await asyncio.sleep(max(0.0, started + i / RATE - time.monotonic()))
        tasks.append(asyncio.create_task(post(i)))
    await asyncio.gather(*tasks)
    return resent


async def _decide_everything(http: httpx.AsyncClient, decided: set[str], stop: asyncio.Event) -> None:
    """A team of operators who claim and approve every review as it opens."""

    async def decide(review_id: str) -> None:
        claimed = await http.post(f"/v1/reviews/{review_id}/claim", headers=OPERATOR)
        assert claimed.status_code == 200, claimed.text
        answer = await http.post(
            f"/v1/reviews/{review_id}/decision", json={"input": {"decision": "approve"}}, headers=OPERATOR
        )
        assert answer.status_code == 202, answer.text
        decided.add(review_id)

    while not stop.is_set():
        items = (await http.get("/v1/reviews?state=OPEN&limit=200", headers=OPERATOR)).json()["items"]
        fresh = [item["id"] for item in items if item["id"] not in decided]
        for start in range(0, len(fresh), OPERATORS):
            await asyncio.gather(*(decide(review_id) for review_id in fresh[start : start + OPERATORS]))
        if not fresh:
            await asyncio.sleep(0.3)


def _tally(db: Path) -> dict[str, Any]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        one = lambda sql: conn.execute(sql).fetchone()[0]  # noqa: E731
        return {
            "runs": one("SELECT COUNT(*) FROM runs"),
            "complete": one("SELECT COUNT(*) FROM runs WHERE status = 'COMPLETE'"),
            "delivered": one("SELECT COUNT(*) FROM deliveries WHERE state = 'DELIVERED'"),
            "deliveries": one("SELECT COUNT(*) FROM deliveries"),
            "decided_without_resume": one(
                "SELECT COUNT(*) FROM reviews v WHERE v.state = 'DECIDED' AND NOT EXISTS"
                " (SELECT 1 FROM jobs j WHERE j.kind = 'resume_run' AND j.ref = v.id)"
            ),
            "pending_without_job": one(
                "SELECT COUNT(*) FROM deliveries d WHERE d.state = 'PENDING' AND NOT EXISTS"
                " (SELECT 1 FROM jobs j WHERE j.kind = 'deliver' AND j.ref = d.id)"
            ),
            "dead_jobs": one("SELECT COUNT(*) FROM jobs WHERE state = 'dead'"),
        }
    finally:
        conn.close()


async def _load(base: str, db: Path) -> dict[str, Any]:
    accepted: dict[str, str] = {}
    decided: set[str] = set()
    stop = asyncio.Event()
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(base_url=base, timeout=30.0, limits=limits, trust_env=False) as http:
        operator = asyncio.create_task(_decide_everything(http, decided, stop))
        resent = await _post_steadily(http, accepted)
        deadline = time.monotonic() + SETTLE_SECONDS
        tally = _tally(db)
        while time.monotonic() < deadline and (tally["complete"] < EVENTS or tally["delivered"] < EVENTS):
            assert not operator.done() or operator.exception() is None, operator.exception()
            await asyncio.sleep(1.0)
            tally = _tally(db)
        stop.set()
        await operator
    return {**tally, "accepted": len(set(accepted.values())), "decisions": len(decided), "resent": resent}


def test_steady_load_every_run_completes_and_is_delivered_once(server: tuple[str, Any, Path], tmp_path: Path) -> None:
    base, process, log = server
    with httpx.Client(base_url=base, timeout=5.0, trust_env=False) as http:
        wait_for("/readyz", lambda: True if http.get("/readyz").status_code == 200 else None, process, log)
    db = tmp_path / "var" / "gateway.db"
    started = time.monotonic()
    tally = asyncio.run(_load(base, db))
    print(f"steady load: {tally}, {time.monotonic() - started:.1f} s")
    assert process.poll() is None, log.read_text()[-4000:]
    assert tally["accepted"] == EVENTS
    assert tally["decisions"] == EVENTS
    assert (tally["runs"], tally["complete"]) == (EVENTS, EVENTS), tally
    assert (tally["deliveries"], tally["delivered"]) == (EVENTS, EVENTS), tally
    assert tally["decided_without_resume"] == tally["pending_without_job"] == tally["dead_jobs"] == 0, tally
    lines = (tmp_path / "var" / "out" / "results.jsonl").read_text().splitlines()
    delivery_ids = [json.loads(line)["delivery_id"] for line in lines]
    assert len(delivery_ids) == len(set(delivery_ids)) == EVENTS

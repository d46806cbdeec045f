"""How fast the review queue lists and renders with thousands of open items.

    .venv/bin/python bench/review_queue.py [--items 5000] [--rounds 50]

Fills a fresh SQLite store with N open reviews (with desk rows) and times the queue queries the UI and
the JSON API run (newest first, most urgent first, filtered, a deep keyset page) and the /ui/reviews page.
Prints p50 / p95 in milliseconds and the query plans, so a missing index shows.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from gateway.core.ids import new_id
from gateway.domain.desk import Order, QueueFilter, SlaState
from gateway.store.codec import to_us
from tests.desk.support import add_operator, browser_client, desk_settings, ui_login
from tests.support import running_gateway

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


async def fill(db, count: int, rng: random.Random) -> None:
    async with db.write() as tx:
        for n in range(count):
            at = NOW - timedelta(seconds=count - n)
            event, run, review = new_id("evt", at, rng), new_id("run", at, rng), new_id("rev", at, rng)
            flow = "eligibility" if n % 4 else "auto-eligibility"
            await tx.execute(
                "INSERT INTO events (id, source, ce_source, ce_id, type, received_at, response)"
                " VALUES (?, 'demo', 'bench', ?, 't', ?, '{}')",
                (event, event, to_us(at)),
            )
            await tx.execute(
                "INSERT INTO runs (id, event_id, route, flow, provider, template, status, idempotency_key,"
                " created_at, updated_at) VALUES (?, ?, 'r', ?, 'sohar', 't', 'PENDING', ?, ?, ?)",
                (run, event, flow, run, to_us(at), to_us(at)),
            )
            await tx.execute(
                "INSERT INTO reviews (id, run_id, flow, state, request, created_at, updated_at)"
                " VALUES (?, ?, ?, 'OPEN', '{}', ?, ?)",
                (review, run, flow, to_us(at), to_us(at)),
            )
            await tx.execute(
                "INSERT INTO review_items (review_id, priority, sla_state, decide_due_at, claimed_by,"
                " claim_expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    review,
                    rng.choice((0, 10, 90)),
                    rng.choice(("ok", "ok", "warning", "breached")),
                    to_us(at + timedelta(hours=1)),
                    "bea" if n % 10 == 0 else None,
                    to_us(NOW + timedelta(minutes=10)) if n % 10 == 0 else None,
                ),
            )


async def timed(label: str, rounds: int, action) -> None:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        await action()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    p95 = samples[int(len(samples) * 0.95) - 1]
    print(f"{label:<42} p50 {statistics.median(samples):7.2f} ms   p95 {p95:7.2f} ms")


async def main(items: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        async with running_gateway(desk_settings(Path(folder))) as gw:
            store = gw.services.store
            await fill(store.db, items, random.Random(1))
            queue = gw.services.desk.desk.queue
            print(f"{items} open review items, {rounds} rounds each")
            filters = {
                "newest first, page of 50": QueueFilter(),
                "most urgent first, page of 50": QueueFilter(order=Order.URGENT),
                "flow + unclaimed + breached": QueueFilter(
                    flow="eligibility", assignee="none", sla_state=SlaState.BREACHED
                ),
                "claimed by one operator": QueueFilter(assignee="bea"),
                "older than 1 h": QueueFilter(older_than=3600),
            }
            for label, flt in filters.items():
                await timed(label, rounds, lambda flt=flt: queue.list_items(flt, NOW))
            deep = (await queue.list_items(QueueFilter(limit=500), NOW))[-1].id
            await timed(
                "newest first, page after 500 items", rounds, lambda: queue.list_items(QueueFilter(after=deep), NOW)
            )

            await add_operator(gw, "bea", "reviewer")
            async with browser_client(gw) as browser:
                await ui_login(browser, "bea")

                async def page() -> httpx.Response:
                    response = await browser.get("/ui/reviews?order=urgent")
                    assert response.status_code == 200
                    return response

                await timed("GET /ui/reviews?order=urgent (rendered)", rounds, page)
            async with store.db.read() as tx:
                for label, sql in (
                    (
                        "newest",
                        "SELECT r.id FROM reviews r LEFT JOIN review_items i ON i.review_id = r.id"
                        " WHERE r.state = 'OPEN' ORDER BY r.id DESC LIMIT 50",
                    ),
                    (
                        "by flow",
                        "SELECT r.id FROM reviews r WHERE r.flow = 'x' AND r.state = 'OPEN' ORDER BY r.id DESC",
                    ),
                ):
                    plan = await tx.fetchall(f"EXPLAIN QUERY PLAN {sql}")
                    print(f"plan ({label}):", "; ".join(row["detail"] for row in plan))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(main(args.items, args.rounds))

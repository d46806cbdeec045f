"""Three replicas on one PostgreSQL database, one of them SIGKILLed at random points while events, webhooks and
decisions flow through all three. Afterwards the crash-harness invariants (RELIABILITY.md T1, T9) must hold:

- every event answered 2xx is stored, with its run;
- the provider saw exactly one logical run per idempotency key, one per gateway run;
- every decision resumed its run exactly once;
- every completed run reached the sink, always under the one delivery id of its delivery row;
- no job is left running past its lease, none is dead, none is left over.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest

from tests import pg
from tests.replicas.cluster import LEASE_SECONDS, Cluster
from tests.support import OPERATOR, SOURCE

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pg.needs_postgres]
CE = {"Content-Type": "application/cloudevents+json"}
EVENTS = 40
KILLS = 4


class Clients:
    """Round-robin over the replicas; a refused or cut connection moves on to the next one."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.turn = itertools.cycle(range(len(urls)))
        self.http = httpx.AsyncClient(timeout=10)

    async def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        for _ in range(200):
            url = self.urls[next(self.turn)]
            try:
                return await self.http.request(method, f"{url}{path}", **kwargs)
            except httpx.TransportError:
                await asyncio.sleep(0.05)
        raise AssertionError(f"no replica answered {method} {path}")


def event(n: int) -> dict[str, Any]:
    kind = "registered" if n % 2 == 0 else "checked"  # a run that pauses for review, and one that does not
    return {
        "specversion": "1.0",
        "id": f"evt-{n:04d}",
        "source": "/ehr/registrations",
        "type": f"com.example.patient.{kind}",
        "data": {"patient": {"id": f"P-{n}"}, "coverage": {"payerId": "PAYER-42"}},
    }


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    async with pg.fresh_schema() as url:
        running = Cluster(tmp_path, url)
        try:
            await running.start()
            yield running
        finally:
            running.stop()


async def test_three_replicas_survive_random_kills_with_every_invariant(cluster: Cluster) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    clients = Clients([replica.url for replica in cluster.replicas])
    acked: set[str] = set()
    stop = asyncio.Event()

    async def ingest(n: int) -> None:
        for _ in range(rng.choice((1, 1, 2))):  # some sources send twice
            answer = await clients.send("POST", "/v1/events", json=event(n), headers={**SOURCE, **CE})
            if answer.is_success:
                acked.add(event(n)["id"])
            await asyncio.sleep(rng.uniform(0, 0.2))

    async def decide() -> None:
        while not stop.is_set():
            listing = await clients.send("GET", "/v1/reviews?state=OPEN", headers=OPERATOR)
            for review in listing.json()["items"] if listing.is_success else []:
                body = {"input": {"decision": rng.choice(("approve", "deny"))}}
                path = f"/v1/reviews/{review['id']}/decision"
                await clients.send("POST", f"/v1/reviews/{review['id']}/claim", headers=OPERATOR)
                await asyncio.gather(*(clients.send("POST", path, json=body, headers=OPERATOR) for _ in range(2)))
            await asyncio.sleep(0.2)

    async def chaos() -> int:
        kills = 0
        while kills < KILLS and not stop.is_set():
            await asyncio.sleep(rng.uniform(0.3, 1.5))
            victim = rng.choice(cluster.replicas)
            victim.kill()
            kills += 1
            await asyncio.sleep(rng.uniform(0.1, 1.0))
            await cluster.restart(victim)
        return kills

    deciding = asyncio.create_task(decide())
    killing = asyncio.create_task(chaos())
    await asyncio.gather(*(ingest(n) for n in range(EVENTS)))
    kills = await killing
    try:
        await settle(cluster, timeout=90)
    finally:
        stop.set()
        await deciding
        await clients.http.aclose()
    assert kills == KILLS
    await check_invariants(cluster, acked, seed)


async def settle(cluster: Cluster, timeout: float) -> None:
    """Wait until every run is finished and every job is gone (the replicas keep working meanwhile)."""
    deadline = time.monotonic() + timeout
    conn = await asyncpg.connect(cluster.store_url)
    try:
        while time.monotonic() < deadline:
            open_runs = await conn.fetchval(
                "SELECT COUNT(*) FROM runs WHERE status NOT IN ('COMPLETE', 'ERROR', 'FAILED_TO_START')"
            )
            jobs = await conn.fetchval(  # review timers wait for their deadline; they are not left-over work
                "SELECT COUNT(*) FROM jobs WHERE state <> 'dead' AND kind <> 'review_timer'"
            )
            if open_runs == 0 and jobs == 0:
                return
            await asyncio.sleep(0.3)
    finally:
        await conn.close()
    raise AssertionError(f"not settled after {timeout} s ({open_runs} open runs, {jobs} jobs):\n{cluster.logs()}")


async def sandbox_bearer(http: httpx.AsyncClient, cluster: Cluster) -> dict[str, str]:
    """The provider's /_stats needs its own credentials (it lists idempotency keys and run ids)."""
    assert cluster.provider is not None
    credentials = {"client_id": "sandbox-client", "client_secret": "sandbox-secret-for-local-development-only"}
    token = (await http.post(f"{cluster.provider.url}/oauth/token", json=credentials)).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


async def check_invariants(cluster: Cluster, acked: set[str], seed: int) -> None:
    why = f"(seed {seed}; logs in {cluster.tmp})"
    conn = await asyncpg.connect(cluster.store_url)
    try:
        stored = {r["ce_id"] for r in await conn.fetch("SELECT ce_id FROM events")}
        runs = await conn.fetch("SELECT id, status, idempotency_key, provider_run_id, flow FROM runs")
        deliveries = await conn.fetch("SELECT id, run_id, state FROM deliveries")
        stuck = await conn.fetch("SELECT id, kind, state, lease_expires_at FROM jobs WHERE kind <> 'review_timer'")
        reviews = await conn.fetch("SELECT run_id, state FROM reviews")
    finally:
        await conn.close()
    async with httpx.AsyncClient(timeout=10) as http:
        assert cluster.provider is not None and cluster.sink is not None
        provider = (
            await http.get(f"{cluster.provider.url}/_stats", headers=await sandbox_bearer(http, cluster))
        ).json()
        received = (await http.get(f"{cluster.sink.url}/received")).json()

    assert len(acked) == EVENTS and acked <= stored, f"acknowledged events missing {sorted(acked - stored)} {why}"
    assert len(runs) == len(stored), why
    assert {r["status"] for r in runs} == {"COMPLETE"}, why

    keys = provider["creates_by_idempotency_key"]
    assert provider["runs"] == len(keys) == len(runs), f"provider runs {provider['runs']} {why}"
    assert set(keys) == {r["idempotency_key"] for r in runs}, why
    assert len({r["provider_run_id"] for r in runs}) == len(runs), why

    paused = [r for r in runs if r["flow"] == "eligibility"]
    assert len(paused) == EVENTS // 2, why
    assert all(count == 1 for count in provider["updates_by_run"].values()), f"a decision resumed twice {why}"
    assert set(provider["updates_by_run"]) == {r["provider_run_id"] for r in paused}, why
    resumed = sorted(r["run_id"] for r in reviews if r["state"] == "RESUMED")
    assert resumed == sorted(r["id"] for r in paused), f"one resumed review per paused run {why}"
    assert {r["state"] for r in reviews} == {"RESUMED"}, f"one review per pause, each resumed {why}"

    delivery_of = {d["run_id"]: d["id"] for d in deliveries}
    assert set(delivery_of) == {r["id"] for r in runs} and {d["state"] for d in deliveries} == {"DELIVERED"}, why
    seen: defaultdict[str, set[str]] = defaultdict(set)
    for item in received:
        seen[item["run_id"]].add(item["delivery_id"])
    assert {run_id: {dlv} for run_id, dlv in delivery_of.items()} == dict(seen), f"delivery ids {why}"

    assert stuck == [], f"jobs left over (lease {LEASE_SECONDS} s): {stuck} {why}"

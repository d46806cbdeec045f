"""SQLite beside PostgreSQL on this machine: ingest requests/s and end-to-end runs/s, in-process.

    GATEWAY_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test \
        .venv/bin/python bench/postgres_compare.py [ingest|e2e]

Ingest: POST /v1/events with 16 concurrent clients (each event starts one run: the insert, the run and its job
in one statement per batch on PostgreSQL, one transaction per batch on SQLite; the demo source's rate limit is
lifted). End to end: events of the flow that needs no review, driven through the embedded sandbox,
the dispatcher and the JSONL sink until every run is COMPLETE and delivered. One process, one event loop: the
figures compare the stores under the same app, they are not a capacity claim (the full `make bench` is that).
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.config.settings import Settings, parse_settings
from gateway.domain.model import RunStatus
from gateway.domain.ports import RunFilter
from tests import pg
from tests.support import SOURCE, example_data, running_gateway

CE = {"Content-Type": "application/cloudevents+json"}
INGEST_EVENTS = 2000
E2E_EVENTS = 300
CLIENTS = 16


def bench_settings(tmp: Path, store_url: str) -> Settings:
    """The example config, with the demo source's event rate limit lifted (the bench measures the store)."""
    data = example_data(tmp, store_url=store_url)
    data["sources"]["demo"].pop("rate_limit", None)
    return parse_settings(data, {})


def event(n: int, kind: str) -> dict[str, object]:
    return {
        "specversion": "1.0",
        "id": f"bench-{kind}-{n}",
        "source": "/ehr/registrations",
        "type": f"com.example.patient.{kind}",
        "data": {"patient": {"id": f"P-{n}"}, "coverage": {"payerId": "PAYER-42"}},
    }


async def ingest(store_url: str, tmp: Path) -> float:
    async with running_gateway(bench_settings(tmp, store_url)) as gw:
        queue = iter(range(INGEST_EVENTS))

        async def client() -> None:
            for n in queue:
                answer = await gw.client.post("/v1/events", json=event(n, "registered"), headers={**SOURCE, **CE})
                assert answer.status_code == 202, answer.text

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(CLIENTS)))
        return INGEST_EVENTS / (time.perf_counter() - started)


async def end_to_end(store_url: str, tmp: Path) -> float:
    async with running_gateway(bench_settings(tmp, store_url)) as gw:
        started = time.perf_counter()
        for n in range(E2E_EVENTS):
            answer = await gw.client.post("/v1/events", json=event(n, "checked"), headers={**SOURCE, **CE})
            assert answer.status_code == 202, answer.text
        await gw.settle(rounds=100)
        elapsed = time.perf_counter() - started
        done = await gw.services.store.list_runs(RunFilter(status=RunStatus.COMPLETE, limit=E2E_EVENTS + 1))
        assert len(done) == E2E_EVENTS, f"only {len(done)} runs completed"
        return E2E_EVENTS / elapsed


async def measure(name: str, only: str) -> None:
    for label, bench in (("ingest req/s", ingest), ("e2e runs/s", end_to_end)):
        if only and not label.startswith(only):
            continue
        with tempfile.TemporaryDirectory() as tmp:
            if name == "sqlite":
                rate = await bench(f"sqlite:///{tmp}/gateway.db", Path(tmp))
            else:
                async with pg.fresh_schema() as url:
                    rate = await bench(url, Path(tmp))
        print(f"{name:<10} {label:<14} {rate:8.0f}")


async def main() -> None:
    only = sys.argv[1] if len(sys.argv) > 1 else ""
    await measure("sqlite", only)
    if os.environ.get(pg.ENV):
        await measure("postgresql", only)
    else:
        print(f"postgresql skipped: set {pg.ENV}")


if __name__ == "__main__":
    asyncio.run(main())

"""The jsonl sink under kill -9 (issue 10, case 6): the line was appended, then the process died before the
delivery was recorded. The restarted gateway retries the delivery (still PENDING, its job's lease ran out) and
the file still holds the line once."""

from __future__ import annotations

import json
from pathlib import Path

from gateway.config.settings import parse_settings
from gateway.domain.model import DeliveryState, JobKind
from gateway.domain.ports import NewJob
from tests.support import SOURCE, FrozenClock, example_data, running_gateway

EVENT = {
    "specversion": "1.0",
    "id": "auto-1",
    "source": "/ehr/registrations",
    "type": "com.example.patient.checked",
    "data": {"patient": {"id": "P-1001"}, "coverage": {"payerId": "AETNA-01"}},
}


def lines(path: Path) -> list[str]:
    return [json.loads(line)["delivery_id"] for line in path.read_text().splitlines()]


async def test_a_delivery_written_but_not_recorded_is_not_written_again_after_a_restart(tmp_path: Path) -> None:
    settings = parse_settings(example_data(tmp_path), {})
    out = tmp_path / "out" / "results.jsonl"
    clock = FrozenClock()
    async with running_gateway(settings, clock=clock) as first:
        answer = await first.client.post("/v1/events", json=EVENT, headers=SOURCE)
        run_id = answer.json()["runs"][0]["id"]
        await first.settle()
        (delivery,) = await first.services.store.list_deliveries(
            state=DeliveryState.DELIVERED, run_id=run_id, sink="results", limit=5, before=None
        )
        assert lines(out) == [delivery.id]
        # The kill: the line is in the file, but the delivery's record never happened.
        async with first.services.store.db.write() as tx:
            await tx.execute("UPDATE deliveries SET state = 'PENDING', attempts = 0, delivered_at = NULL")
        await first.services.store.enqueue(
            NewJob(kind=JobKind.DELIVER, ref=delivery.id, due_at=clock.now()), clock.now()
        )

    clock.advance(120)  # the restart, after the lease ran out
    async with running_gateway(settings, clock=clock) as second:
        await second.settle()
        again = await second.services.store.get_delivery(delivery.id)
        assert again is not None and again.state == DeliveryState.DELIVERED
        assert await second.services.store.list_jobs(kind=JobKind.DELIVER) == []
    assert lines(out) == [delivery.id]  # once

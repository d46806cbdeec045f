"""inference.sh: rate-limit headers on a 500 (issue 10, case 4), through the real fetch job.

``X-RateLimit-Reset`` is a reason to wait only when ``X-RateLimit-Remaining`` is 0; a 500 with budget left is
retried on the fetch backoff. The emulation: the embedded inference.sh emulator, with the answer to
``GET /flowruns/{id}`` replaced by a 500 carrying the headers.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config.settings import parse_settings
from gateway.domain.model import JobKind
from gateway.domain.ports import NewJob
from tests import faults
from tests.lossy import LossyTransport
from tests.support import SOURCE, FrozenClock, example_data, running_gateway

EVENT = {
    "specversion": "1.0",
    "id": "inf-500",
    "source": "/ehr/registrations",
    "type": "com.example.patient.enriched",
    "data": {"patient": {"id": "P-1001"}},
}


@pytest.mark.parametrize(("remaining", "waits_for_reset"), [("99", False), ("0", True)])
async def test_a_500_waits_for_the_reset_only_when_the_budget_is_spent(
    tmp_path: Path, remaining: str, waits_for_reset: bool
) -> None:
    clock = FrozenClock()
    transport = LossyTransport()
    settings = parse_settings(example_data(tmp_path), {})
    async with running_gateway(settings, clock=clock, transport=transport) as gw:
        answer = await gw.client.post("/v1/events", json=EVENT, headers=SOURCE)
        run_id = answer.json()["runs"][0]["id"]
        await gw.settle()
        reset = str(int(clock.now().timestamp()) + 60)
        headers = {"X-RateLimit-Remaining": remaining, "X-RateLimit-Reset": reset}
        transport.lose("GET", r"/sandbox/inferencesh/flowruns/[^/]+$", faults.status(500, **headers), applied=False)
        await gw.services.store.enqueue(NewJob(kind=JobKind.FETCH_RUN, ref=run_id, due_at=clock.now()), clock.now())
        await gw.services.dispatcher.drain()

        assert len(transport.lost) == 1
        (fetch,) = await gw.services.store.list_jobs(kind=JobKind.FETCH_RUN)
        wait = (fetch.due_at - clock.now()).total_seconds()
        if waits_for_reset:
            assert wait == 60.0
        else:
            first_backoff = settings.worker.fetch_backoff.base * 2  # full jitter: uniform(0, base * 2**1)
            assert 0 <= wait <= first_backoff
